/* sweep.c — `attrib run` of a job with a sweep: section, and `attrib merge`.
 *
 * A sweep (job.h) is a list of points, each an ordinary job: the job file
 * with the point's values as --set overrides. Every point runs as an
 * ordinary run (run_job_prepare, run_job_compute: the same resume, shards
 * and stop handling), all ranks on each point in turn, into
 * OUTPUT.sweep/NNNN.h5 (NNNN = the point's index); then the points are
 * merged into OUTPUT (h5sweep.h): /points/<name> holds each point's whole
 * results file, /sweep the index. A stop (signal, stop file, max_wall_time
 * counted from the start of the sweep) ends with exit 75 and finished
 * points kept; a rerun skips the complete ones (same plan hash). A point
 * whose results are already in OUTPUT (a finished sweep, with the same plan
 * hash) is taken from there, so rerunning a finished sweep computes nothing.
 * --points runs a slice (a SLURM array task) and merges only when the slice
 * is every point; `attrib merge` merges the slices. The job file is read
 * once (cli_job_args.job_text) and the rows are digested once for all the
 * points that read the same rows (run_digest_memo).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"
#include "h5sweep.h"
#include "pipeline.h"

/* What a sweep shares over its points. */
typedef struct {
    const job_sweep *sw;
    char out[JOB_PATH_MAX];       /* output.path */
    char dir[JOB_PATH_MAX + 16];  /* OUTPUT.sweep */
    char stop[JOB_PATH_MAX + 16]; /* run.stop_file or OUTPUT.stop */
    int stop_given;               /* run.stop_file was set */
    int keep, overwrite;          /* output.keep_shards, output.overwrite */
    double max_wall_time;         /* run.max_wall_time, 0 = none */
    char *job_yaml;               /* point 0's effective job + the sweep */
    char *stop_set;               /* "run.stop_file=..." for the points */
    const char *job_file;         /* the job file's path */
    run_digest_memo *digest;      /* the rows' digest, shared by the points */
} sweep_ctx;

/* Status of a point. */
enum { PT_MISSING = 0, PT_STALE, PT_IN_FILE, PT_IN_OUT };

int sweep_load(run_ctx *c, const cli_job_args *a, job_sweep *sw, char **text, at_err *err) {
    memset(sw, 0, sizeof *sw);
    *text = NULL;
    run_job_input in;
    int rc = run_job_input_load(c, a, &in, err);
    if (rc) return rc;
    job_sweep_parse(in.text, a->job_path, in.sets, in.n_sets, sw, err);
    *text = in.text;
    in.text = NULL;
    run_job_input_free(&in);
    return run_agree(c, err);
}

/* The sweep's output, stop file and job text, from point 0's job (the
 * sweep cannot change output.path). Collective. */
static int ctx_init(run_ctx *c, const cli_job_args *a, const job_sweep *sw, sweep_ctx *s,
                    at_err *err) {
    memset(s, 0, sizeof *s);
    s->sw = sw;
    s->job_file = a->job_path;
    run_job_input in;
    int rc = run_job_input_load(c, a, &in, err);
    if (rc) return rc;
    AT_CHECK((size_t)(in.n_sets + sw->n_keys) <= sizeof in.sets / sizeof in.sets[0]);
    for (int k = 0; k < sw->n_keys; k++) in.sets[in.n_sets++] = sw->sets[k];
    job *j = at_malloc(sizeof *j, "sweep job");
    job_parse(in.text, a->job_path, in.sets, in.n_sets, JOB_PURPOSE_RUN, j, err);
    run_job_input_free(&in);
    if ((rc = run_agree(c, err))) {
        free(j);
        return rc;
    }
    snprintf(s->out, sizeof s->out, "%s", j->output_path);
    snprintf(s->dir, sizeof s->dir, "%s.sweep", j->output_path);
    s->stop_given = j->stop_file[0] != '\0';
    if (s->stop_given)
        snprintf(s->stop, sizeof s->stop, "%s", j->stop_file);
    else
        snprintf(s->stop, sizeof s->stop, "%s.stop", j->output_path);
    s->keep = j->keep_shards;
    s->overwrite = j->overwrite;
    s->max_wall_time = j->max_wall_time;
    s->digest = at_calloc(1, sizeof *s->digest, "sweep digest");
    char *y = job_emit_yaml(j), *sy = job_sweep_emit_yaml(sw);
    size_t len = strlen(y) + strlen(sy) + 1;
    s->job_yaml = at_malloc(len, "sweep job text");
    snprintf(s->job_yaml, len, "%s%s", y, sy);
    free(y);
    free(sy);
    len = strlen(s->stop) + 32;
    s->stop_set = at_malloc(len, "stop override");
    snprintf(s->stop_set, len, "run.stop_file=%s", s->stop);
    free(j);
    return 0;
}

static void ctx_release(sweep_ctx *s) {
    free(s->digest);
    free(s->job_yaml);
    free(s->stop_set);
}

/* Point p's file: OUTPUT.sweep/NNNN.h5. */
static void point_file(const sweep_ctx *s, int p, char *out, size_t cap) {
    snprintf(out, cap, "%s/%04d.h5", s->dir, p);
}

/* Point p's arguments: a's, the point's sets, the sweep's stop file (so
 * OUTPUT.stop stops every point) and -o the point's file. *owned (the
 * out path) is the caller's to free. */
static void point_args(const cli_job_args *a, const sweep_ctx *s, int p, cli_job_args *pa,
                       char **owned) {
    *pa = *a;
    AT_CHECK((size_t)(pa->n_sets + s->sw->n_keys + 1) <= sizeof pa->sets / sizeof pa->sets[0]);
    for (int k = 0; k < s->sw->n_keys; k++)
        pa->sets[pa->n_sets++] = s->sw->sets[(size_t)p * s->sw->n_keys + k];
    if (!s->stop_given) pa->sets[pa->n_sets++] = s->stop_set;
    *owned = at_malloc(JOB_PATH_MAX + 32, "point file");
    point_file(s, p, *owned, JOB_PATH_MAX + 32);
    pa->out_path = *owned;
}

/* A fresh context for one point: the sweep's clock for run.max_wall_time,
 * the point's own for its time_total_s and started_at. Collective. */
static void point_ctx(const run_ctx *c, run_ctx *pc) {
    memset(pc, 0, sizeof *pc);
    pc->comm = c->comm;
    pc->rank = c->rank;
    pc->size = c->size;
    pc->t_start = c->t_start;
    pc->t_run = at_now();
    pc->fresh = c->fresh;
    pc->sweep_point = 1;
    run_iso_now(pc->started_at, sizeof pc->started_at);
    MPI_Bcast(pc->started_at, sizeof pc->started_at, MPI_CHAR, 0, pc->comm);
}

/* Where a prepared point's results are (rank 0): its own file with this
 * plan hash, the sweep file's /points/<name> with it, or neither. */
static int point_status(const sweep_ctx *s, int p, const char *plan_hash) {
    char f[JOB_PATH_MAX + 32];
    point_file(s, p, f, sizeof f);
    char *h = NULL;
    int st = PT_MISSING;
    int rc = h5_file_root_attr(f, "plan_hash", &h);
    if (rc == 0) st = !strcmp(h, plan_hash) ? PT_IN_FILE : PT_STALE;
    free(h);
    h = NULL;
    char gp[JOB_SWEEP_NAME_MAX + 16];
    snprintf(gp, sizeof gp, "/points/%s", s->sw->name[p]);
    if (st != PT_IN_FILE && h5_file_obj_attr(s->out, gp, "plan_hash", &h) == 0 &&
        !strcmp(h, plan_hash))
        st = PT_IN_OUT;
    free(h);
    return st;
}

/* --points SPEC -> sel[p] = 1 for the chosen points. */
static int parse_points(const char *spec, int n, uint8_t *sel, at_err *err) {
    memset(sel, 0, (size_t)n);
    if (!spec) {
        memset(sel, 1, (size_t)n);
        return 0;
    }
    char *end;
    long i = -1, j = -1;
    errno = 0;
    if (*spec >= '0' && *spec <= '9') i = strtol(spec, &end, 10);
    if (i < 0 || errno) goto bad;
    if (*end == '\0') {
        if (i >= n) goto range;
        sel[i] = 1;
        return 0;
    }
    char sep = *end;
    const char *r = end + 1;
    if ((sep != ':' && sep != '/') || !(*r >= '0' && *r <= '9')) goto bad;
    j = strtol(r, &end, 10);
    if (*end || errno) goto bad;
    if (sep == '/') {
        if (j < 1 || i >= j)
            return at_err_set(err, AT_EUSER,
                              "--points %s: I/N needs N >= 1 and 0 <= I < N (task I of N)", spec);
        for (int p = 0; p < n; p++) sel[p] = p % j == i;
        return 0;
    }
    if (i >= j || j > n) goto range;
    for (long p = i; p < j; p++) sel[p] = 1;
    return 0;
range:
    return at_err_set(err, AT_EUSER,
                      "--points %s: the sweep has %d points (0..%d); I:J is "
                      "half-open with I < J <= %d",
                      spec, n, n - 1, n);
bad:
    return at_err_set(err, AT_EUSER,
                      "--points %s: expected I, I:J (half-open) or I/N, with "
                      "0-based point numbers",
                      spec);
}

/* Remove OUTPUT.sweep/ (its files; subdirectories are shard directories a
 * point kept, left with a message). Rank 0. */
static void remove_dir(const char *dir) {
    unlink_entries(dir, "");
    if (rmdir(dir) != 0 && errno != ENOENT) AT_WARN("kept %s/: it still holds directories", dir);
}

/* May the sweep write OUTPUT? Yes when it does not exist, with
 * output.overwrite, or when it is a sweep file of this job file (an earlier
 * state of the same sweep). Checked before the first point and again at the
 * merge. Rank 0. */
static int out_replaceable(const sweep_ctx *s) {
    if (s->overwrite || access(s->out, F_OK) != 0) return 1;
    char *content = NULL, *jf = NULL;
    int same = h5_file_root_attr(s->out, "content", &content) == 0 && !strcmp(content, "sweep") &&
               h5_file_root_attr(s->out, "job_file", &jf) == 0 && !strcmp(jf, s->job_file);
    free(content);
    free(jf);
    return same;
}

/* Merge every point (status st[p], plan hash hash[p]) into OUTPUT. Rank 0
 * writes; the code is agreed. */
static int merge(run_ctx *c, const sweep_ctx *s, const uint8_t *st, char (*hash)[65], at_err *err) {
    const job_sweep *sw = s->sw;
    int rc = 0;
    if (c->rank == 0) {
        size_t cap = 1, len = 0;
        for (int p = 0; p < sw->n_points; p++) cap += strlen(sw->name[p]) + 90;
        char *text = at_malloc(cap, "sweep plan");
        text[0] = '\0';
        for (int p = 0; p < sw->n_points; p++) {
            int w = snprintf(text + len, cap - len, "%04d %s %s\n", p, hash[p], sw->name[p]);
            AT_CHECK(w > 0 && (size_t)w < cap - len);
            len += (size_t)w;
        }
        char plan_hash[65];
        at_sha256_buf_hex(text, len, plan_hash);
        char *old = NULL;
        int have = h5_file_root_attr(s->out, "plan_hash", &old);
        if (have == 0 && !strcmp(old, plan_hash)) {
            printf("%s already holds this sweep's results (plan %.12s...); nothing to do.\n",
                   s->out, plan_hash);
        } else if (!out_replaceable(s)) {
            rc = at_err_set(err, AT_EUSER,
                            "%s exists and holds other results (plan_hash %.12s...); the "
                            "points are kept in %s/: set output.overwrite: true (or --set "
                            "output.overwrite=true) to replace it, or choose another "
                            "output.path",
                            s->out, old ? old : "none", s->dir);
        } else {
            /* points already in OUTPUT are copied from it: h5_sweep_write
             * reads its sources read-only and renames the new file over it
             * only when it is complete */
            h5_sweep_point *pts = at_calloc((size_t)sw->n_points, sizeof *pts, "sweep points");
            char(*files)[JOB_PATH_MAX + 32] =
                at_malloc((size_t)sw->n_points * sizeof *files, "point files");
            for (int p = 0; p < sw->n_points; p++) {
                pts[p].name = sw->name[p];
                pts[p].in_sweep_file = st[p] == PT_IN_OUT;
                if (pts[p].in_sweep_file) {
                    pts[p].src_file = s->out;
                } else {
                    point_file(s, p, files[p], sizeof files[p]);
                    pts[p].src_file = files[p];
                }
            }
            const char **vals =
                at_malloc((size_t)sw->n_points * sw->n_keys * sizeof(char *) + 1, "sweep values");
            for (int p = 0; p < sw->n_points; p++)
                for (int k = 0; k < sw->n_keys; k++)
                    vals[(size_t)p * sw->n_keys + k] = sw->val[k][job_sweep_index(sw, p, k)];
            h5_sweep_desc d = {.job_yaml = s->job_yaml,
                               .job_file = s->job_file,
                               .plan = text,
                               .plan_hash = plan_hash,
                               .n_points = sw->n_points,
                               .n_keys = sw->n_keys,
                               .keys = (const char *const *)sw->key,
                               .values = vals,
                               .points = pts};
            rc = h5_sweep_write(s->out, &d, err);
            if (!rc) {
                printf("wrote %s: %d points of the sweep (/points/<name>, index /sweep)\n", s->out,
                       sw->n_points);
                if (!s->keep) remove_dir(s->dir);
            }
            free(vals);
            free(files);
            free(pts);
        }
        free(old);
        free(text);
        fflush(stdout);
    }
    return run_agree(c, err);
}

/* Prepare point p (job, inputs, plan, digest, plan hash). Collective. */
static int prepare_point(run_ctx *c, const cli_job_args *a, const sweep_ctx *s, int p, run_ctx *pc,
                         cli_job_args *pa, char **owned, at_err *err) {
    point_ctx(c, pc);
    pc->digest_memo = s->digest;
    point_args(a, s, p, pa, owned);
    int rc = run_job_prepare(pc, pa, err);
    if (rc && c->rank == 0)
        fprintf(stderr, "attrib: (the error above is of sweep point %d of %d, '%s')\n", p,
                s->sw->n_points, s->sw->name[p]);
    return rc;
}

/* One line per point and the totals (validate, --dry-run). */
static int sweep_describe(run_ctx *c, const cli_job_args *a, const sweep_ctx *s, const uint8_t *sel,
                          int validate_only, at_err *err) {
    const job_sweep *sw = s->sw;
    double t_passes = 0, t_bytes = 0, peak = 0;
    int n_sel = 0, n_done = 0, rc = 0;
    if (c->rank == 0)
        printf("sweep: %d point%s (%d key%s) -> %s, points in %s/\n", sw->n_points,
               sw->n_points == 1 ? "" : "s", sw->n_keys, sw->n_keys == 1 ? "" : "s", s->out,
               s->dir);
    for (int p = 0; p < sw->n_points && !rc; p++) {
        if (!sel[p]) continue;
        run_ctx pc;
        cli_job_args pa;
        char *owned = NULL;
        rc = prepare_point(c, a, s, p, &pc, &pa, &owned, err);
        if (!rc && c->rank == 0) {
            double passes, bytes;
            plan_totals(&pc.p, &passes, &bytes);
            plan_memory m;
            plan_memory_estimate(&pc.p, &pc.j, &pc.model, c->size, &m);
            int st = point_status(s, p, pc.plan_hash);
            char hb[32], ov[1024] = "";
            at_human_bytes(bytes, hb, sizeof hb);
            size_t len = 0;
            for (int k = 0; k < sw->n_keys; k++) {
                int w = snprintf(ov + len, sizeof ov - len, "%s--set %s", k ? " " : "",
                                 sw->sets[(size_t)p * sw->n_keys + k]);
                if (w > 0 && (size_t)w < sizeof ov - len) len += (size_t)w;
            }
            printf("point %04d %-28s %s: %lld units, %.0f passes, output %s, %s\n", p, sw->name[p],
                   ov, (long long)pc.p.n_units, passes, hb,
                   st == PT_IN_FILE || st == PT_IN_OUT ? "done" : "to do");
            t_passes += passes;
            t_bytes += bytes;
            if (m.peak > peak) peak = m.peak;
            n_sel++;
            n_done += st == PT_IN_FILE || st == PT_IN_OUT;
        }
        run_ctx_free(&pc);
        free(owned);
    }
    if (rc) return rc;
    if (c->rank == 0) {
        char hb[32], mb[32];
        at_human_bytes(t_bytes, hb, sizeof hb);
        at_human_bytes(peak, mb, sizeof mb);
        if (validate_only)
            printf("%s: job is valid (%d sweep points)\n", a->job_path, sw->n_points);
        printf("total: %d point%s (%d done, %d to do), %.0f forward+backward passes "
               "(%.0f per rank); output at most %s before compression; memory per rank "
               "about %s (the largest point)\n",
               n_sel, n_sel == 1 ? "" : "s", n_done, n_sel - n_done, t_passes, t_passes / c->size,
               hb, mb);
    }
    return 0;
}

/* Stop before the next point? A signal, the stop file, or
 * run.max_wall_time passed (counted from the sweep's start): rank 0
 * decides, every rank gets the reason. */
static stop_reason stop_requested(run_ctx *c, const sweep_ctx *s) {
    int r = STOP_NONE;
    if (c->rank == 0) {
        if (stop_signal_received())
            r = STOP_SIGNAL;
        else if (access(s->stop, F_OK) == 0)
            r = STOP_FILE;
        else if (s->max_wall_time > 0 && at_now() - c->t_start >= s->max_wall_time)
            r = STOP_WALL_TIME;
    }
    MPI_Bcast(&r, 1, MPI_INT, 0, c->comm);
    return (stop_reason)r;
}

int sweep_main(run_ctx *c, const cli_job_args *a, const job_sweep *sw, int validate_only,
               at_err *err) {
    sweep_ctx s;
    int rc = ctx_init(c, a, sw, &s, err);
    if (rc) return rc;
    const int n = sw->n_points;
    uint8_t *sel = at_malloc((size_t)n, "point selection"), *st = at_calloc((size_t)n, 1, "points");
    char(*hash)[65] = at_calloc((size_t)n, sizeof *hash, "plan hashes");
    parse_points(a->points, n, sel, err);
    if ((rc = run_agree(c, err))) goto done;
    int all = 1;
    for (int p = 0; p < n; p++) all &= sel[p];
    if (validate_only || a->dry_run) {
        rc = sweep_describe(c, a, &s, sel, validate_only, err);
        goto done;
    }
    if (c->rank == 0) {
        if (!out_replaceable(&s))
            at_err_set(err, AT_EUSER,
                       "%s exists and is not this job file's sweep results; set "
                       "output.overwrite: true (or --set output.overwrite=true) to replace it "
                       "when the sweep finishes, or choose another output.path",
                       s.out);
        if (!err->code && access(s.stop, F_OK) == 0) {
            AT_INFO("removing the stop file %s left from an earlier run", s.stop);
            unlink(s.stop);
        }
    }
    if ((rc = run_agree(c, err))) goto done;
    int n_run = 0, n_sel = 0;
    for (int p = 0; p < n; p++) n_sel += sel[p];
    for (int p = 0; p < n && !rc; p++) {
        if (!sel[p]) continue;
        stop_reason why = stop_requested(c, &s);
        if (why != STOP_NONE) {
            if (c->rank == 0) {
                fprintf(stderr,
                        "attrib: stopped early: %s. %d of %d selected sweep points "
                        "are done and kept in %s/; rerun the same command to resume (exit %d).\n",
                        why == STOP_SIGNAL ? "a signal" : stop_reason_text(why), n_run, n_sel,
                        s.dir, AT_EXIT_RESUMABLE);
                fflush(stderr);
            }
            rc = AT_EXIT_RESUMABLE;
            break;
        }
        run_ctx pc;
        cli_job_args pa;
        char *owned = NULL;
        if (c->rank == 0) AT_INFO("sweep point %d of %d: %s", p, n, sw->name[p]);
        rc = prepare_point(c, a, &s, p, &pc, &pa, &owned, err);
        if (!rc) {
            int status = 0;
            if (c->rank == 0) {
                status = point_status(&s, p, pc.plan_hash);
                memcpy(hash[p], pc.plan_hash, 65);
            }
            MPI_Bcast(&status, 1, MPI_INT, 0, c->comm);
            if (status == PT_IN_OUT && !c->fresh) {
                if (c->rank == 0)
                    printf("point %d (%s): already in %s; nothing to do\n", p, sw->name[p], s.out);
                st[p] = PT_IN_OUT;
            } else {
                /* the directory appears with the first point computed, so a
                 * sweep refused before that leaves nothing behind */
                if (c->rank == 0 && mkdir_p(s.dir, err)) at_err_prefix(err, "%s: ", s.out);
                /* a point file of an earlier state of the sweep is ours to
                 * replace (a plain run would ask for output.overwrite) */
                if (c->rank == 0 && status == PT_STALE && !err->code) {
                    char f[JOB_PATH_MAX + 32];
                    point_file(&s, p, f, sizeof f);
                    AT_INFO("point %d (%s): %s holds another plan; computing it again", p,
                            sw->name[p], f);
                    unlink(f);
                }
                rc = run_agree(c, err);
                if (!rc) rc = run_job_compute(&pc, &pa, err);
                st[p] = PT_IN_FILE;
            }
        }
        run_ctx_free(&pc);
        free(owned);
        if (!rc) n_run++;
        if (rc == AT_EXIT_RESUMABLE && c->rank == 0)
            fprintf(stderr, "attrib: sweep: %d of %d selected points done, kept in %s/\n", n_run,
                    n_sel, s.dir);
    }
    if (rc) goto done;
    if (!all) {
        if (c->rank == 0)
            printf("sweep: %d selected point%s done in %s/; `attrib merge %s` merges them when "
                   "every point is done\n",
                   n_sel, n_sel == 1 ? "" : "s", s.dir, a->job_path);
        goto done;
    }
    rc = merge(c, &s, st, hash, err);
done:
    free(sel);
    free(st);
    free(hash);
    ctx_release(&s);
    return rc;
}

static const char *MERGE_HELP =
    "usage: attrib merge JOB.yaml [-o OUT.h5] [--set section.key=value]...\n"
    "Merges the points of a sweep (the job's sweep: section) from OUT.h5.sweep/\n"
    "(written by `attrib run JOB.yaml --points ...`, e.g. SLURM array tasks) into\n"
    "OUT.h5 (docs/format.md, Sweeps). Every point must be there with the plan of\n"
    "the job as it is now: otherwise it refuses (exit 2) and lists the missing or\n"
    "stale points. Give the same -o and --set options as the runs.\n";

int cmd_merge(int argc, char **argv) {
    MPI_Init(NULL, NULL);
    run_ctx c;
    run_ctx_start(&c);
    at_err err = {0};
    cli_job_args a;
    char *job_text = NULL;
    int rc = 0;
    if (cli_parse_job_args(argc, argv, 1, &a, &err) == 0 && (a.dry_run || a.fresh || a.points))
        at_err_set(&err, AT_EUSER, "merge takes JOB.yaml, -o and --set only (see --help)");
    if (err.code) {
        if (c.rank == 0) cli_error(&err);
        MPI_Finalize();
        return AT_EUSER;
    }
    if (a.help) {
        if (c.rank == 0) fputs(MERGE_HELP, stdout);
        MPI_Finalize();
        return 0;
    }
    eng_set_threads(1);
    job_sweep sw;
    if ((rc = sweep_load(&c, &a, &sw, &job_text, &err))) goto out;
    a.job_text = job_text;
    if (!sw.n_points) {
        at_err_set(&err, AT_EUSER, "%s: no sweep: section; merge combines a sweep's points",
                   a.job_path);
        rc = run_agree(&c, &err);
        goto out;
    }
    sweep_ctx s;
    if ((rc = ctx_init(&c, &a, &sw, &s, &err))) goto out_sw;
    const int n = sw.n_points;
    uint8_t *st = at_calloc((size_t)n, 1, "points");
    char(*hash)[65] = at_calloc((size_t)n, sizeof *hash, "plan hashes");
    for (int p = 0; p < n && !rc; p++) {
        run_ctx pc;
        cli_job_args pa;
        char *owned = NULL;
        rc = prepare_point(&c, &a, &s, p, &pc, &pa, &owned, &err);
        if (!rc && c.rank == 0) {
            st[p] = (uint8_t)point_status(&s, p, pc.plan_hash);
            memcpy(hash[p], pc.plan_hash, 65);
        }
        run_ctx_free(&pc);
        free(owned);
    }
    if (!rc && c.rank == 0) {
        char list[AT_ERR_MSG / 2] = "";
        size_t len = 0;
        int bad = 0;
        for (int p = 0; p < n; p++) {
            if (st[p] == PT_IN_FILE || st[p] == PT_IN_OUT) continue;
            bad++;
            char f[JOB_PATH_MAX + 32];
            point_file(&s, p, f, sizeof f);
            int w =
                snprintf(list + len, sizeof list - len, "%s%d (%s, %s: %s)", len ? ", " : "", p,
                         sw.name[p], f, st[p] == PT_STALE ? "stale: of another plan" : "missing");
            if (w > 0 && (size_t)w < sizeof list - len) len += (size_t)w;
        }
        if (bad)
            at_err_set(&err, AT_EUSER,
                       "%s: cannot merge into %s: %d of %d points are not done: %s; run them "
                       "(attrib run %s --points I) and merge again",
                       a.job_path, s.out, bad, n, list, a.job_path);
    }
    if (!rc) rc = run_agree(&c, &err);
    if (!rc) rc = merge(&c, &s, st, hash, &err);
    free(st);
    free(hash);
    ctx_release(&s);
out_sw:
    job_sweep_free(&sw);
out:
    free(job_text);
    MPI_Finalize();
    return rc;
}
