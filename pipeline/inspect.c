/* inspect.c — `attrib inspect` (a readable summary of a results file) and
 * `attrib topk` (the most influential training rows of a test sample, or
 * the most relevant features of a sample). Both run in one process, read
 * only, through summary.h. docs/inspect.md describes the output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "pipeline.h"
#include "summary.h"

#define LINE_MAX_COLS 100

/* ------------------------------------------------------------ JSON */

static void js_str(FILE *o, const char *s) {
    if (!s) {
        fputs("null", o);
        return;
    }
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", o); break;
        case '\\': fputs("\\\\", o); break;
        case '\n': fputs("\\n", o); break;
        case '\r': fputs("\\r", o); break;
        case '\t': fputs("\\t", o); break;
        default:
            if (*p < 0x20)
                fprintf(o, "\\u%04x", *p);
            else
                fputc(*p, o);
        }
    }
    fputc('"', o);
}

static void js_num(FILE *o, double v) {
    if (!isfinite(v))
        fputs("null", o);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(o, "%.0f", v);
    else
        fprintf(o, "%.17g", v);
}

static void js_key(FILE *o, int *first, const char *k) {
    fputs(*first ? "" : ", ", o);
    *first = 0;
    js_str(o, k);
    fputs(": ", o);
}

static void js_attr_value(FILE *o, const sm_attr *a) {
    if (a->vals) {
        fputc('[', o);
        for (int i = 0; i < a->n_vals; i++) {
            if (i) fputs(", ", o);
            js_num(o, a->vals[i]);
        }
        fputc(']', o);
    } else if (a->is_num) {
        js_num(o, a->num);
    } else {
        js_str(o, a->text);
    }
}

static void js_attrs(FILE *o, const sm_attrs *as) {
    int first = 1;
    fputc('{', o);
    for (int i = 0; i < as->n; i++) {
        js_key(o, &first, as->a[i].name);
        js_attr_value(o, &as->a[i]);
    }
    fputc('}', o);
}

static void js_matrix(FILE *o, const double *m, int n) {
    fputc('[', o);
    for (int a = 0; a < n; a++) {
        fputs(a ? ", [" : "[", o);
        for (int b = 0; b < n; b++) {
            if (b) fputs(", ", o);
            js_num(o, m[a * n + b]);
        }
        fputc(']', o);
    }
    fputc(']', o);
}

static const char *content_name(sm_content c) {
    return c == SM_INFLUENCE ? "training-data attribution"
           : c == SM_SWEEP   ? "sweep"
                             : "feature attribution";
}

/* The "file" object of both JSON forms (a sweep's point is null). */
static void json_file(FILE *o, const sm_summary *s) {
    fprintf(o, "{\"path\": ");
    js_str(o, s->path);
    fputs(", \"point\": ", o);
    js_str(o, s->point);
    fputs(", \"format\": ", o);
    js_str(o, s->format);
    fputs(", \"format_version\": ", o);
    js_num(o, (double)s->format_version);
    fputs(", \"attrib_version\": ", o);
    js_str(o, s->attrib_version);
    fputs(", \"content\": ", o);
    js_str(o, content_name(s->content));
    fputc('}', o);
}

static void json_plain(FILE *o, const sm_summary *s) {
    int first = 1;
    fputc('{', o);
    js_key(o, &first, "file");
    json_file(o, s);

    js_key(o, &first, "job");
    fputs("{\"job_file\": ", o);
    js_str(o, s->job_file);
    fputs(", \"settings\": ", o);
    js_attrs(o, &s->job);
    fputc('}', o);

    js_key(o, &first, "model");
    fputs("{\"path\": ", o);
    js_str(o, s->model_path);
    fputs(", \"sha256\": ", o);
    js_str(o, s->model_sha256);
    fputs(", \"epoch\": ", o); /* model.epoch: a checkpoint's parameters; 0 = the file's */
    js_num(o, sm_attr_num(&s->root, "model_epoch", 0));
    fputc('}', o);

    js_key(o, &first, "data");
    fputs("{\"path\": ", o);
    js_str(o, s->data_path);
    fputs(", \"split\": ", o);
    js_str(o, s->data_split);
    fputs(", \"row_start\": ", o);
    js_num(o, sm_attr_num(&s->root, "row_start", NAN));
    fputs(", \"row_end\": ", o);
    js_num(o, sm_attr_num(&s->root, "row_end", NAN));
    fputs(", \"n\": ", o);
    js_num(o, s->n_rows >= 0 ? (double)s->n_rows : NAN);
    fputs(", \"n_classes\": ", o);
    js_num(o, s->n_classes >= 0 ? (double)s->n_classes : NAN);
    if (s->content == SM_INFLUENCE) {
        fputs(", \"train_split\": ", o);
        js_str(o, s->train_split);
        fputs(", \"n_train\": ", o);
        js_num(o, s->n_train >= 0 ? (double)s->n_train : NAN);
    }
    fputc('}', o);

    js_key(o, &first, "methods");
    fputc('[', o);
    for (int m = 0; m < s->n_methods; m++) {
        const sm_method *me = &s->methods[m];
        int f2 = 1;
        fputs(m ? ", {" : "{", o);
        js_key(o, &f2, "name");
        js_str(o, me->name);
        js_key(o, &f2, "kind");
        js_str(o, me->kind);
        js_key(o, &f2, "group");
        js_str(o, me->group);
        js_key(o, &f2, "shape");
        fputc('[', o);
        for (int i = 0; i < me->ndims; i++) fprintf(o, "%s%lld", i ? ", " : "", (long long)me->shape[i]);
        fputc(']', o);
        js_key(o, &f2, "attributes");
        js_attrs(o, &me->attrs);
        js_key(o, &f2, "mean_abs");
        js_num(o, me->mean_abs);
        js_key(o, &f2, "frac_pos");
        js_num(o, me->frac_pos);
        js_key(o, &f2, "frac_neg");
        js_num(o, me->frac_neg);
        js_key(o, &f2, "completeness");
        if (me->has_delta) {
            fputs("{\"median_abs_delta\": ", o);
            js_num(o, me->delta_median_abs);
            fputs(", \"max_abs_delta\": ", o);
            js_num(o, me->delta_max_abs);
            fputs(", \"median_rel_delta\": ", o);
            js_num(o, me->delta_rel_median);
            fputc('}', o);
        } else {
            fputs("null", o);
        }
        if (s->content == SM_INFLUENCE) {
            js_key(o, &f2, "top_k");
            js_num(o, (double)me->top_k);
            js_key(o, &f2, "loo");
            if (me->loo.n) js_attrs(o, &me->loo);
            else fputs("null", o);
            js_key(o, &f2, "lds");
            if (me->lds.n) js_attrs(o, &me->lds);
            else fputs("null", o);
        }
        js_key(o, &f2, "metrics");
        int f3 = 1;
        fputc('{', o);
        for (int k = 0; k < s->n_metric_names; k++)
            if (!isnan(me->metric_mean[k])) {
                js_key(o, &f3, s->metric_names[k]);
                js_num(o, me->metric_mean[k]);
            }
        fputs("}}", o);
    }
    fputc(']', o);

    js_key(o, &first, "agreement");
    if (s->agree) {
        fputs("{\"methods\": [", o);
        for (int m = 0; m < s->n_methods; m++) {
            if (m) fputs(", ", o);
            js_str(o, s->methods[m].name);
        }
        fputs("], \"spearman\": ", o);
        js_matrix(o, s->agree, s->n_methods);
        fputs(", \"kendall\": ", o);
        js_matrix(o, s->agree_kendall, s->n_methods);
        fputs(", \"top_k_overlap\": ", o);
        js_matrix(o, s->agree_topk, s->n_methods);
        fputc('}', o);
    } else {
        fputs("null", o);
    }

    js_key(o, &first, "timing");
    js_attrs(o, &s->timing);

    js_key(o, &first, "load");
    fputs("{\"n_ranks\": ", o);
    js_num(o, s->n_ranks >= 0 ? s->n_ranks : NAN);
    fputs(", \"scheduler\": ", o);
    js_str(o, s->scheduler);
    fputs(", \"units_per_rank\": ", o);
    if (s->units_per_rank) {
        fputc('[', o);
        for (int i = 0; i < s->n_units_per_rank; i++) {
            if (i) fputs(", ", o);
            js_num(o, s->units_per_rank[i]);
        }
        fputc(']', o);
    } else {
        fputs("null", o);
    }
    fputs(", \"min\": ", o);
    js_num(o, s->units_min);
    fputs(", \"max\": ", o);
    js_num(o, s->units_max);
    fputs(", \"mean\": ", o);
    js_num(o, s->units_mean);
    fputs(", \"max_over_mean\": ", o);
    js_num(o, s->units_max_over_mean);
    fputs(", \"units_resumed\": ", o);
    js_num(o, s->units_resumed >= 0 ? (double)s->units_resumed : NAN);
    fputs("}}", o);
}

static void json_sweep(FILE *o, const sm_summary *s) {
    fputs("{\"file\": ", o);
    json_file(o, s);
    fputs(", \"job\": {\"job_file\": ", o);
    js_str(o, s->job_file);
    fputs("}, \"sweep\": {\"keys\": [", o);
    for (int k = 0; k < s->n_keys; k++) {
        if (k) fputs(", ", o);
        js_str(o, s->keys[k]);
    }
    fputs("], \"points\": [", o);
    for (int p = 0; p < s->n_points; p++) {
        fputs(p ? ", {\"name\": " : "{\"name\": ", o);
        js_str(o, s->point_names[p]);
        fputs(", \"values\": {", o);
        for (int k = 0; k < s->n_keys; k++) {
            if (k) fputs(", ", o);
            js_str(o, s->keys[k]);
            fputs(": ", o);
            js_str(o, s->values[p * s->n_keys + k]);
        }
        fputs("}, \"summary\": ", o);
        json_plain(o, &s->points[p]);
        fputc('}', o);
    }
    fputs("], \"correlation\": \"spearman\", \"reference_point\": ", o);
    js_str(o, s->point_names[0]);
    fputs(", \"changes\": [", o);
    for (int m = 0; m < s->n_sweep_methods; m++) {
        const sm_sweep_method *sw = &s->sweep_methods[m];
        fputs(m ? ", {\"method\": " : "{\"method\": ", o);
        js_str(o, sw->name);
        fputs(", \"spearman\": [", o);
        for (int p = 0; p < s->n_points; p++) {
            if (p) fputs(", ", o);
            js_num(o, sw->spearman[p]);
        }
        fputs("], \"rel_l2\": [", o);
        for (int p = 0; p < s->n_points; p++) {
            if (p) fputs(", ", o);
            js_num(o, sw->rel_l2[p]);
        }
        fputs("], \"note\": ", o);
        js_str(o, sw->note);
        fputc('}', o);
    }
    fputs("]}}", o);
}

/* ------------------------------------------------------------ text */

/* A line builder that wraps "item item item" at LINE_MAX_COLS with a
 * hanging indent. */
typedef struct {
    FILE *o;
    int col, indent;
} wrap;

static void wrap_start(wrap *w, FILE *o, const char *label, int indent) {
    w->o = o;
    w->indent = indent;
    w->col = fprintf(o, "%-*s", indent, label);
}

static void wrap_item(wrap *w, const char *item) {
    int len = (int)strlen(item);
    if (w->col > w->indent && w->col + 1 + len > LINE_MAX_COLS) {
        w->col = fprintf(w->o, "\n%*s", w->indent, "") - 1;
    } else if (w->col > w->indent) {
        fputc(' ', w->o);
        w->col++;
    }
    fputs(item, w->o);
    w->col += len;
}

static void wrap_end(wrap *w) { fputc('\n', w->o); }

static void fmt_g(double v, char *out, size_t cap) {
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.4g", v);
}

static const char *or_dash(const char *s) { return s && *s ? s : "-"; }

static const char *QUALITY[] = {
    "damping_used",       "damping_used_per_model", "mean_eigenvalue", "solver_iterations_max",
    "cg_residual_max",    "cg_unconverged_rows",    "lissa_growth_max", "n_references_used",
    "n_groups",           "feature_dim",            "selected_parameters", "ensemble_size",
};

static int is_quality(const char *name) {
    for (size_t i = 0; i < sizeof QUALITY / sizeof QUALITY[0]; i++)
        if (strcmp(QUALITY[i], name) == 0) return 1;
    return 0;
}

static const char *metric_short(const char *name) {
    static const char *map[][2] = {
        {"deletion_morf", "del_morf"},       {"deletion_lerf", "del_lerf"},
        {"insertion_morf", "ins_morf"},      {"insertion_lerf", "ins_lerf"},
        {"infidelity", "infid"},             {"infidelity_normalized", "infid_norm"},
        {"sensitivity_max", "sens_max"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], name) == 0) return map[i][1];
    return name;
}

static void text_method(FILE *o, const sm_summary *s, const sm_method *me) {
    char shape[96] = "";
    for (int i = 0; i < me->ndims; i++) {
        char x[24];
        snprintf(x, sizeof x, "%s%lld", i ? " x " : "", (long long)me->shape[i]);
        strncat(shape, x, sizeof shape - strlen(shape) - 1);
    }
    fprintf(o, "\nmethod %s (%s)  scores %s\n", me->name, me->kind, shape);
    wrap w;
    wrap_start(&w, o, "  settings", 16);
    int any = 0;
    for (int i = 0; i < me->attrs.n; i++) {
        const sm_attr *a = &me->attrs.a[i];
        if (!strcmp(a->name, "kind") || !strcmp(a->name, "alphas") ||
            !strcmp(a->name, "weights") || !strcmp(a->name, "term_weights") ||
            !strcmp(a->name, "feature_set") || is_quality(a->name))
            continue;
        char item[256];
        snprintf(item, sizeof item, "%s=%s", a->name, a->text);
        wrap_item(&w, item);
        any = 1;
    }
    if (!any) wrap_item(&w, "-");
    wrap_end(&w);
    char a1[32], a2[32], a3[32];
    fmt_g(me->mean_abs, a1, sizeof a1);
    fprintf(o, "  %-13s mean |score| %s, positive %.1f%%, negative %.1f%%\n", "scores", a1,
            100 * me->frac_pos, 100 * me->frac_neg);
    if (me->has_delta) {
        fmt_g(me->delta_median_abs, a1, sizeof a1);
        fmt_g(me->delta_max_abs, a2, sizeof a2);
        fmt_g(me->delta_rel_median, a3, sizeof a3);
        fprintf(o, "  %-13s |delta| median %s, max %s; median |delta|/|output_diff| %s\n",
                "completeness", a1, a2, a3);
    }
    any = 0;
    for (int i = 0; i < me->attrs.n; i++) any |= is_quality(me->attrs.a[i].name);
    if (any) {
        wrap_start(&w, o, "  quality", 16);
        for (int i = 0; i < me->attrs.n; i++) {
            const sm_attr *a = &me->attrs.a[i];
            if (!is_quality(a->name)) continue;
            char item[256];
            snprintf(item, sizeof item, "%s=%s", a->name, a->text);
            wrap_item(&w, item);
        }
        wrap_end(&w);
    }
    if (s->content == SM_INFLUENCE) {
        if (me->top_k > 0)
            fprintf(o, "  %-13s %lld proponents and opponents per test row\n", "top-k",
                    (long long)me->top_k);
        if (me->loo.n) {
            wrap_start(&w, o, "  LOO", 16);
            for (int i = 0; i < me->loo.n; i++) {
                char item[128], v[32];
                fmt_g(me->loo.a[i].num, v, sizeof v);
                snprintf(item, sizeof item, "%s %s", me->loo.a[i].name,
                         me->loo.a[i].is_num ? v : me->loo.a[i].text);
                wrap_item(&w, item);
            }
            wrap_end(&w);
        }
        if (me->lds.n) {
            fmt_g(sm_attr_num(&me->lds, "lds", NAN), a1, sizeof a1);
            fmt_g(sm_attr_num(&me->lds, "ci_low", NAN), a2, sizeof a2);
            fmt_g(sm_attr_num(&me->lds, "ci_high", NAN), a3, sizeof a3);
            fprintf(o, "  %-13s %s, %.0f%% interval [%s, %s]\n", "LDS", a1,
                    100 * sm_attr_num(&me->lds, "ci_level", NAN), a2, a3);
        }
    }
}

/* Columns [c0, c1) of a table of methods x values, within 100 columns. */
static void text_table(FILE *o, const sm_summary *s, int ncols, const char *const *heads,
                       const double *vals /* (n_methods, ncols) */, int name_w) {
    int cw = 11, per = (LINE_MAX_COLS - name_w - 2) / cw;
    if (per < 1) per = 1;
    for (int c0 = 0; c0 < ncols; c0 += per) {
        int c1 = c0 + per < ncols ? c0 + per : ncols;
        fprintf(o, "  %-*s", name_w, "");
        for (int c = c0; c < c1; c++) fprintf(o, "%*.*s", cw, cw - 1, heads[c]);
        fputc('\n', o);
        for (int m = 0; m < s->n_methods; m++) {
            fprintf(o, "  %-*.*s", name_w, name_w, s->methods[m].name);
            for (int c = c0; c < c1; c++) {
                char v[32];
                fmt_g(vals[m * ncols + c], v, sizeof v);
                fprintf(o, "%*s", cw, v);
            }
            fputc('\n', o);
        }
    }
}

static void text_plain(FILE *o, const sm_summary *s) {
    char a1[32], a2[32], a3[32];
    fprintf(o, "%-11s%s%s%s\n", "file", s->path, s->point ? "  point " : "",
            s->point ? s->point : "");
    fprintf(o, "%-11s%s %lld, attrib %s, %s\n", "format", or_dash(s->format),
            (long long)s->format_version, or_dash(s->attrib_version), content_name(s->content));
    fprintf(o, "%-11s%s\n", "job", or_dash(s->job_file));
    if (s->job.n) {
        wrap w;
        wrap_start(&w, o, "", 11);
        for (int i = 0; i < s->job.n; i++) {
            char item[512];
            snprintf(item, sizeof item, "%s=%s", s->job.a[i].name, s->job.a[i].text);
            wrap_item(&w, item);
        }
        wrap_end(&w);
    }
    double epoch = sm_attr_num(&s->root, "model_epoch", 0);
    if (epoch > 0)
        fprintf(o, "%-11s%s, the checkpoint of epoch %.0f (sha256 %.12s)\n", "model",
                or_dash(s->model_path), epoch, or_dash(s->model_sha256));
    else
        fprintf(o, "%-11s%s (sha256 %.12s)\n", "model", or_dash(s->model_path),
                or_dash(s->model_sha256));
    const char *rs = sm_attr_text(&s->root, "row_start", NULL);
    const char *re = sm_attr_text(&s->root, "row_end", NULL);
    const char *rows = sm_attr_text(&s->job, "data.rows", NULL);
    char rtxt[128];
    if (rs && re) snprintf(rtxt, sizeof rtxt, "rows %s:%s", rs, re);
    else snprintf(rtxt, sizeof rtxt, "rows %s", or_dash(rows));
    if (s->content == SM_INFLUENCE) {
        fprintf(o, "%-11s%s, split %s, %s (N_test = %lld)\n", "test data", or_dash(s->data_path),
                or_dash(s->data_split), rtxt, (long long)s->n_rows);
        fprintf(o, "%-11s%s, split %s, rows %s (N_train = %lld)\n", "train data",
                or_dash(s->data_path), or_dash(s->train_split),
                or_dash(sm_attr_text(&s->job, "train_data.rows", NULL)), (long long)s->n_train);
        fprintf(o, "%-11s%lld test x %lld train per method\n", "scores", (long long)s->n_rows,
                (long long)s->n_train);
    } else {
        fprintf(o, "%-11s%s, split %s, %s (N = %lld)", "data", or_dash(s->data_path),
                or_dash(s->data_split), rtxt, (long long)s->n_rows);
        if (s->n_classes > 0) fprintf(o, ", %lld classes", (long long)s->n_classes);
        fputc('\n', o);
    }

    if (s->timing.n) {
        wrap w;
        wrap_start(&w, o, "timing", 11);
        for (int i = 0; i < s->timing.n; i++) {
            char item[128];
            const char *nm = s->timing.a[i].name + 5;
            size_t l = strlen(nm);
            fmt_g(s->timing.a[i].num, a1, sizeof a1);
            snprintf(item, sizeof item, "%.*s %s s%s", (int)(l > 2 && !strcmp(nm + l - 2, "_s") ? l - 2 : l),
                     nm, a1, i + 1 < s->timing.n ? "," : "");
            wrap_item(&w, item);
        }
        wrap_end(&w);
    }
    if (s->n_ranks >= 0) {
        fprintf(o, "%-11s%d", "ranks", s->n_ranks);
        if (s->scheduler) fprintf(o, ", scheduler %s", s->scheduler);
        if (s->units_per_rank) {
            fmt_g(s->units_min, a1, sizeof a1);
            fmt_g(s->units_max, a2, sizeof a2);
            fmt_g(s->units_max_over_mean, a3, sizeof a3);
            fprintf(o, "; units per rank min %s, max %s, max/mean %s", a1, a2, a3);
        }
        if (s->units_resumed >= 0) fprintf(o, "; resumed %lld", (long long)s->units_resumed);
        fputc('\n', o);
    }

    fprintf(o, "\n%d method%s: ", s->n_methods, s->n_methods == 1 ? "" : "s");
    char *list = sm_method_list(s);
    fprintf(o, "%s\n", list);
    free(list);
    int has_truth = 0;
    for (int m = 0; m < s->n_methods; m++) has_truth |= s->methods[m].loo.n || s->methods[m].lds.n;
    if (s->content == SM_INFLUENCE && has_truth) {
        fprintf(o, "  %-16s %-10s %-8s %9s %9s %9s  %s\n", "method", "kind", "inverse",
                "mean|s|", "LOO r", "LOO rho", "LDS [95% interval]");
        for (int m = 0; m < s->n_methods; m++) {
            const sm_method *me = &s->methods[m];
            char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], ci[112];
            fmt_g(me->mean_abs, b1, sizeof b1);
            fmt_g(sm_attr_num(&me->loo, "pearson", NAN), b2, sizeof b2);
            fmt_g(sm_attr_num(&me->loo, "spearman", NAN), b3, sizeof b3);
            fmt_g(sm_attr_num(&me->lds, "lds", NAN), b4, sizeof b4);
            fmt_g(sm_attr_num(&me->lds, "ci_low", NAN), b5, sizeof b5);
            fmt_g(sm_attr_num(&me->lds, "ci_high", NAN), b6, sizeof b6);
            if (me->lds.n) snprintf(ci, sizeof ci, "%s [%s, %s]", b4, b5, b6);
            else snprintf(ci, sizeof ci, "-");
            fprintf(o, "  %-16.16s %-10.10s %-8.8s %9s %9s %9s  %s\n", me->name, me->kind,
                    sm_attr_text(&me->attrs, "inverse", "-"), b1, b2, b3, ci);
        }
    }
    for (int m = 0; m < s->n_methods; m++) text_method(o, s, &s->methods[m]);

    int name_w = 4;
    for (int m = 0; m < s->n_methods; m++) {
        int l = (int)strlen(s->methods[m].name);
        name_w = l > name_w ? l : name_w;
    }
    if (name_w > 20) name_w = 20;
    if (s->n_metric_names) {
        fprintf(o, "\nmetrics (mean over samples)\n");
        const char **heads = at_malloc((size_t)s->n_metric_names * sizeof *heads, "inspect");
        double *vals = at_malloc((size_t)(s->n_methods * s->n_metric_names + 1) * sizeof *vals,
                                 "inspect");
        for (int k = 0; k < s->n_metric_names; k++) heads[k] = metric_short(s->metric_names[k]);
        for (int m = 0; m < s->n_methods; m++)
            for (int k = 0; k < s->n_metric_names; k++)
                vals[m * s->n_metric_names + k] = s->methods[m].metric_mean[k];
        text_table(o, s, s->n_metric_names, heads, vals, name_w);
        free(heads);
        free(vals);
    }
    if (s->agree) {
        fprintf(o, "\nagreement (mean Spearman over samples; column j = method j of the rows)\n");
        int n = s->n_methods, cw = 7, per = (LINE_MAX_COLS - name_w - 7) / cw;
        for (int c0 = 0; c0 < n; c0 += per) {
            int c1 = c0 + per < n ? c0 + per : n;
            fprintf(o, "  %*s     ", name_w, "");
            for (int c = c0; c < c1; c++) fprintf(o, "%*d", cw, c + 1);
            fputc('\n', o);
            for (int a = 0; a < n; a++) {
                fprintf(o, "  %2d %-*.*s  ", a + 1, name_w, name_w, s->methods[a].name);
                for (int c = c0; c < c1; c++) {
                    double v = s->agree[a * n + c];
                    if (isnan(v)) fprintf(o, "%*s", cw, "-");
                    else fprintf(o, "%*.2f", cw, v);
                }
                fputc('\n', o);
            }
        }
    }
}

static void text_sweep(FILE *o, const sm_summary *s) {
    fprintf(o, "%-11s%s\n", "file", s->path);
    fprintf(o, "%-11s%s %lld, attrib %s, sweep of %d points\n", "format", or_dash(s->format),
            (long long)s->format_version, or_dash(s->attrib_version), s->n_points);
    fprintf(o, "%-11s%s\n", "job", or_dash(s->job_file));
    /* each point's run time: time_total_s, else the sum of its stage times */
    double run_s = 0;
    for (int p = 0; p < s->n_points; p++) {
        const sm_summary *pp = &s->points[p];
        double t = sm_attr_num(&pp->timing, "time_total_s", NAN);
        if (isnan(t)) {
            t = 0;
            for (int i = 0; i < pp->timing.n; i++) t += pp->timing.a[i].num;
        }
        run_s += t;
    }
    char rs[32];
    fmt_g(run_s, rs, sizeof rs);
    fprintf(o, "%-11s%s s, the sum of the points' run times\n", "timing", rs);
    int pw = 5;
    for (int p = 0; p < s->n_points; p++) {
        int l = (int)strlen(s->point_names[p]);
        pw = l > pw ? l : pw;
    }
    if (pw > 40) pw = 40;
    fprintf(o, "\npoints (swept: ");
    for (int k = 0; k < s->n_keys; k++) fprintf(o, "%s%s", k ? ", " : "", s->keys[k]);
    fprintf(o, ")\n");
    /* one column per swept key, headed by the key's last component */
    int nk = s->n_keys, used = 2 + pw;
    int *kw = at_calloc((size_t)nk + 1, sizeof *kw, "inspect sweep");
    const char **kh = at_calloc((size_t)nk + 1, sizeof *kh, "inspect sweep");
    for (int k = 0; k < nk; k++) {
        const char *dot = strrchr(s->keys[k], '.');
        kh[k] = dot ? dot + 1 : s->keys[k];
        kw[k] = (int)strlen(kh[k]);
        for (int p = 0; p < s->n_points; p++) {
            int l = (int)strlen(or_dash(s->values[p * s->n_keys + k]));
            kw[k] = l > kw[k] ? l : kw[k];
        }
        if (kw[k] > 24) kw[k] = 24;
        used += 2 + kw[k];
    }
    int room = LINE_MAX_COLS - used - 2, wrap_summary = room < 30;
    fprintf(o, "  %-*s", pw, "point");
    for (int k = 0; k < nk; k++) fprintf(o, "  %-*.*s", kw[k], kw[k], kh[k]);
    fprintf(o, "%s\n", wrap_summary ? "" : "  summary");
    for (int p = 0; p < s->n_points; p++) {
        const sm_summary *pp = &s->points[p];
        /* items while they fit: methods and N, the time, each method's mean
         * |s|; the fit counts every number as 10 characters (%.4g at most),
         * so which items show depends on the names only */
        int cap = wrap_summary ? LINE_MAX_COLS - 6 : room, budget;
        char line[512], item[128];
        int n = snprintf(line, sizeof line, "%d method%s, N = %lld", pp->n_methods,
                         pp->n_methods == 1 ? "" : "s", (long long)pp->n_rows);
        budget = n;
        double tot = sm_attr_num(&pp->timing, "time_total_s", NAN);
        if (!isnan(tot) && budget + 14 <= cap) {
            char v[32];
            fmt_g(tot, v, sizeof v);
            n += snprintf(line + n, sizeof line - (size_t)n, ", %s s", v);
            budget += 14;
        }
        for (int m = 0; m < pp->n_methods; m++) {
            char v[32];
            fmt_g(pp->methods[m].mean_abs, v, sizeof v);
            snprintf(item, sizeof item, "%s %s |s| ", m ? "," : ";", pp->methods[m].name);
            int need = (int)strlen(item) + 10 + (m + 1 < pp->n_methods ? 5 : 0);
            if (budget + need > cap) {
                n += snprintf(line + n, sizeof line - (size_t)n, "%s", m ? ", ..." : "");
                break;
            }
            n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", item, v);
            budget += (int)strlen(item) + 10;
        }
        fprintf(o, "  %-*s", pw, s->point_names[p]);
        for (int k = 0; k < nk; k++)
            fprintf(o, "  %-*.*s", kw[k], kw[k], or_dash(s->values[p * s->n_keys + k]));
        if (wrap_summary)
            fprintf(o, "\n      %s\n", line);
        else
            fprintf(o, "  %s\n", line);
    }
    free(kw);
    free(kh);
    if (s->n_sweep_methods) {
        fprintf(o, "\nhow the settings changed the answer, against point %s:\n", s->point_names[0]);
        fprintf(o, "  spearman = mean over samples of the Spearman correlation of a sample's "
                   "scores;\n  rel_l2 = ||S_p - S_0|| / ||S_0|| over all scores\n");
        int mw = 6;
        for (int m = 0; m < s->n_sweep_methods; m++) {
            int l = (int)strlen(s->sweep_methods[m].name);
            mw = l > mw ? l : mw;
        }
        if (mw > 20) mw = 20;
        fprintf(o, "  %-*s  %-*s  %9s  %9s\n", mw, "method", pw, "point", "spearman", "rel_l2");
        for (int m = 0; m < s->n_sweep_methods; m++) {
            const sm_sweep_method *sw = &s->sweep_methods[m];
            for (int p = 0; p < s->n_points; p++) {
                char v1[32], v2[32];
                fmt_g(sw->spearman[p], v1, sizeof v1);
                fmt_g(sw->rel_l2[p], v2, sizeof v2);
                fprintf(o, "  %-*.*s  %-*.*s  %9s  %9s\n", mw, mw, p ? "" : sw->name, pw, pw,
                        s->point_names[p], v1, v2);
            }
            if (sw->note) fprintf(o, "  (%s)\n", sw->note);
        }
    }
}

/* ------------------------------------------------------------ commands */

static const char *INSPECT_HELP =
    "usage: attrib inspect RESULTS.h5 [--point NAME] [--json]\n"
    "A readable summary of a results file (feature attribution, training-data attribution\n"
    "or a sweep): job, model, data, methods with their settings and score statistics,\n"
    "completeness and convergence, metrics, agreement, timing and load balance.\n"
    "  --point NAME   one point of a sweep file, as a plain results file\n"
    "  --json         the same content as one JSON object\n"
    "docs/inspect.md explains every line.\n";

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL, *point = NULL;
    int json = 0;
    at_err err = {0};
    for (int i = 0; i < argc && !err.code; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(INSPECT_HELP, stdout);
            return 0;
        } else if (!strcmp(s, "--json")) {
            json = 1;
        } else if (!strcmp(s, "--point")) {
            if (i + 1 >= argc) at_err_set(&err, AT_EUSER, "inspect: --point needs a point name");
            else point = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            at_err_set(&err, AT_EUSER, "inspect: unknown option '%s' (see attrib inspect --help)",
                       s);
        } else if (!path) {
            path = s;
        } else {
            at_err_set(&err, AT_EUSER, "inspect: unexpected argument '%s' (one results file only)",
                       s);
        }
    }
    if (!err.code && !path)
        at_err_set(&err, AT_EUSER, "inspect: missing results file (usage: attrib inspect "
                   "RESULTS.h5 [--point NAME] [--json])");
    sm_summary s;
    memset(&s, 0, sizeof s);
    if (!err.code) sm_read(&s, path, point, &err);
    if (err.code) {
        cli_error(&err);
        sm_free(&s);
        return err.code;
    }
    if (json) {
        if (s.content == SM_SWEEP) json_sweep(stdout, &s);
        else json_plain(stdout, &s);
        fputc('\n', stdout);
    } else if (s.content == SM_SWEEP) {
        text_sweep(stdout, &s);
    } else {
        text_plain(stdout, &s);
    }
    sm_free(&s);
    return fflush(stdout) == 0 ? 0 : AT_EIO;
}

static const char *TOPK_HELP =
    "usage: attrib topk RESULTS.h5 --method M --sample I [--k K] [--opponents] [--csv]\n"
    "                   [--point NAME] [--data D.h5]\n"
    "Training-data attribution: the K train rows with the highest scores for test sample I\n"
    "(its position on the file's /test axis): rank, train row (split index), label, score.\n"
    "Feature attribution: the K input features with the highest scores of sample I (its\n"
    "position on /sample): rank, feature index, (y, x) for images, score.\n"
    "  --k K          how many (default: the file's top_k, else 10); at most the file's top_k\n"
    "                 when it stores top-k datasets\n"
    "  --opponents    the lowest scores instead (harmful train rows, negative features)\n"
    "  --csv          CSV with a header line instead of the table\n"
    "  --point NAME   one point of a sweep file\n"
    "  --data D.h5    the dataset file to read the labels from (default: the results'\n"
    "                 data_path attribute, the job's data.path)\n"
    "docs/inspect.md describes the output.\n";

typedef struct {
    int64_t pos;   /* index into the row */
    double score;
} scored;

static int cmp_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_asc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score < y->score) return -1;
    if (x->score > y->score) return 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* The K best (or worst) positions of row (d values), ties to the lower position. */
static scored *top_of_row(const float *row, int64_t d, int64_t k, int opponents) {
    scored *all = at_malloc((size_t)d * sizeof *all, "topk");
    for (int64_t i = 0; i < d; i++) all[i] = (scored){i, (double)row[i]};
    qsort(all, (size_t)d, sizeof *all, opponents ? cmp_asc : cmp_desc);
    scored *out = at_malloc((size_t)(k ? k : 1) * sizeof *out, "topk");
    memcpy(out, all, (size_t)k * sizeof *out);
    free(all);
    return out;
}

static int parse_i64(const char *s, int64_t *v) {
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end) return -1;
    *v = x;
    return 0;
}

static void csv_field(FILE *o, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, o);
        return;
    }
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"') fputc('"', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

static int topk_influence(const sm_summary *s, int m, int64_t sample, int64_t k, int k_given,
                          int opponents, int csv, const char *data_override, at_err *err) {
    const sm_method *me = &s->methods[m];
    int64_t ntr = me->ndims == 2 ? me->shape[1] : 0, nte = me->shape[0];
    if (sample < 0 || sample >= nte)
        return at_err_set(err, AT_EUSER, "%s: topk: --sample %lld is outside the file's %lld test "
                          "samples (0 to %lld; positions on /test)", s->path, (long long)sample,
                          (long long)nte, (long long)(nte - 1));
    int from_scores = me->top_k == 0;
    if (!k_given) k = from_scores ? (ntr < 10 ? ntr : 10) : me->top_k;
    if (!from_scores && k > me->top_k)
        return at_err_set(err, AT_EUSER, "%s: topk: --k %lld is more than the %lld top-k rows the "
                          "file keeps (train_data.top_k = %lld); ask for at most %lld, or rerun "
                          "the job with a larger train_data.top_k", s->path, (long long)k,
                          (long long)me->top_k, (long long)me->top_k, (long long)me->top_k);
    if (k > ntr)
        return at_err_set(err, AT_EUSER, "%s: topk: --k %lld is more than the %lld train rows",
                          s->path, (long long)k, (long long)ntr);
    int64_t *rows = at_calloc((size_t)(k + 1), sizeof *rows, "topk");
    double *score = at_calloc((size_t)(k + 1), sizeof *score, "topk");
    int64_t test_row = -1;
    if (sm_read_i64(s, "test", sample, sample + 1, &test_row, err) == 1) test_row = sample;
    if (!err->code && from_scores) {
        float *row = at_malloc((size_t)(ntr + 1) * sizeof *row, "topk");
        int64_t *train = at_malloc((size_t)(ntr + 1) * sizeof *train, "topk");
        if (!sm_scores_rows(s, m, sample, sample + 1, row, err)) {
            if (sm_read_i64(s, "train", 0, ntr, train, err) == 1)
                for (int64_t i = 0; i < ntr; i++) train[i] = i;
            scored *t = top_of_row(row, ntr, k, opponents);
            for (int64_t i = 0; i < k; i++) {
                rows[i] = train[t[i].pos];
                score[i] = t[i].score;
            }
            free(t);
        }
        free(row);
        free(train);
    } else if (!err->code) {
        int64_t *ri = at_malloc((size_t)me->top_k * sizeof *ri, "topk");
        double *rs = at_malloc((size_t)me->top_k * sizeof *rs, "topk");
        char pi[512], ps[512];
        snprintf(pi, sizeof pi, "%s/%s_index", me->group, opponents ? "opponents" : "topk");
        snprintf(ps, sizeof ps, "%s/%s_score", me->group, opponents ? "opponents" : "topk");
        int rc = sm_read_i64(s, pi, sample, sample + 1, ri, err);
        if (!rc) rc = sm_read_f64(s, ps, sample, sample + 1, rs, err);
        if (rc == 1) at_err_set(err, AT_EUSER, "%s: dataset %s or %s is missing", s->path, pi, ps);
        for (int64_t i = 0; !err->code && i < k; i++) {
            rows[i] = ri[i];
            score[i] = rs[i];
        }
        free(ri);
        free(rs);
    }
    /* labels from the train (and test) data file */
    const char *dpath = data_override ? data_override : s->data_path;
    const char *tsplit = s->train_split ? s->train_split : "train";
    int32_t *lab = at_calloc((size_t)(k + 1), sizeof *lab, "topk");
    int32_t test_label = -1;
    if (!err->code && !dpath)
        at_err_set(err, AT_EUSER, "%s: topk: the file names no train data file (data_path); "
                   "give one with --data D.h5", s->path);
    if (!err->code && sm_read_labels(dpath, tsplit, rows, (int)k, lab, err))
        at_err_prefix(err, "%s: topk: train labels (from %s; --data D.h5 reads another file): ",
                      s->path, data_override ? "--data" : "the job's train data path");
    const char *test_path = data_override ? data_override : s->data_path;
    at_err e2 = {0};
    if (!err->code && test_path && s->data_split)
        sm_read_labels(test_path, s->data_split, &test_row, 1, &test_label, &e2);
    char *names[H5IO_MAX_CLASSES] = {0};
    int n_names = err->code ? 0 : h5_dataset_class_names(dpath, names, H5IO_MAX_CLASSES);
    if (!err->code) {
        if (csv) {
            printf("rank,train_row,label,label_name,score\n");
            for (int64_t i = 0; i < k; i++) {
                printf("%lld,%lld,%d,", (long long)i, (long long)rows[i], lab[i]);
                csv_field(stdout, lab[i] >= 0 && lab[i] < n_names ? names[lab[i]] : "");
                printf(",%.9g\n", score[i]);
            }
            if (from_scores)
                fprintf(stderr, "attrib: note: %s has no top-k datasets: ranked from its scores "
                        "row\n", me->name);
        } else {
            printf("method %s (%s), test sample %lld = row %lld of split %s", me->name, me->kind,
                   (long long)sample, (long long)test_row, or_dash(s->data_split));
            if (test_label >= 0)
                printf(", label %d%s%s%s", test_label, test_label < n_names ? " (" : "",
                       test_label < n_names ? names[test_label] : "",
                       test_label < n_names ? ")" : "");
            printf("\n%s: the %lld train rows (split %s) with the %s scores%s\n",
                   opponents ? "opponents" : "proponents", (long long)k, tsplit,
                   opponents ? "lowest" : "highest",
                   from_scores ? ", ranked from the scores row (the file has no top-k datasets)"
                               : "");
            printf("%4s  %9s  %5s  %-16s  %12s\n", "rank", "train_row", "label", "class",
                   "score");
            for (int64_t i = 0; i < k; i++)
                printf("%4lld  %9lld  %5d  %-16.16s  %12.5g\n", (long long)i, (long long)rows[i],
                       lab[i], lab[i] >= 0 && lab[i] < n_names ? names[lab[i]] : "-", score[i]);
        }
    }
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(lab);
    free(rows);
    free(score);
    return err->code;
}

static int topk_features(const sm_summary *s, int m, int64_t sample, int64_t k, int k_given,
                         int opponents, int csv, at_err *err) {
    const sm_method *me = &s->methods[m];
    int64_t n = me->shape[0], d = 1;
    for (int i = 1; i < me->ndims; i++) d *= me->shape[i];
    if (sample < 0 || sample >= n)
        return at_err_set(err, AT_EUSER, "%s: topk: --sample %lld is outside the file's %lld "
                          "samples (0 to %lld; positions on /sample)", s->path, (long long)sample,
                          (long long)n, (long long)(n - 1));
    if (!k_given) k = d < 10 ? d : 10;
    if (k > d)
        return at_err_set(err, AT_EUSER, "%s: topk: --k %lld is more than the %lld features of a "
                          "sample", s->path, (long long)k, (long long)d);
    float *row = at_malloc((size_t)d * sizeof *row, "topk");
    if (sm_scores_rows(s, m, sample, sample + 1, row, err)) {
        free(row);
        return err->code;
    }
    int64_t srow = sample;
    if (sm_read_i64(s, "sample", sample, sample + 1, &srow, err) == 1) srow = sample;
    scored *t = top_of_row(row, d, k, opponents);
    int img = me->ndims == 3;
    int64_t w = img ? me->shape[2] : 1;
    if (!err->code) {
        if (csv) {
            printf(img ? "rank,feature,y,x,score\n" : "rank,feature,score\n");
            for (int64_t i = 0; i < k; i++) {
                printf("%lld,%lld,", (long long)i, (long long)t[i].pos);
                if (img) printf("%lld,%lld,", (long long)(t[i].pos / w), (long long)(t[i].pos % w));
                printf("%.9g\n", t[i].score);
            }
        } else {
            printf("method %s (%s), sample %lld = row %lld of split %s\n", me->name, me->kind,
                   (long long)sample, (long long)srow, or_dash(s->data_split));
            printf("the %lld input features with the %s scores\n", (long long)k,
                   opponents ? "lowest" : "highest");
            if (img) printf("%4s  %8s  %4s  %4s  %12s\n", "rank", "feature", "y", "x", "score");
            else printf("%4s  %8s  %12s\n", "rank", "feature", "score");
            for (int64_t i = 0; i < k; i++) {
                if (img)
                    printf("%4lld  %8lld  %4lld  %4lld  %12.5g\n", (long long)i,
                           (long long)t[i].pos, (long long)(t[i].pos / w),
                           (long long)(t[i].pos % w), t[i].score);
                else
                    printf("%4lld  %8lld  %12.5g\n", (long long)i, (long long)t[i].pos,
                           t[i].score);
            }
        }
    }
    free(t);
    free(row);
    return err->code;
}

int cmd_topk(int argc, char **argv) {
    const char *path = NULL, *point = NULL, *method = NULL, *data = NULL;
    const char *sample_s = NULL, *k_s = NULL;
    int opponents = 0, csv = 0;
    at_err err = {0};
    for (int i = 0; i < argc && !err.code; i++) {
        const char *s = argv[i];
        const char **dst = NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(TOPK_HELP, stdout);
            return 0;
        } else if (!strcmp(s, "--opponents")) {
            opponents = 1;
            continue;
        } else if (!strcmp(s, "--csv")) {
            csv = 1;
            continue;
        } else if (!strcmp(s, "--method")) dst = &method;
        else if (!strcmp(s, "--sample")) dst = &sample_s;
        else if (!strcmp(s, "--k")) dst = &k_s;
        else if (!strcmp(s, "--point")) dst = &point;
        else if (!strcmp(s, "--data")) dst = &data;
        else if (s[0] == '-' && s[1]) {
            at_err_set(&err, AT_EUSER, "topk: unknown option '%s' (see attrib topk --help)", s);
            break;
        } else if (!path) {
            path = s;
            continue;
        } else {
            at_err_set(&err, AT_EUSER, "topk: unexpected argument '%s' (one results file only)", s);
            break;
        }
        if (i + 1 >= argc) at_err_set(&err, AT_EUSER, "topk: %s needs a value", s);
        else *dst = argv[++i];
    }
    int64_t sample = 0, k = 0;
    if (!err.code && (!path || !method || !sample_s))
        at_err_set(&err, AT_EUSER, "topk: usage: attrib topk RESULTS.h5 --method M --sample I "
                   "[--k K] [--opponents] [--csv] (missing %s)",
                   !path ? "the results file" : !method ? "--method" : "--sample");
    if (!err.code && (parse_i64(sample_s, &sample) || sample < 0))
        at_err_set(&err, AT_EUSER, "topk: --sample %s: expected a sample position >= 0", sample_s);
    if (!err.code && k_s && (parse_i64(k_s, &k) || k < 1))
        at_err_set(&err, AT_EUSER, "topk: --k %s: expected a count >= 1", k_s);
    sm_summary s;
    memset(&s, 0, sizeof s);
    if (!err.code) sm_read_light(&s, path, point, &err);
    if (!err.code && s.content == SM_SWEEP) {
        char *pts = sm_join((const char *const *)s.point_names, s.n_points);
        at_err_set(&err, AT_EUSER, "%s: topk: the file is a sweep; choose a point with --point "
                   "NAME (%s)", path, pts);
        free(pts);
    }
    int m = err.code ? -1 : sm_method_index(&s, method);
    if (!err.code && m < 0) {
        char *list = sm_method_list(&s);
        at_err_set(&err, AT_EUSER, "%s: topk: --method %s: no such method; the file has: %s",
                   path, method, list);
        free(list);
    }
    if (!err.code) {
        if (s.content == SM_INFLUENCE)
            topk_influence(&s, m, sample, k, k_s != NULL, opponents, csv, data, &err);
        else
            topk_features(&s, m, sample, k, k_s != NULL, opponents, csv, &err);
    }
    sm_free(&s);
    if (err.code) {
        cli_error(&err);
        return err.code;
    }
    return fflush(stdout) == 0 ? 0 : AT_EIO;
}
