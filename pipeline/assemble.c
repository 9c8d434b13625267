/* assemble.c — the results file from the shards.
 *
 * Once every unit is in a shard, each rank takes a contiguous range of row
 * blocks (the same for every method), reads its rows and their logits, folds
 * each (method, row block)'s unit partials from the shards in unit order
 * (float64; never in arrival order), finalizes scores and per-sample
 * statistics, and all ranks write the results file collectively (parallel
 * HDF5) to OUT.partial; rank 0 fsyncs and renames it to OUT, then removes
 * the shard directory. Killed at any point, a rerun finds every unit done
 * and only assembles again.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "h5shard.h"
#include "metrics.h"
#include "pipeline.h"

/* Metric columns of a method, written as /metrics/<method>/<name>. */
enum { N_METRICS = 7 };
static const char *const METRIC_NAMES[N_METRICS] = {
    "deletion_morf", "deletion_lerf", "insertion_morf", "insertion_lerf",
    "infidelity", "infidelity_normalized", "sensitivity_max"};
static const char *const METRIC_DOCS[N_METRICS] = {
    "area under the deletion curve, most relevant features removed first",
    "area under the deletion curve, least relevant features removed first",
    "area under the insertion curve, most relevant features inserted first",
    "area under the insertion curve, least relevant features inserted first",
    "infidelity: mean (I . scores - (f(x) - f(x - I)))^2 over Gaussian I",
    "infidelity with scores scaled by the optimal beta",
    "sensitivity-max: max ||scores(x + d) - scores(x)|| / ||scores(x)|| over uniform d"};
static const char *const AGREE_NAMES[3] = {"spearman", "kendall", "top_k_overlap"};
static const char *const AGREE_DOCS[3] = {
    "Spearman rank correlation of the two methods' scores per sample",
    "Kendall tau-b of the two methods' scores per sample",
    "overlap of the two methods' top-k features by |score| per sample"};

/* Finished rows owned by this rank, per method: one range of rows. */
typedef struct {
    int n_ranges;
    int64_t row0[1], nrows[1];
    float *scores;               /* (rows, D) */
    int32_t *target;             /* (rows) */
    float *delta, *output_diff;  /* (rows), methods with a delta only */
    float *met[N_METRICS];       /* (rows) per metric column, NULL = not computed */
    float *agree[JOB_MAX_METHODS][3]; /* (rows) vs each later method: Spearman,
                                         Kendall, top-k overlap; NULL = off */
    int64_t filled;              /* rows so far */
} method_out;

/* The samples' own data for the same rows. */
typedef struct {
    int32_t *label, *pred;
    float *logits;
    int64_t filled;
} samples_out;

static const char *feature_dim_names[2][3] = {{"feature", NULL, NULL}, {"y", "x", NULL}};

static int jmt_top_k(const job *j, int D) {
    return j->metrics.top_k < D ? j->metrics.top_k : D;
}

void results_fields_attrs(h5_results *r, const char *grp, const char *fields, at_err *err) {
    char *f = at_strdup(fields, "fields");
    for (char *q = f; *q;) {
        char *eol = strchr(q, '\n');
        if (eol) *eol = '\0';
        char *colon = strstr(q, ": ");
        if (colon && strncmp(q, "name: ", 6) && strncmp(q, "kind: ", 6)) {
            *colon = '\0';
            const char *key = q, *val = colon + 2;
            char *end = NULL;
            double x = strtod(val, &end);
            if (val[0] == '[' && val[1] && strchr("+-.0123456789", val[1])) {
                double v[8];
                int n = 0;
                for (const char *t = val + 1; *t && *t != ']' && n < 8;) {
                    v[n++] = strtod(t, &end);
                    t = end + strspn(end, ", ");
                }
                h5_results_attr_f64v(r, grp, key, v, n, err);
            } else if (!strcmp(val, "true") || !strcmp(val, "false")) {
                h5_results_attr_i64(r, grp, key, val[0] == 't', err);
            } else if (end != val && *end == '\0' && strcmp(key, "target")) {
                if (x == (double)(int64_t)x && !strpbrk(val, ".eE"))
                    h5_results_attr_i64(r, grp, key, (int64_t)x, err);
                else
                    h5_results_attr_f64(r, grp, key, x, err);
            } else {
                size_t n = strlen(val);
                if (n >= 2 && val[0] == '"' && val[n - 1] == '"') { /* a quoted string */
                    colon[2 + n - 1] = '\0';
                    val++;
                }
                h5_results_attr_str(r, grp, key, val, err);
            }
        }
        if (!eol) break;
        q = eol + 1;
    }
    free(f);
}

static int write_results(run_ctx *c, const char *tmp_path, method_out *mo,
                         samples_out *so, const work_stats *ws, const assemble_stats *st,
                         at_err *err) {
    const plan *p = &c->p;
    const job *j = &c->j;
    const int64_t N = p->n_rows, C = p->n_classes;
    const int fd = c->info.n_feat_dims;
    h5_results *r = NULL;
    if (h5_results_create(&r, tmp_path, c->comm, err)) return err->code;

    /* dimension scales */
    int64_t *idx = at_malloc((size_t)N * sizeof(int64_t), "sample index");
    for (int64_t i = 0; i < N; i++) idx[i] = c->row_start + i;
    h5_results_scale(r, "sample", H5IO_I64, N, idx, "row index of the sample in the dataset split", err);
    free(idx);
    int32_t *cls = at_malloc((size_t)C * sizeof(int32_t), "class index");
    for (int64_t k = 0; k < C; k++) cls[k] = (int32_t)k;
    h5_results_scale(r, "class", H5IO_I32, C, cls, "class index (model output)", err);
    free(cls);
    for (int d = 0; d < fd; d++) {
        int64_t n = c->info.feat_shape[d];
        int32_t *v = at_malloc((size_t)n * sizeof(int32_t), "feature index");
        for (int64_t k = 0; k < n; k++) v[k] = (int32_t)k;
        h5_results_scale(r, feature_dim_names[fd - 1][d], H5IO_I32, n, v,
                         "feature index along this input axis", err);
        free(v);
    }

    /* samples */
    const char *s_dims[1] = {"sample"}, *sc_dims[2] = {"sample", "class"};
    int64_t dn[1] = {N}, dnc[2] = {N, C};
    const int z = j->compression, br = p->block_rows;
    h5_results_dataset(r, "/samples/label", H5IO_I32, 1, dn, s_dims, br, z, "dataset label", err);
    h5_results_dataset(r, "/samples/predicted", H5IO_I32, 1, dn, s_dims, br, z,
                       "argmax of the model's logits", err);
    h5_results_dataset(r, "/samples/logits", H5IO_F32, 2, dnc, sc_dims, br, z,
                       "model logits on the sample", err);
    const method_out *m0 = &mo[0];
    h5_results_write_rows(r, "/samples/label", m0->n_ranges, m0->row0, m0->nrows, so->label, err);
    h5_results_write_rows(r, "/samples/predicted", m0->n_ranges, m0->row0, m0->nrows, so->pred, err);
    h5_results_write_rows(r, "/samples/logits", m0->n_ranges, m0->row0, m0->nrows, so->logits, err);

    /* attributions */
    int64_t sdims[1 + H5IO_MAX_DIMS];
    const char *sdn[1 + H5IO_MAX_DIMS];
    sdims[0] = N;
    sdn[0] = "sample";
    for (int d = 0; d < fd; d++) {
        sdims[1 + d] = c->info.feat_shape[d];
        sdn[1 + d] = feature_dim_names[fd - 1][d];
    }
    char path[512], grp[200];
    for (int m = 0; m < p->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        const mth_spec *sp = &p->specs[m];
        method_out *o = &mo[m];
        snprintf(grp, sizeof grp, "/attributions/%s", jm->name);
        snprintf(path, sizeof path, "%s/scores", grp);
        h5_results_dataset(r, path, H5IO_F32, 1 + fd, sdims, sdn, br, z,
                           "attribution score of each input feature", err);
        h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->scores, err);
        snprintf(path, sizeof path, "%s/target", grp);
        h5_results_dataset(r, path, H5IO_I32, 1, dn, s_dims, br, z, "class whose logit is attributed", err);
        h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->target, err);
        if (mth_delta(sp)) {
            const int out_only = mth_delta(sp) == MTH_DELTA_OUTPUT;
            snprintf(path, sizeof path, "%s/delta", grp);
            h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z,
                               out_only ? "conservation error sum(scores) - f(x)"
                                        : "completeness error sum(scores) - (f(x) - f(baseline))",
                               err);
            h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->delta, err);
            snprintf(path, sizeof path, "%s/output_diff", grp);
            h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z,
                               out_only ? "f(x), the target logit"
                                        : "f(x) - f(baseline) of the target logit", err);
            h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->output_diff, err);
        }
        h5_results_attr_str(r, grp, "kind", job_method_kind_name(jm->kind), err);
        h5_results_attr_str(r, grp, "output", "logit", err);
        char *fields = job_method_emit(jm);
        results_fields_attrs(r, grp, fields, err);
        free(fields);
        if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS && sp->alpha) {
            h5_results_attr_f64v(r, grp, "alphas", sp->alpha, sp->n_cols, err);
            h5_results_attr_f64v(r, grp, "weights", sp->weight, sp->n_cols, err);
        }
        h5_results_attr_i64(r, grp, "columns", sp->n_cols, err);
        if (c->groups[m]) h5_results_attr_i64(r, grp, "n_groups", c->n_groups[m], err);
        if (c->refs[m]) h5_results_attr_i64(r, grp, "n_references_used", c->n_refs[m], err);
        snprintf(grp, sizeof grp, "/metrics/%s", jm->name);
        for (int k = 0; k < N_METRICS; k++) {
            if (!o->met[k]) continue;
            snprintf(path, sizeof path, "%s/%s", grp, METRIC_NAMES[k]);
            h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z, METRIC_DOCS[k], err);
            h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->met[k], err);
        }
        for (int b = m + 1; b < p->n_methods; b++)
            for (int k = 0; k < 3; k++) {
                if (!o->agree[b][k]) continue;
                snprintf(path, sizeof path, "%s/agreement/%s/%s", grp, j->methods[b].name,
                         AGREE_NAMES[k]);
                h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z, AGREE_DOCS[k], err);
                h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->agree[b][k],
                                      err);
            }
        if (o->met[0] || o->met[4] || o->met[6]) {
            const job_metrics *jmt = &j->metrics;
            h5_results_attr_i64(r, grp, "curve_steps", jmt->curve_steps, err);
            h5_results_attr_str(r, grp, "curve_output", jmt->curve_logit ? "logit" : "probability", err);
            h5_results_attr_f64(r, grp, "fill_value", jmt->fill_value, err);
            h5_results_attr_i64(r, grp, "infidelity_perturbations", jmt->infidelity, err);
            h5_results_attr_f64(r, grp, "infidelity_sigma", jmt->infidelity_sigma, err);
            h5_results_attr_i64(r, grp, "sensitivity_perturbations", jmt->sensitivity, err);
            h5_results_attr_f64(r, grp, "sensitivity_radius", jmt->sensitivity_radius, err);
        }
        if (o->agree[m + 1 < p->n_methods ? m + 1 : 0][0] && m + 1 < p->n_methods)
            h5_results_attr_i64(r, grp, "top_k", jmt_top_k(j, (int)c->p.n_features), err);
    }

    /* provenance: identical values on every rank (collective attributes) */
    char host[256] = "", finished[32];
    if (c->rank == 0) gethostname(host, sizeof host - 1);
    run_iso_now(finished, sizeof finished);
    MPI_Bcast(host, sizeof host, MPI_CHAR, 0, c->comm);
    MPI_Bcast(finished, sizeof finished, MPI_CHAR, 0, c->comm);
    double t[2] = {ws->compute_s, st->fold_s}, tmax[2];
    MPI_Allreduce(t, tmax, 2, MPI_DOUBLE, MPI_MAX, c->comm);
    double elapsed = at_now() - c->t_run;
    MPI_Bcast(&elapsed, 1, MPI_DOUBLE, 0, c->comm);
    double *units = at_malloc((size_t)c->size * sizeof(double), "units per rank");
    double mine = (double)ws->units_computed;
    MPI_Allgather(&mine, 1, MPI_DOUBLE, units, 1, MPI_DOUBLE, c->comm);

    h5_results_attr_str(r, "/", "format", "attrib-results", err);
    h5_results_attr_i64(r, "/", "format_version", 1, err);
    h5_results_attr_str(r, "/", "attrib_version", ATTRIB_VERSION, err);
    h5_results_attr_str(r, "/", "job_yaml", c->job_yaml, err);
    h5_results_attr_str(r, "/", "job_file", j->source_path, err);
    h5_results_attr_str(r, "/", "plan_hash", c->plan_hash, err);
    h5_results_attr_str(r, "/", "plan", c->plan_text, err);
    h5_results_attr_str(r, "/", "model_path", j->model_path, err);
    h5_results_attr_str(r, "/", "model_sha256", c->minfo.sha256, err);
    if (j->model_epoch > 0) {
        h5_results_attr_i64(r, "/", "model_epoch", j->model_epoch, err);
        h5_results_attr_str(r, "/", "model_checkpoints", j->model_ckpt_path, err);
    }
    h5_results_attr_str(r, "/", "data_path", j->data_path, err);
    h5_results_attr_str(r, "/", "data_split", j->data_split, err);
    h5_results_attr_str(r, "/", "data_sha256", c->data_sha, err);
    h5_results_attr_i64(r, "/", "row_start", c->row_start, err);
    h5_results_attr_i64(r, "/", "row_end", c->row_start + N, err);
    h5_results_attr_i64(r, "/", "n_ranks", c->size, err);
    h5_results_attr_str(r, "/", "scheduler", job_scheduler_name(j->scheduler), err);
    h5_results_attr_f64v(r, "/", "units_per_rank", units, c->size, err);
    h5_results_attr_i64(r, "/", "units_resumed", c->n_done_before, err);
    h5_results_attr_str(r, "/", "host", host, err);
    h5_results_attr_str(r, "/", "started_at", c->started_at, err);
    h5_results_attr_str(r, "/", "finished_at", finished, err);
    h5_results_attr_f64(r, "/", "time_total_s", elapsed, err);
    h5_results_attr_f64(r, "/", "time_compute_max_s", tmax[0], err);
    h5_results_attr_f64(r, "/", "time_fold_max_s", tmax[1], err);
    free(units);
    h5_results_close(r, err);
    return err->code;
}


static void method_out_init(method_out *o, int64_t row0, int64_t rows, int64_t D) {
    memset(o, 0, sizeof *o);
    o->n_ranges = rows > 0;
    o->row0[0] = row0;
    o->nrows[0] = rows;
    o->scores = at_malloc((size_t)(rows * D + 1) * sizeof(float), "scores");
    o->target = at_malloc((size_t)(rows + 1) * sizeof(int32_t), "targets");
    o->delta = at_malloc((size_t)(rows + 1) * sizeof(float), "deltas");
    o->output_diff = at_malloc((size_t)(rows + 1) * sizeof(float), "output diffs");
}

/* Which metric columns and agreements method m gets. */
static void method_out_metrics(method_out *o, const job *j, int m, int64_t rows) {
    const job_metrics *jm = &j->metrics;
    for (int k = 0; k < N_METRICS; k++) {
        int on = k < 4 ? jm->curves : k < 6 ? jm->infidelity > 0 : jm->sensitivity > 0;
        if (on) o->met[k] = at_malloc((size_t)(rows + 1) * sizeof(float), "metric column");
    }
    if (jm->agreement)
        for (int b = m + 1; b < j->n_methods; b++)
            for (int k = 0; k < 3; k++)
                o->agree[b][k] = at_malloc((size_t)(rows + 1) * sizeof(float), "agreement");
}

static void method_out_free(method_out *o) {
    for (int k = 0; k < N_METRICS; k++) free(o->met[k]);
    for (int b = 0; b < JOB_MAX_METHODS; b++)
        for (int k = 0; k < 3; k++) free(o->agree[b][k]);
    free(o->scores);
    free(o->target);
    free(o->delta);
    free(o->output_diff);
}

/* The metrics of method m on a finalized row block (scores (R, D)), into
 * o's columns at o->filled. fill (D): the value of deleted features. */
static void block_metrics(run_ctx *c, mth_scratch *sc, int m, const mth_rows *rows,
                          const float *scores, method_out *o, const float *fill) {
    const job_metrics *jm = &c->j.metrics;
    if (!jm->curves && !jm->infidelity && !jm->sensitivity) return;
    mtr_config mc;
    mtr_config_default(&mc);
    mc.n_steps = jm->curve_steps;
    mc.use_prob = !jm->curve_logit;
    mc.infid_n = jm->infidelity > 0 ? jm->infidelity : 1;
    mc.infid_sigma = jm->infidelity_sigma;
    mc.sens_n = jm->sensitivity > 0 ? jm->sensitivity : 1;
    mc.sens_radius = jm->sensitivity_radius;
    mc.seed = c->j.seed;
    mc.stream = (uint64_t)m;
    const int R = rows->R;
    double *out = at_malloc(((size_t)R * 4 + 1) * sizeof(double), "metric values");
    const size_t at = (size_t)o->filled;
    if (jm->curves) {
        mth_rows fr = *rows;
        fr.baseline = fill;
        mtr_deletion_insertion(&mc, &c->model, sc, &fr, scores, out, NULL);
        for (int r = 0; r < R; r++)
            for (int k = 0; k < 4; k++) o->met[k][at + r] = (float)out[4 * r + k];
    }
    if (jm->infidelity) {
        mtr_infidelity(&mc, &c->model, sc, rows, scores, out);
        for (int r = 0; r < R; r++)
            for (int k = 0; k < 2; k++) o->met[4 + k][at + r] = (float)out[2 * r + k];
    }
    if (jm->sensitivity) {
        mtr_sensitivity_max(&mc, &c->p.specs[m], &c->model, sc, rows, scores, out);
        for (int r = 0; r < R; r++) o->met[6][at + r] = (float)out[r];
    }
    free(out);
}

/* Fold and finalize the row blocks [rb_lo, rb_hi) of every method. */
static int fold_rows(run_ctx *c, const shard_scan *s, int64_t rb_lo, int64_t rb_hi,
                     method_out *mo, samples_out *so, assemble_stats *st, at_err *err) {
    const plan *p = &c->p;
    const int D = (int)p->n_features, C = (int)p->n_classes, BR = p->block_rows;
    mth_scratch sc;
    mth_scratch_init(&sc, &c->model, plan_engine_batch(&c->model));
    block_cache b;
    block_cache_init(&b, p);
    int32_t *target = at_malloc((size_t)BR * sizeof(int32_t), "block targets");
    const size_t W = (size_t)p->width;
    double *acc = at_malloc((size_t)BR * W * sizeof(double), "fold accumulator");
    double *tmp = at_malloc(((size_t)BR * W + 1) * sizeof(double), "unit partial");
    double *fb = at_malloc((size_t)JOB_MAX_METHODS * C * sizeof(double), "baseline logits");
    h5_shard_reader *rd = h5_shard_reader_new();
    float *fill = at_malloc((size_t)D * sizeof(float), "metric fill");
    for (int d = 0; d < D; d++) fill[d] = (float)c->j.metrics.fill_value;
    double *met = at_malloc(((size_t)BR * 4 + 1) * sizeof(double), "metric values");
    for (int m = 0; m < p->n_methods; m++)
        if (mth_delta(&p->specs[m]) == MTH_DELTA_DIFF) { /* the baseline's logits, once */
            const float *lg = eng_model_forward(&c->model, &sc.ws, c->baseline[m], 1);
            for (int k = 0; k < C; k++) fb[(size_t)m * C + k] = lg[k];
        }
    for (int64_t rb = rb_lo; rb < rb_hi && !err->code; rb++) {
        if (block_load(c, &sc, &b, rb, err)) break;
        memcpy(so->label + so->filled, b.label, (size_t)b.nrows * sizeof(int32_t));
        memcpy(so->pred + so->filled, b.pred, (size_t)b.nrows * sizeof(int32_t));
        memcpy(so->logits + (size_t)so->filled * C, b.logits, (size_t)b.nrows * C * sizeof(float));
        for (int r = 0; r < b.nrows; r++) st->correct += b.pred[r] == b.label[r];
        so->filled += b.nrows;
        for (int m = 0; m < p->n_methods && !err->code; m++) {
            const mth_spec *sp = &p->specs[m];
            const size_t n = (size_t)b.nrows * (size_t)sp->width;
            if (block_targets(c, m, &b, target, err)) break;
            memset(acc, 0, n * sizeof(double));
            int64_t u0 = plan_first_unit(p, m, rb);
            for (int cb = 0; cb < p->n_cb[m]; cb++) {
                int64_t u = u0 + cb;
                if (h5_shard_read_rows(rd, s->files[s->file_of[u]], s->row_of[u],
                                       s->row_of[u] + b.nrows, (int64_t)W, tmp, err))
                    break;
                mth_fold(acc, tmp, n);
            }
            if (err->code) break;
            method_out *o = &mo[m];
            float *sc_out = o->scores + (size_t)o->filled * D;
            mth_rows rows = {.x = b.x, .baseline = c->baseline[m], .target = target,
                             .R = b.nrows, .row0 = rb * BR, .refs = c->refs[m],
                             .n_refs = c->n_refs[m]};
            mth_finalize(sp, &c->model, &sc, &rows, acc, sc_out);
            mth_delta_kind dk = mth_delta(sp);
            for (int r = 0; r < b.nrows; r++) {
                o->target[o->filled + r] = target[r];
                if (!dk) continue;
                double sum = 0.0;
                for (int d = 0; d < D; d++) sum += (double)sc_out[(size_t)r * D + d];
                double fx = (double)b.logits[(size_t)r * C + target[r]];
                double diff = dk == MTH_DELTA_DIFF ? fx - fb[(size_t)m * C + target[r]] : fx;
                double delta = sum - diff;
                o->delta[o->filled + r] = (float)delta;
                o->output_diff[o->filled + r] = (float)diff;
                double rel = fabs(delta) / (fabs(diff) > 1e-12 ? fabs(diff) : 1e-12);
                if (rel > 1e-2) st->n_rel_over[m]++;
                if (rel > st->max_rel_delta[m]) st->max_rel_delta[m] = rel;
            }
            block_metrics(c, &sc, m, &rows, sc_out, o, fill);
            o->filled += b.nrows;
        }
        if (c->j.metrics.agreement && !err->code)
            for (int a = 0; a < p->n_methods; a++)
                for (int m2 = a + 1; m2 < p->n_methods; m2++) {
                    method_out *oa = &mo[a];
                    const size_t r0 = (size_t)(oa->filled - b.nrows);
                    mtr_agreement(oa->scores + r0 * D, mo[m2].scores + r0 * D, b.nrows, D,
                                  jmt_top_k(&c->j, D), met);
                    for (int r = 0; r < b.nrows; r++)
                        for (int k = 0; k < 3; k++) oa->agree[m2][k][r0 + r] = (float)met[3 * r + k];
                }
    }
    free(fill);
    free(met);
    h5_shard_reader_free(rd);
    free(fb);
    free(tmp);
    free(acc);
    free(target);
    block_cache_free(&b);
    mth_scratch_free(&sc);
    return err->code;
}

int assemble_results(run_ctx *c, const work_stats *ws, assemble_stats *st, at_err *err) {
    const plan *p = &c->p;
    const int64_t D = p->n_features, C = p->n_classes, BR = p->block_rows;
    double t0 = at_now();
    shard_scan s = {0};
    if (c->rank == 0) shard_scan_dir(c, &s, err);
    int rc = run_agree(c, err);
    if (rc) {
        shard_scan_free(&s);
        return rc;
    }
    shard_scan_bcast(c, &s);
    for (int64_t u = 0; u < p->n_units; u++)
        if (s.file_of[u] < 0) {
            const plan_unit *U = &p->units[u];
            at_err_set(err, AT_EIO,
                       "unit %lld (method %s, rows %lld:%lld) is missing from %s/ although "
                       "every unit was reported done; rerun to compute it again",
                       (long long)u, c->j.methods[U->method].name, (long long)U->row0,
                       (long long)(U->row0 + U->nrows), c->shard_dir);
            break;
        }
    if ((rc = run_agree(c, err))) {
        shard_scan_free(&s);
        return rc;
    }

    /* This rank's row blocks: an even, contiguous share. */
    int64_t rb_lo = p->n_rb * c->rank / c->size, rb_hi = p->n_rb * (c->rank + 1) / c->size;
    int64_t row0 = rb_lo * BR, row1 = rb_hi * BR < p->n_rows ? rb_hi * BR : p->n_rows;
    int64_t rows = row1 > row0 ? row1 - row0 : 0;
    method_out mo[JOB_MAX_METHODS];
    for (int m = 0; m < p->n_methods; m++) {
        method_out_init(&mo[m], row0, rows, D);
        method_out_metrics(&mo[m], &c->j, m, rows);
    }
    samples_out so = {0};
    so.label = at_malloc((size_t)(rows + 1) * sizeof(int32_t), "labels");
    so.pred = at_malloc((size_t)(rows + 1) * sizeof(int32_t), "predictions");
    so.logits = at_malloc((size_t)(rows * C + 1) * sizeof(float), "logits");
    fold_rows(c, &s, rb_lo, rb_hi, mo, &so, st, err);
    shard_scan_free(&s);
    st->fold_s = at_now() - t0;
    rc = run_agree(c, err);
    at_fault("assemble");

    char tmp_path[JOB_PATH_MAX + 16];
    snprintf(tmp_path, sizeof tmp_path, "%s.partial", c->j.output_path);
    if (!rc) {
        double tw = at_now();
        write_results(c, tmp_path, mo, &so, ws, st, err);
        rc = run_agree(c, err);
        if (!rc && c->rank == 0) {
            at_fault("results_rename");
            if ((rc = h5_file_commit(tmp_path, c->j.output_path, err))) cli_error(err);
        }
        MPI_Bcast(&rc, 1, MPI_INT, 0, c->comm);
        st->write_s = at_now() - tw;
    }
    if (rc && c->rank == 0) unlink(tmp_path);
    for (int m = 0; m < p->n_methods; m++) method_out_free(&mo[m]);
    free(so.label);
    free(so.pred);
    free(so.logits);
    return rc;
}
