/* report.c — `attrib report`: one static HTML page (DIR/index.html) with
 * the pictures of render.c (PNG files beside it, relative links), and the
 * numbers of the summary module (summary.h): provenance, metric means,
 * completeness, the method-agreement matrix, timing; LOO and LDS for
 * influence files; a row of points per method for sweeps. No JavaScript,
 * no network, inline CSS. docs/pictures.md describes the page. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline.h"
#include "render.h"
#include "summary.h"

/* ------------------------------------------------------------ text buffer */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = at_realloc(b->s, b->cap, "report html");
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text with &, <, >, " escaped. */
static void sb_esc(sbuf *b, const char *t) {
    for (const char *p = t ? t : ""; *p; p++) {
        switch (*p) {
        case '&': sb_add(b, "&amp;"); break;
        case '<': sb_add(b, "&lt;"); break;
        case '>': sb_add(b, "&gt;"); break;
        case '"': sb_add(b, "&quot;"); break;
        default: sb_add(b, "%c", *p);
        }
    }
}

static void sb_num(sbuf *b, double v) {
    if (isnan(v)) sb_add(b, "<span class=na>–</span>");
    else sb_add(b, "%.4g", v);
}

/* ------------------------------------------------------------ the report */

typedef struct {
    const char *dir;
    render_opts ro;       /* samples, zoom, cols, scale, data, top */
    int n_pictures;
    int n_missing;        /* pictures that could not be drawn */
} report_ctx;

/* A file name from a method (and point index) name: [A-Za-z0-9_-] kept,
 * the rest '_'. */
static void pic_name(char *out, size_t cap, int point, const char *method) {
    int n = point >= 0 ? snprintf(out, cap, "p%d_", point) : 0;
    size_t k = (size_t)n;
    for (const char *p = method; *p && k + 5 < cap; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        out[k++] = ok ? c : '_';
    }
    snprintf(out + k, cap - k, ".png");
}

/* Draw method of s (a plain file or one point) into the report directory
 * and add its <img>, or a note saying why there is none (non-image scores,
 * the data moved). point: the point's index for the file name, or -1. */
static void picture(report_ctx *c, sbuf *b, const sm_summary *s, int point, const char *method,
                    int cols, int caption) {
    char name[300], path[4400];
    pic_name(name, sizeof name, point, method);
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    render_opts o = c->ro;
    o.method = method;
    o.out = path;
    if (cols > 0) o.cols = cols;
    render_info info;
    at_err err = {0};
    if (render_draw(s, &o, &info, &err)) {
        c->n_missing++;
        fprintf(stderr, "attrib: warning: report: no picture of %s: %s\n", method, err.msg);
        sb_add(b, "<p class=note>No picture: ");
        sb_esc(b, err.msg);
        sb_add(b, "</p>\n");
        return;
    }
    c->n_pictures++;
    sb_add(b, "<figure><img src=\"%s\" width=%d height=%d alt=\"", name, info.width, info.height);
    sb_esc(b, method);
    sb_add(b, "\">");
    if (!caption) {
        sb_add(b, "</figure>\n");
        return;
    }
    sb_add(b, "<figcaption>%s %lld–%lld", info.influence ? "test samples" : "samples",
           (long long)info.s0, (long long)info.s1 - 1);
    if (!info.influence && o.scale == RENDER_SCALE_SHARED)
        sb_add(b, "; full colour at |score| >= %.3g (shared scale)", info.scale_max);
    else if (!info.influence)
        sb_add(b, "; full colour at each sample's robust max |score|");
    sb_add(b, "</figcaption></figure>\n");
}

/* Background colour of a value in [-1, 1]: render's colormap (blue, white,
 * red), so agreement reads like the heatmaps. */
static void cell_colour(double v, char *out, size_t cap) {
    if (isnan(v)) {
        snprintf(out, cap, "#eeeeee");
        return;
    }
    uint8_t rgb[3];
    render_cmap_rgb(v, rgb);
    snprintf(out, cap, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static void kv_row(sbuf *b, const char *k, const char *v) {
    if (!v) return;
    sb_add(b, "<tr><th>%s</th><td>", k);
    sb_esc(b, v);
    sb_add(b, "</td></tr>\n");
}

static void header(sbuf *b, const sm_summary *s) {
    char buf[256];
    sb_add(b, "<table class=kv>\n");
    kv_row(b, "results", s->path);
    if (s->point) kv_row(b, "point", s->point);
    kv_row(b, "content", s->content == SM_INFLUENCE ? "training-data attribution"
                         : s->content == SM_SWEEP ? "sweep" : "feature attribution");
    kv_row(b, "job", s->job_file);
    if (s->model_path) {
        snprintf(buf, sizeof buf, "%.12s", s->model_sha256 ? s->model_sha256 : "");
        sb_add(b, "<tr><th>model</th><td>");
        sb_esc(b, s->model_path);
        sb_add(b, " <span class=dim>sha256 %s…</span></td></tr>\n", buf);
    }
    if (s->data_path) {
        sb_add(b, "<tr><th>data</th><td>");
        sb_esc(b, s->data_path);
        sb_add(b, " split ");
        sb_esc(b, s->data_split);
        const char *rows = sm_attr_text(&s->job, "data.rows", NULL);
        if (rows) {
            sb_add(b, " rows ");
            sb_esc(b, rows);
        }
        if (s->n_rows >= 0) sb_add(b, " (%lld samples)", (long long)s->n_rows);
        sb_add(b, "</td></tr>\n");
    }
    if (s->content == SM_INFLUENCE && s->train_split) {
        sb_add(b, "<tr><th>train data</th><td>split ");
        sb_esc(b, s->train_split);
        const char *rows = sm_attr_text(&s->job, "train_data.rows", NULL);
        if (rows) {
            sb_add(b, " rows ");
            sb_esc(b, rows);
        }
        if (s->n_train >= 0) sb_add(b, " (%lld examples)", (long long)s->n_train);
        sb_add(b, "</td></tr>\n");
    }
    if (s->n_ranks > 0) {
        snprintf(buf, sizeof buf, "%d%s%s", s->n_ranks, s->scheduler ? ", scheduler " : "",
                 s->scheduler ? s->scheduler : "");
        kv_row(b, "ranks", buf);
    }
    double total = sm_attr_num(&s->root, "time_total_s", NAN);
    if (!isnan(total)) {
        snprintf(buf, sizeof buf, "%.3g s", total);
        kv_row(b, "run time", buf);
    }
    kv_row(b, "started", sm_attr_text(&s->root, "started_at", NULL));
    kv_row(b, "finished", sm_attr_text(&s->root, "finished_at", NULL));
    kv_row(b, "host", sm_attr_text(&s->root, "host", NULL));
    kv_row(b, "attrib", s->attrib_version);
    sb_add(b, "</table>\n");
}

static void timing(sbuf *b, const sm_summary *s) {
    if (s->timing.n == 0 && s->n_units_per_rank == 0) return;
    sb_add(b, "<h2 id=timing>Timing</h2>\n<table class=num>\n<tr><th>stage</th><th>seconds</th></tr>\n");
    for (int i = 0; i < s->timing.n; i++) {
        sb_add(b, "<tr><td>");
        sb_esc(b, s->timing.a[i].name);
        sb_add(b, "</td><td>");
        sb_num(b, s->timing.a[i].num);
        sb_add(b, "</td></tr>\n");
    }
    sb_add(b, "</table>\n");
    if (s->n_units_per_rank > 0) {
        sb_add(b, "<p>Work units per rank: ");
        for (int r = 0; r < s->n_units_per_rank; r++)
            sb_add(b, "%s%.0f", r ? ", " : "", s->units_per_rank[r]);
        sb_add(b, " (max / mean %.3g", s->units_max_over_mean);
        if (s->units_resumed > 0) sb_add(b, "; %lld resumed", (long long)s->units_resumed);
        sb_add(b, ")</p>\n");
    }
}

/* h: the heading tag ("h2", or "h3" inside a sweep's point); ids only at h2. */
static void feature_tables(sbuf *b, const sm_summary *s, const char *h) {
    int top = strcmp(h, "h2") == 0;
    /* scores and completeness */
    sb_add(b, "<%s%s>Scores and completeness</%s>\n", h, top ? " id=scores" : "", h);
    sb_add(b, "<table class=num>\n"
              "<tr><th>method</th><th>kind</th><th>mean |score|</th><th>&gt; 0</th><th>&lt; 0</th>"
              "<th>median |delta|</th><th>max |delta|</th><th>median |delta| / |f(x) − f(b)|</th></tr>\n");
    for (int m = 0; m < s->n_methods; m++) {
        const sm_method *me = &s->methods[m];
        sb_add(b, "<tr><td>");
        sb_esc(b, me->name);
        sb_add(b, "</td><td>");
        sb_esc(b, me->kind);
        sb_add(b, "</td><td>");
        sb_num(b, me->mean_abs);
        sb_add(b, "</td><td>");
        sb_num(b, me->frac_pos);
        sb_add(b, "</td><td>");
        sb_num(b, me->frac_neg);
        sb_add(b, "</td><td>");
        sb_num(b, me->has_delta ? me->delta_median_abs : NAN);
        sb_add(b, "</td><td>");
        sb_num(b, me->has_delta ? me->delta_max_abs : NAN);
        sb_add(b, "</td><td>");
        sb_num(b, me->has_delta ? me->delta_rel_median : NAN);
        sb_add(b, "</td></tr>\n");
    }
    sb_add(b, "</table>\n<p class=dim>delta = sum(scores) − (f(x) − f(b)) for methods with a "
              "completeness property (LRP: f(x)); – = not applicable.</p>\n");

    if (s->n_metric_names > 0) {
        sb_add(b, "<%s%s>Metrics (mean over samples)</%s>\n", h, top ? " id=metrics" : "", h);
        sb_add(b, "<table class=num>\n<tr><th>method</th>");
        for (int k = 0; k < s->n_metric_names; k++) {
            sb_add(b, "<th>");
            sb_esc(b, s->metric_names[k]);
            sb_add(b, "</th>");
        }
        sb_add(b, "</tr>\n");
        for (int m = 0; m < s->n_methods; m++) {
            sb_add(b, "<tr><td>");
            sb_esc(b, s->methods[m].name);
            sb_add(b, "</td>");
            for (int k = 0; k < s->n_metric_names; k++) {
                sb_add(b, "<td>");
                sb_num(b, s->methods[m].metric_mean ? s->methods[m].metric_mean[k] : NAN);
                sb_add(b, "</td>");
            }
            sb_add(b, "</tr>\n");
        }
        sb_add(b, "</table>\n<p class=dim>docs/methods.md defines each metric.</p>\n");
    }

    if (s->agree) {
        int n = s->n_methods;
        sb_add(b, "<%s%s>Method agreement (mean Spearman over samples)</%s>\n", h,
               top ? " id=agreement" : "", h);
        sb_add(b, "<table class=agree>\n<tr><th></th>");
        for (int j = 0; j < n; j++) {
            sb_add(b, "<th>");
            sb_esc(b, s->methods[j].name);
            sb_add(b, "</th>");
        }
        sb_add(b, "</tr>\n");
        for (int i = 0; i < n; i++) {
            sb_add(b, "<tr><th>");
            sb_esc(b, s->methods[i].name);
            sb_add(b, "</th>");
            for (int j = 0; j < n; j++) {
                double v = s->agree[i * n + j];
                char col[16];
                cell_colour(v, col, sizeof col);
                sb_add(b, "<td style=\"background:%s%s\">", col,
                       !isnan(v) && fabs(v) > 0.6 ? ";color:#fff" : "");
                if (isnan(v)) sb_add(b, "–");
                else sb_add(b, "%.2f", v);
                sb_add(b, "</td>");
            }
            sb_add(b, "</tr>\n");
        }
        sb_add(b, "</table>\n<p class=dim>Red: the methods rank the pixels alike (+1); white: "
                  "unrelated (0); blue: opposite (−1); – = not computed (metrics.agreement "
                  "compares each method with the ones listed after it in the job).</p>\n");
    }
}

static void influence_tables(sbuf *b, const sm_summary *s, const char *h) {
    int top = strcmp(h, "h2") == 0;
    sb_add(b, "<%s%s>Leave-one-out and LDS</%s>\n", h, top ? " id=groundtruth" : "", h);
    sb_add(b, "<table class=num>\n"
              "<tr><th>method</th><th>kind</th><th>top-k</th><th>LOO Pearson</th>"
              "<th>LOO Spearman</th><th>pooled Pearson</th><th>LDS</th><th>LDS interval</th></tr>\n");
    for (int m = 0; m < s->n_methods; m++) {
        const sm_method *me = &s->methods[m];
        sb_add(b, "<tr><td>");
        sb_esc(b, me->name);
        sb_add(b, "</td><td>");
        sb_esc(b, me->kind);
        sb_add(b, "</td><td>%lld</td><td>", (long long)me->top_k);
        sb_num(b, sm_attr_num(&me->loo, "pearson", NAN));
        sb_add(b, "</td><td>");
        sb_num(b, sm_attr_num(&me->loo, "spearman", NAN));
        sb_add(b, "</td><td>");
        sb_num(b, sm_attr_num(&me->loo, "pooled_pearson", NAN));
        sb_add(b, "</td><td>");
        sb_num(b, sm_attr_num(&me->lds, "lds", NAN));
        sb_add(b, "</td><td>");
        double lo = sm_attr_num(&me->lds, "ci_low", NAN), hi = sm_attr_num(&me->lds, "ci_high", NAN);
        if (isnan(lo)) sb_add(b, "–");
        else sb_add(b, "[%.3g, %.3g]", lo, hi);
        sb_add(b, "</td></tr>\n");
    }
    sb_add(b, "</table>\n<p class=dim>– = no ground truth in this job (ground_truth.loo, "
              "ground_truth.lds; docs/influence.md).</p>\n");
}

static void method_sections(report_ctx *c, sbuf *b, const sm_summary *s) {
    sb_add(b, "<h2 id=pictures>Pictures</h2>\n");
    if (s->content == SM_INFLUENCE)
        sb_add(b, "<p class=dim>Each row: a test image, its top-k proponents (framed red: "
                  "they raise the score of the test row), then its opponents (framed blue).</p>\n");
    else
        sb_add(b, "<p class=dim>Each pair: the input, then the scores over it — red positive, "
                  "blue negative, white 0. The bar below runs from −1 to +1 of the scale.</p>\n");
    for (int m = 0; m < s->n_methods; m++) {
        sb_add(b, "<h3>");
        sb_esc(b, s->methods[m].name);
        sb_add(b, " <span class=dim>");
        sb_esc(b, s->methods[m].kind);
        sb_add(b, "</span></h3>\n");
        picture(c, b, s, -1, s->methods[m].name, 0, 1);
    }
}

/* The last sample drawn of a file of n samples (render's rule; cmd_report
 * checked the range against every point). */
static int64_t report_last_sample(const report_ctx *c, int64_t n) {
    int64_t s0, s1;
    at_err err = {0};
    if (render_samples(&c->ro, n, "report", "", &s0, &s1, &err)) return n - 1;
    return s1 - 1;
}

static void sweep_sections(report_ctx *c, sbuf *b, const sm_summary *s) {
    sb_add(b, "<h2 id=points>Points</h2>\n<table class=num>\n<tr><th>#</th><th>point</th>");
    for (int k = 0; k < s->n_keys; k++) {
        sb_add(b, "<th>");
        sb_esc(b, s->keys[k]);
        sb_add(b, "</th>");
    }
    sb_add(b, "</tr>\n");
    for (int p = 0; p < s->n_points; p++) {
        sb_add(b, "<tr><td>%d</td><td>", p);
        sb_esc(b, s->point_names[p]);
        sb_add(b, "</td>");
        for (int k = 0; k < s->n_keys; k++) {
            sb_add(b, "<td>");
            sb_esc(b, s->values[p * s->n_keys + k]);
            sb_add(b, "</td>");
        }
        sb_add(b, "</tr>\n");
    }
    sb_add(b, "</table>\n");
    for (int q = 0; q < s->n_sweep_methods; q++) {
        const sm_sweep_method *sw = &s->sweep_methods[q];
        sb_add(b, "<h3>");
        sb_esc(b, sw->name);
        sb_add(b, " along the sweep</h3>\n<table class=num>\n<tr><th>point</th>"
                  "<th>Spearman vs point 0</th><th>relative L2 vs point 0</th></tr>\n");
        for (int p = 0; p < s->n_points; p++) {
            sb_add(b, "<tr><td>");
            sb_esc(b, s->point_names[p]);
            sb_add(b, "</td><td>");
            sb_num(b, sw->spearman[p]);
            sb_add(b, "</td><td>");
            sb_num(b, sw->rel_l2[p]);
            sb_add(b, "</td></tr>\n");
        }
        sb_add(b, "</table>\n");
        if (sw->note) {
            sb_add(b, "<p class=note>");
            sb_esc(b, sw->note);
            sb_add(b, "</p>\n");
        }
        sb_add(b, "<p class=dim>Samples %lld–%lld of every point, one column; each sample's "
                  "colours span %s.</p>\n<div class=row>\n", (long long)c->ro.s0,
               (long long)report_last_sample(c, s->n_points ? s->points[0].n_rows : s->n_rows),
               c->ro.scale == RENDER_SCALE_SHARED ? "one scale per picture" : "its own robust max |score|");
        for (int p = 0; p < s->n_points; p++) {
            sb_add(b, "<div class=point><p>");
            sb_esc(b, s->point_names[p]);
            sb_add(b, "</p>\n");
            picture(c, b, &s->points[p], p, sw->name, 1, 0);
            sb_add(b, "</div>\n");
        }
        sb_add(b, "</div>\n");
    }
    for (int p = 0; p < s->n_points; p++) {
        const sm_summary *ps = &s->points[p];
        sb_add(b, "<h2>Point %d: ", p);
        sb_esc(b, s->point_names[p]);
        sb_add(b, "</h2>\n");
        if (ps->content == SM_INFLUENCE) influence_tables(b, ps, "h3");
        else feature_tables(b, ps, "h3");
    }
}

static const char *CSS =
    "body{font:14px/1.4 sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-top:8px}"
    "h3{font-size:15px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "table.num td{text-align:right;font-variant-numeric:tabular-nums}"
    "table.num td:first-child,table.num td:nth-child(2){text-align:left}"
    "table.kv th{background:#f4f4f4}"
    "table.agree td{text-align:center;min-width:44px}"
    ".dim{color:#666}.na{color:#aaa}.note{color:#a33}"
    "figure{margin:4px 0}figcaption{color:#666;font-size:12px}"
    "img{image-rendering:pixelated}"
    ".row{display:flex;flex-wrap:wrap;gap:12px}.point p{margin:0;font-weight:bold}";

/* Write text to path via path.tmp and rename. */
static int write_file(const char *path, const char *text, size_t len, at_err *err) {
    char tmp[4500];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return at_err_set(err, AT_EUSER, "report: cannot write %s (%s)", tmp, strerror(errno));
    size_t w = fwrite(text, 1, len, f);
    int bad = fclose(f) != 0 || w != len;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return at_err_set(err, AT_EIO, "report: cannot write %s (%s)", path, strerror(e));
    }
    return 0;
}

/* mkdir -p dir; 0 or AT_EUSER naming it. created: 1 when it did not exist. */
static int make_dir(const char *dir, int *created, at_err *err) {
    struct stat st;
    *created = 0;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return at_err_set(err, AT_EUSER, "report: -o %s exists and is not a directory", dir);
        if (access(dir, W_OK) != 0)
            return at_err_set(err, AT_EUSER, "report: -o %s: the directory is not writable", dir);
        return 0;
    }
    if (mkdir_p(dir, err)) return at_err_prefix(err, "report: -o %s: ", dir);
    *created = 1;
    return 0;
}

static const char *REPORT_USAGE =
    "usage: attrib report RESULTS.h5 -o DIR [--samples A:B] [--point NAME] [--cols C]\n"
    "                     [--zoom Z] [--scale sample|shared] [--alpha A] [--top K] [--data D.h5]\n"
    "Writes DIR/index.html, a static page (no JavaScript, no network), and the PNG\n"
    "pictures it shows, beside it: provenance, per method the pictures of the samples\n"
    "(default: the first 8), scores and completeness, the metric means, the method-\n"
    "agreement matrix and timing; for influence results the proponents and opponents\n"
    "and the LOO / LDS table; for a sweep a table of points and, per method, a row of\n"
    "pictures along the points. The picture options are attrib render's (--help there).\n"
    "docs/pictures.md describes the page.\n";

int cmd_report(int argc, char **argv) {
    report_ctx c;
    memset(&c, 0, sizeof c);
    render_opts_default(&c.ro);
    const char *results = NULL;
    at_err err = {0};
    for (int i = 0; i < argc && !err.code; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(REPORT_USAGE, stdout);
            return 0;
        }
        int r = render_parse_common(argc, argv, &i, &c.ro, &err);
        if (r < 0) break;
        if (r > 0) continue;
        if (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) {
            if (i + 1 >= argc) at_err_set(&err, AT_EUSER, "report: %s needs a directory", s);
            else c.dir = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            at_err_set(&err, AT_EUSER, "report: unknown option '%s' (see attrib report --help)", s);
        } else if (!results) {
            results = s;
        } else {
            at_err_set(&err, AT_EUSER, "report: unexpected argument '%s' (one results file only)", s);
        }
    }
    if (!err.code && (!results || !c.dir))
        at_err_set(&err, AT_EUSER, "report: usage: attrib report RESULTS.h5 -o DIR (see --help)");
    if (err.code) {
        cli_error(&err);
        return err.code;
    }

    sm_summary s;
    memset(&s, 0, sizeof s);
    sbuf b = {0};
    char dir[4096];
    int created = 0, rc = 0;
    snprintf(dir, sizeof dir, "%s", c.dir);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';
    c.dir = dir;
    if ((rc = sm_read(&s, results, c.ro.point, &err))) goto out;
    /* the samples must exist in the file (every point of a sweep) */
    int64_t n_rows = s.content == SM_SWEEP ? -1 : s.n_rows;
    for (int p = 0; p < s.n_points; p++)
        if (n_rows < 0 || (s.points[p].n_rows >= 0 && s.points[p].n_rows < n_rows))
            n_rows = s.points[p].n_rows;
    int64_t s0, s1;
    if (n_rows >= 0 && (rc = render_samples(&c.ro, n_rows, "report", results, &s0, &s1, &err)))
        goto out;
    if ((rc = make_dir(dir, &created, &err))) goto out;

    sb_add(&b, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n<title>attrib report: ");
    sb_esc(&b, results);
    sb_add(&b, "</title>\n<style>%s</style>\n</head><body>\n<h1>attrib report</h1>\n", CSS);
    header(&b, &s);
    sb_add(&b, "<p class=nav>%s</p>\n",
           s.content == SM_SWEEP ? "<a href=\"#points\">points</a>"
           : s.content == SM_INFLUENCE
               ? "<a href=\"#pictures\">pictures</a> · <a href=\"#groundtruth\">leave-one-out and LDS</a>"
               : "<a href=\"#pictures\">pictures</a> · <a href=\"#scores\">scores and completeness</a>"
                 " · <a href=\"#metrics\">metrics</a> · <a href=\"#agreement\">agreement</a>"
                 " · <a href=\"#timing\">timing</a>");
    if (s.content == SM_SWEEP) {
        sweep_sections(&c, &b, &s);
    } else {
        method_sections(&c, &b, &s);
        if (s.content == SM_INFLUENCE) influence_tables(&b, &s, "h2");
        else feature_tables(&b, &s, "h2");
        timing(&b, &s);
    }
    if (s.job_yaml) {
        sb_add(&b, "<h2 id=job>The effective job</h2>\n<details><summary>job_yaml</summary><pre>");
        sb_esc(&b, s.job_yaml);
        sb_add(&b, "</pre></details>\n");
    }
    sb_add(&b, "<p class=dim>Written by attrib %s render/report; docs/pictures.md.</p>\n"
               "</body></html>\n", ATTRIB_VERSION);
    char index[4200];
    snprintf(index, sizeof index, "%s/index.html", dir);
    rc = write_file(index, b.s, b.len, &err);
out:
    if (err.code) cli_error(&err);
    else
        printf("wrote %s/index.html (%d pictures%s)\n", dir, c.n_pictures,
               c.n_missing ? ", some could not be drawn: see the warnings" : "");
    if (rc && created) rmdir(dir); /* only when empty */
    sm_free(&s);
    free(b.s);
    return rc;
}
