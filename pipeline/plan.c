/* plan.c — job -> work units. See pipeline.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

_Static_assert((int)JOB_METHOD_RISE == (int)MTH_RISE &&
                   (int)JOB_METHOD_SALIENCY == (int)MTH_SALIENCY &&
                   (int)JOB_METHOD_OCCLUSION == (int)MTH_OCCLUSION,
               "job and method kinds share values");

void plan_method_spec(const job_method *jm, mth_spec *out) {
    memset(out, 0, sizeof *out);
    out->kind = (mth_kind)jm->kind;
    switch (jm->quadrature) {
    case JOB_QUAD_RIEMANN_LEFT: out->quadrature = MTH_QUAD_RIEMANN_LEFT; break;
    case JOB_QUAD_RIEMANN_RIGHT: out->quadrature = MTH_QUAD_RIEMANN_RIGHT; break;
    case JOB_QUAD_RIEMANN_MIDDLE: out->quadrature = MTH_QUAD_RIEMANN_MIDDLE; break;
    case JOB_QUAD_RIEMANN_TRAPEZOID: out->quadrature = MTH_QUAD_RIEMANN_TRAPEZOID; break;
    case JOB_QUAD_GAUSS_LEGENDRE: out->quadrature = MTH_QUAD_GAUSS_LEGENDRE; break;
    }
    out->abs_value = jm->abs_value;
    out->n_steps = jm->n_steps;
    out->n_samples = jm->n_samples;
    out->stdev = jm->stdev;
    out->noise = (mth_noise_mode)jm->noise;
    out->noise_n = jm->noise_samples;
    out->noise_sigma = jm->noise_sigma;
    out->lrp_rule = (mth_lrp_rule)jm->lrp_rule;
    out->lrp_epsilon = jm->epsilon;
    out->lrp_gamma = jm->gamma;
    out->lrp_alpha = jm->alpha;
    out->lrp_beta = jm->beta;
    out->distance = (mth_distance)jm->distance;
    out->kernel_width = jm->kernel_width;
    out->ridge = jm->ridge;
    out->grid = jm->grid;
    out->keep_prob = jm->keep_prob;
    out->layer = -1;
}

/* Window and stride of occlusion over the row shape: the job gives the last
 * n dims; earlier dims are covered whole (window = dim, stride = dim). */
static int plan_window(const job_method *jm, const plan_input *in, mth_spec *s,
                       at_err *err) {
    if (jm->n_window > in->ndim)
        return at_err_set(err, AT_EUSER, "window has %d dims but a row has %d (shape %s)",
                          jm->n_window, in->ndim, in->ndim == 1 ? "(F)" : "(H, W)");
    for (int k = 0; k < in->ndim; k++) {
        int jk = k - (in->ndim - jm->n_window);
        s->window[k] = jk >= 0 ? jm->window[jk] : in->shape[k];
        s->stride[k] = jk >= 0 ? (jm->n_stride ? jm->stride[jk] : jm->window[jk]) : in->shape[k];
        if (s->window[k] > in->shape[k])
            return at_err_set(err, AT_EUSER, "window %d is larger than the row's dim %d (%d)",
                              s->window[k], k, in->shape[k]);
    }
    return 0;
}

int plan_engine_batch(const eng_model *m) {
    eng_memory one;
    eng_plan_memory(m, 1, ENG_F32, &one);
    size_t per_row = one.total - one.scratch + 2 * (size_t)m->in_features * sizeof(float);
    size_t rows = per_row ? PLAN_ENGINE_BYTES / per_row : PLAN_ENGINE_BATCH;
    return rows >= PLAN_ENGINE_BATCH ? PLAN_ENGINE_BATCH : rows < 16 ? 16 : (int)rows;
}

int plan_build(plan *p, const job *j, const plan_input *in, int64_t row_start,
               int64_t n_rows, at_err *err) {
    const eng_model *model = in->model;
    memset(p, 0, sizeof *p);
    p->n_methods = j->n_methods;
    p->row_start = row_start;
    p->n_rows = n_rows;
    p->block_rows = j->block_rows;
    p->n_features = model->in_features;
    p->n_classes = model->out_features;
    p->n_rb = (n_rows + j->block_rows - 1) / j->block_rows;
    for (int m = 0; m < j->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        mth_spec *s = &p->specs[m];
        plan_method_spec(jm, s);
        s->seed = j->seed;
        s->stream = (uint64_t)m;
        s->D = model->in_features;
        s->ndim = in->ndim;
        memcpy(s->shape, in->shape, sizeof s->shape);
        if (in->group[m]) {
            s->group = at_malloc((size_t)s->D * sizeof(int32_t), "feature groups");
            memcpy(s->group, in->group[m], (size_t)s->D * sizeof(int32_t));
            s->n_groups = in->n_groups[m];
        }
        if (jm->kind == JOB_METHOD_LIME && s->kernel_width == 0.0) { /* automatic */
            int P = s->group ? s->n_groups : s->D;
            s->kernel_width = s->distance == MTH_DIST_L2 ? 0.75 * sqrt((double)P) : 1.0;
        }
        int rc = 0;
        if (jm->kind == JOB_METHOD_OCCLUSION) rc = plan_window(jm, in, s, err);
        if (!rc && jm->kind == JOB_METHOD_GRAD_CAM) {
            s->layer = eng_model_find_layer(model, jm->layer);
            if (s->layer < 0)
                rc = at_err_set(err, AT_EUSER, "layer: the model has no layer named '%s'",
                                jm->layer);
        }
        if (!rc) rc = mth_plan(s, model, err);
        if (rc)
            return at_err_prefix(err, "%s: methods[%d] (%s, %s): ",
                                 j->source_path[0] ? j->source_path : "job", m, jm->name,
                                 job_method_kind_name(jm->kind));
        if (s->width > p->width) p->width = s->width;
        int cols = s->n_cols;
        int step = j->step_block > 0 && j->step_block < cols ? j->step_block : cols;
        p->col_step[m] = step;
        p->n_cb[m] = (cols + step - 1) / step;
        p->n_units += p->n_rb * p->n_cb[m];
    }
    p->units = at_malloc((size_t)(p->n_units ? p->n_units : 1) * sizeof(plan_unit), "plan units");
    p->costs = at_malloc((size_t)(p->n_units ? p->n_units : 1) * sizeof(double), "plan costs");
    int64_t u = 0;
    for (int m = 0; m < j->n_methods; m++) {
        int cols = p->specs[m].n_cols, step = p->col_step[m];
        for (int64_t rb = 0; rb < p->n_rb; rb++) {
            int64_t row0 = rb * j->block_rows;
            int nrows = (int)(n_rows - row0 < j->block_rows ? n_rows - row0 : j->block_rows);
            for (int cb = 0; cb < p->n_cb[m]; cb++) {
                plan_unit *U = &p->units[u];
                U->method = m;
                U->rb = rb;
                U->row0 = row0;
                U->nrows = nrows;
                U->cb = cb;
                U->c0 = cb * step;
                U->c1 = U->c0 + step < cols ? U->c0 + step : cols;
                /* Cost in engine rows (forward + backward of one input). */
                p->costs[u] = mth_cost(&p->specs[m], nrows, U->c0, U->c1);
                u++;
            }
        }
    }
    return 0;
}

void plan_free(plan *p) {
    for (int m = 0; m < p->n_methods; m++) mth_spec_free(&p->specs[m]);
    free(p->units);
    free(p->costs);
    memset(p, 0, sizeof *p);
}

int64_t plan_first_unit(const plan *p, int method, int64_t rb) {
    int64_t u = 0;
    for (int m = 0; m < method; m++) u += p->n_rb * p->n_cb[m];
    return u + rb * p->n_cb[method];
}

void plan_totals(const plan *p, double *passes, double *out_bytes) {
    double ps = 0.0;
    for (int64_t u = 0; u < p->n_units; u++) ps += p->costs[u];
    /* Output: per method scores (N, D) float32 + per-sample vectors; plus
     * samples (labels, predictions, logits). Uncompressed upper bound. */
    double bytes = (double)p->n_rows * (8.0 + 4 + 4 + 4.0 * p->n_classes);
    for (int m = 0; m < p->n_methods; m++) {
        bytes += (double)p->n_rows * p->n_features * 4.0 + p->n_rows * 4.0;
        if (mth_delta(&p->specs[m])) bytes += p->n_rows * 8.0;
    }
    *passes = ps;
    *out_bytes = bytes;
}

void plan_print(FILE *f, const plan *p, const job *j, int n_ranks) {
    double passes, bytes;
    plan_totals(p, &passes, &bytes);
    fprintf(f, "plan: %lld rows of split '%s' (rows %lld:%lld), %lld features, %lld classes\n",
            (long long)p->n_rows, j->data_split, (long long)p->row_start,
            (long long)(p->row_start + p->n_rows), (long long)p->n_features,
            (long long)p->n_classes);
    fprintf(f, "      %lld row blocks of %d rows; %lld work units on %d rank%s (scheduler %s)\n",
            (long long)p->n_rb, p->block_rows, (long long)p->n_units, n_ranks,
            n_ranks == 1 ? "" : "s", job_scheduler_name(j->scheduler));
    for (int m = 0; m < p->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        double mp = mth_cost(&p->specs[m], 1, 0, p->specs[m].n_cols) * (double)p->n_rows;
        if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS)
            fprintf(f, "  method %-12s %-22s %d steps (%s), baseline %s: %d column block%s, %.0f forward+backward passes\n",
                    jm->name, job_method_kind_name(jm->kind), jm->n_steps,
                    job_quadrature_name(jm->quadrature), job_baseline_name(jm->baseline),
                    p->n_cb[m], p->n_cb[m] == 1 ? "" : "s", mp);
        else
            fprintf(f, "  method %-12s %-22s %d columns: %.0f forward+backward passes\n",
                    jm->name, job_method_kind_name(jm->kind), p->specs[m].n_cols, mp);
    }
    char hb[32];
    at_human_bytes(bytes, hb, sizeof hb);
    fprintf(f, "total: %.0f forward+backward passes (%.0f per rank); output at most %s before compression -> %s\n",
            passes, passes / n_ranks, hb, j->output_path);
}

/* What one rank holds (docs/jobs.md, "Memory per rank"). Compute stage:
 * the engine workspace and the methods' input buffers at the engine batch,
 * one row block (rows, labels, logits, predictions, targets), one unit's
 * partial and the partials kept until the next shard write (one unit with
 * checkpoint_interval 0, else the rank's share of all partials, at most the
 * 256 MiB a shard is cut at). Assembly stage: the fold accumulator and a
 * unit partial per row block, and the rank's share of the output rows
 * (scores, targets, deltas, metric columns) of every method. Always: the
 * parameters and the baselines, reference rows and feature groups. */
void plan_memory_estimate(const plan *p, const job *j, const eng_model *m, int n_ranks,
                          plan_memory *o) {
    memset(o, 0, sizeof *o);
    const double D = (double)p->n_features, C = (double)p->n_classes, BR = p->block_rows;
    const double W = p->width;
    const int eb = plan_engine_batch(m);
    eng_memory mem;
    eng_plan_memory(m, eb, ENG_F32, &mem);
    o->params = (double)mem.params;
    o->workspace = (double)mem.total + 2.0 * eb * D * 4.0;
    o->block = BR * (D * 4.0 + C * 4.0 + 12.0);
    o->partial = BR * W * 8.0;
    double all = 0.0;
    for (int64_t u = 0; u < p->n_units; u++) all += (double)p->units[u].nrows * W * 8.0;
    double share = all / (n_ranks > 0 ? n_ranks : 1);
    double cap = (double)((size_t)256 << 20);
    o->shard_buffer = j->checkpoint_interval <= 0 ? o->partial : share < cap ? share : cap;
    for (int k = 0; k < j->n_methods; k++) {
        o->inputs += D * 4.0; /* baseline */
        if (j->methods[k].n_patch || j->methods[k].feature_mask[0]) o->inputs += D * 4.0;
        if (j->methods[k].reference_split[0] &&
            (j->methods[k].kind == JOB_METHOD_EXPECTED_GRADIENTS ||
             j->methods[k].kind == JOB_METHOD_GRADIENT_SHAP))
            o->inputs += (double)j->methods[k].n_references * D * 4.0;
    }
    o->fold = 2.0 * BR * W * 8.0;
    double rows = ceil((double)p->n_rows / (n_ranks > 0 ? n_ranks : 1));
    o->outputs = rows * (C * 4.0 + 8.0);
    for (int k = 0; k < p->n_methods; k++) o->outputs += rows * (D * 4.0 + 7 * 4.0 + 12.0);
    double compute = o->partial + o->shard_buffer, assemble = o->fold + o->outputs;
    o->peak = o->params + o->inputs + o->workspace + o->block +
              (compute > assemble ? compute : assemble);
}

void plan_print_memory(FILE *f, const plan *p, const job *j, const eng_model *m, int n_ranks) {
    plan_memory o;
    plan_memory_estimate(p, j, m, n_ranks, &o);
    char b[8][32];
    const double v[8] = {o.peak, o.params, o.workspace, o.block, o.partial + o.shard_buffer,
                         o.fold + o.outputs, o.inputs, 0};
    for (int i = 0; i < 7; i++) at_human_bytes(v[i], b[i], sizeof b[i]);
    fprintf(f, "memory per rank: about %s (parameters %s, engine workspace %s at %d rows, "
               "row block %s, unit partials and shard buffer %s, assembly %s, baselines "
               "and references %s)\n",
            b[0], b[1], b[2], plan_engine_batch(m), b[3], b[4], b[5], b[6]);
}
