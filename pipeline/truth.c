/* truth.c — ground truth of training-data attribution, as distributed work
 * units (docs/influence.md):
 *
 * Leave-one-out (ground_truth.loo): the model (convex: e.g. multinomial
 * logistic regression) is fitted to the exact optimum of
 *     J(theta) = (1/n) sum_i CE_i + (wd/2) |theta|^2,  wd = train.weight_decay,
 * by Newton's method in float64 from model.path's parameters; then for each
 * of `points` train rows, evenly spaced, the same objective over the other
 * n - 1 rows is minimised again from the optimum (Newton steps with the
 * full optimum's Hessian, to the exact optimum), and the change of every
 * test row's loss is recorded. Points
 * are units taken round-robin by rank; every unit depends only on its point.
 *
 * LDS (ground_truth.lds): M subsets of the train rows at fraction alpha,
 * each trained from scratch R times with the job's train section (seeds
 * differ by subset and seed) — or, with train.optimizer newton, fitted to
 * the subset's exact optimum from model.path's parameters; each trained
 * model's margin on every test row is recorded. (subset, seed) pairs are
 * the units.
 *
 * Every rank holds the train and test rows of the selection (the memory
 * plan counts them). Results are combined by exact sums (one writer per
 * element), so any rank count gives the same bytes.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infl.h"

static int read_split(infl_ctx *x, int split, int64_t n, float **xs, int32_t **lab,
                      at_err *err) {
    *xs = at_malloc((size_t)(n * x->D + 1) * sizeof(float), "rows");
    *lab = at_malloc((size_t)(n + 1) * sizeof(int32_t), "labels");
    const int64_t B = 4096;
    for (int64_t r0 = 0; r0 < n && !err->code; r0 += B) {
        int64_t k = n - r0 < B ? n - r0 : B;
        infl_read_rows(x, split, r0, k, *xs + r0 * x->D, *lab + r0, err);
    }
    return err->code;
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int run_loo(infl_ctx *x, const float *trx, const int32_t *trl, const float *tex,
                   const int32_t *tel, at_err *err) {
    run_ctx *c = x->c;
    const job *j = &c->j;
    infl_truth *t = &x->truth;
    const eng_model *m = &c->model;
    const int64_t n = x->n_tr;
    int P = j->tda.loo_points < n ? j->tda.loo_points : (int)n;
    t->P = P;
    t->loo_rows = at_malloc((size_t)P * sizeof(int64_t), "LOO rows");
    for (int k = 0; k < P; k++) t->loo_rows[k] = (int64_t)((double)k * (double)n / P);
    t->loo_actual = at_calloc((size_t)x->n_te * P + 1, sizeof(double), "LOO changes");
    t->loo_base = at_calloc((size_t)x->n_te + 1, sizeof(double), "LOO base losses");
    const double wd = j->weight_decay;
    double *theta = at_malloc(m->n_params * sizeof(double), "theta");
    for (size_t i = 0; i < m->n_params; i++) theta[i] = m->params[i];
    /* the full optimum: every rank computes the same bytes */
    tda_fit_info info;
    int rc = tda_newton_fit(m, theta, trx, trl, n, NULL, wd, j->tda.loo_tol, j->tda.loo_max_iter,
                            &info, err);
    if (rc)
        at_err_prefix(err, "%s: ground_truth.loo: the full fit: ", j->source_path);
    if ((rc = run_agree(c, err))) {
        free(theta);
        return rc;
    }
    t->loo_grad_norm = info.grad_norm;
    t->loo_iters = info.iters;
    double moved = 0, norm = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        moved += (theta[i] - m->params[i]) * (theta[i] - m->params[i]);
        norm += theta[i] * theta[i];
    }
    if (c->rank == 0 && moved > 1e-6 * (norm > 0 ? norm : 1))
        AT_WARN("ground_truth.loo: model %s is not at the optimum of the leave-one-out "
                "objective (the fit moved its parameters by %.3g relative); influence scores "
                "are computed at the file's parameters: train it with train.optimizer: newton",
                j->model_path, sqrt(moved / (norm > 0 ? norm : 1)));
    tda_eval_f64(m, theta, tex, tel, x->n_te, t->loo_base, NULL);
    tda_newton_factor *fac = NULL;
    if (tda_newton_factor_new(&fac, m, theta, trx, trl, n, NULL, wd, err))
        at_err_prefix(err, "%s: ground_truth.loo: ", j->source_path);
    if ((rc = run_agree(c, err))) {
        free(theta);
        tda_newton_factor_free(fac);
        return rc;
    }
    /* the refit minimises the mean loss over the n - 1 kept rows plus the
     * same (wd/2)|theta|^2: retraining without the row */
    uint8_t *drop = at_calloc((size_t)n, 1, "drop mask");
    double *th = at_malloc(m->n_params * sizeof(double), "theta");
    double *loss = at_malloc((size_t)(x->n_te + 1) * sizeof(double), "test losses");
    double t0 = at_now(), last = t0;
    for (int k = c->rank; k < P && !err->code; k += x->size) {
        memcpy(th, theta, m->n_params * sizeof(double));
        drop[t->loo_rows[k]] = 1;
        if (tda_newton_refit(fac, th, drop, j->tda.loo_tol, j->tda.loo_max_iter, &info, err))
            at_err_prefix(err, "%s: ground_truth.loo: refit without train row %lld: ",
                          j->source_path, (long long)(x->tr_start + t->loo_rows[k]));
        drop[t->loo_rows[k]] = 0;
        if (err->code) break;
        tda_eval_f64(m, th, tex, tel, x->n_te, loss, NULL);
        for (int64_t i = 0; i < x->n_te; i++)
            t->loo_actual[i * P + k] = loss[i] - t->loo_base[i];
        if (c->rank == 0 && at_now() - last > j->progress_interval) {
            AT_INFO("leave-one-out: point %d of %d (%.1f s)", k + 1, P, at_now() - t0);
            last = at_now();
        }
    }
    free(drop);
    free(th);
    free(loss);
    free(theta);
    tda_newton_factor_free(fac);
    if ((rc = run_agree(c, err))) return rc;
    infl_sum_f64(c->comm, t->loo_actual, (size_t)x->n_te * P);
    if (c->rank == 0)
        AT_INFO("leave-one-out: %d refits in %.2f s (full fit: %d Newton steps, |grad| %.2g)", P,
                at_now() - t0, t->loo_iters, t->loo_grad_norm);
    return 0;
}

static void train_cfg(const job *j, tda_train_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = j->epochs;
    cfg->batch_size = j->batch_size;
    cfg->optimizer = (eng_opt_kind)j->optimizer;
    cfg->lr = j->lr;
    cfg->momentum = j->momentum;
    cfg->weight_decay = j->weight_decay;
    cfg->nesterov = j->nesterov;
    cfg->beta1 = j->beta1;
    cfg->beta2 = j->beta2;
    cfg->eps = j->adam_eps;
    cfg->schedule = (eng_sched_kind)j->schedule;
    cfg->step_size = j->step_size;
    cfg->gamma = j->gamma;
    cfg->min_lr = j->min_lr;
    cfg->loss.kind = (eng_loss_kind)j->loss;
    cfg->loss.label_smoothing = j->label_smoothing;
}

static int run_lds(infl_ctx *x, const float *trx, const int32_t *trl, const float *tex,
                   const int32_t *tel, at_err *err) {
    run_ctx *c = x->c;
    const job *j = &c->j;
    infl_truth *t = &x->truth;
    eng_model *m = &c->model;
    const int M = j->tda.lds_subsets, R = j->tda.lds_seeds;
    t->M = M;
    t->R = R;
    t->lds_masks = at_malloc((size_t)M * x->n_tr + 1, "LDS masks");
    for (int s = 0; s < M; s++)
        tda_lds_subset(j->seed, s, x->n_tr, j->tda.lds_fraction, t->lds_masks + (size_t)s * x->n_tr);
    t->lds_margins = at_calloc((size_t)M * R * x->n_te + 1, sizeof(double), "LDS margins");
    t->lds_mean = at_calloc((size_t)M * x->n_te + 1, sizeof(double), "LDS mean margins");
    tda_train_cfg cfg;
    train_cfg(j, &cfg);
    const int newton = j->optimizer == JOB_OPT_NEWTON;
    uint8_t *drop = newton ? at_malloc((size_t)x->n_tr + 1, "drop mask") : NULL;
    double *theta = newton ? at_malloc(m->n_params * sizeof(double), "theta") : NULL;
    int rc = 0;
    float *own = m->params;
    float *pw = at_malloc(m->n_params * sizeof(float), "LDS parameters");
    eng_workspace ws;
    eng_workspace_init(&ws, m, x->cap, ENG_F32);
    float *logits = at_malloc((size_t)x->cap * x->C * sizeof(float), "logits");
    double t0 = at_now(), last = t0;
    const int64_t U = (int64_t)M * R;
    for (int64_t u = c->rank; u < U && !err->code; u += x->size) {
        int s = (int)(u / R), r = (int)(u % R);
        const uint8_t *mask = t->lds_masks + (size_t)s * x->n_tr;
        if (newton) {
            /* a convex model: the subset's exact optimum, from the model's
             * parameters (every seed gives the same model) */
            for (int64_t i = 0; i < x->n_tr; i++) drop[i] = !mask[i];
            for (size_t i = 0; i < m->n_params; i++) theta[i] = own[i];
            tda_fit_info info;
            if (tda_newton_fit(m, theta, trx, trl, x->n_tr, drop, j->weight_decay,
                               j->newton_tol, j->newton_max_iter, &info, err)) {
                at_err_prefix(err, "%s: ground_truth.lds: subset %d: ", j->source_path, s);
                break;
            }
            for (size_t i = 0; i < m->n_params; i++) pw[i] = (float)theta[i];
            m->params = pw;
        } else {
            m->params = pw;
            uint64_t seed =
                mix64(j->seed ^ mix64(((uint64_t)s << 20) ^ (uint64_t)r ^ 0x4c4453ull));
            if (tda_train_subset(m, &cfg, trx, trl, x->n_tr, mask, seed, err)) {
                at_err_prefix(err, "%s: ground_truth.lds: subset %d seed %d: ", j->source_path,
                              s, r);
                break;
            }
        }
        double *out = t->lds_margins + ((size_t)s * R + r) * x->n_te;
        for (int64_t r0 = 0; r0 < x->n_te; r0 += x->cap) {
            int nb = (int)(x->n_te - r0 < x->cap ? x->n_te - r0 : x->cap);
            const float *lg = eng_model_forward(m, &ws, tex + r0 * x->D, nb);
            memcpy(logits, lg, (size_t)nb * x->C * sizeof(float));
            for (int i = 0; i < nb; i++) {
                const float *z = logits + (size_t)i * x->C;
                int y = tel[r0 + i];
                /* margin = z_y - logsumexp_{c != y} z_c, stably */
                double mx = -INFINITY;
                for (int k = 0; k < x->C; k++)
                    if (k != y && z[k] > mx) mx = z[k];
                double se = 0;
                for (int k = 0; k < x->C; k++)
                    if (k != y) se += exp(z[k] - mx);
                out[r0 + i] = x->C > 1 ? z[y] - (mx + log(se)) : z[y];
            }
        }
        if (c->rank == 0 && at_now() - last > j->progress_interval) {
            AT_INFO("lds: model %lld of %lld (%.1f s)", (long long)u + 1, (long long)U,
                    at_now() - t0);
            last = at_now();
        }
    }
    m->params = own;
    free(pw);
    free(drop);
    free(theta);
    free(logits);
    eng_workspace_free(&ws);
    if ((rc = run_agree(c, err))) return rc;
    infl_sum_f64(c->comm, t->lds_margins, (size_t)M * R * x->n_te);
    for (int s = 0; s < M; s++)
        for (int r = 0; r < R; r++)
            for (int64_t i = 0; i < x->n_te; i++)
                t->lds_mean[(size_t)s * x->n_te + i] +=
                    t->lds_margins[((size_t)s * R + r) * x->n_te + i] / R;
    if (c->rank == 0)
        AT_INFO("lds: %lld models trained on subsets in %.2f s", (long long)U, at_now() - t0);
    return 0;
}

int infl_truth_run(infl_ctx *x, at_err *err) {
    const job *j = &x->c->j;
    if (!j->tda.loo_points && !j->tda.lds_subsets) return 0;
    double t0 = at_now();
    float *trx = NULL, *tex = NULL;
    int32_t *trl = NULL, *tel = NULL;
    int rc = 0;
    if (!read_split(x, INFL_TRAIN, x->n_tr, &trx, &trl, err))
        read_split(x, INFL_TEST, x->n_te, &tex, &tel, err);
    rc = run_agree(x->c, err);
    if (!rc && j->tda.loo_points) rc = run_loo(x, trx, trl, tex, tel, err);
    if (!rc && j->tda.lds_subsets) rc = run_lds(x, trx, trl, tex, tel, err);
    free(trx);
    free(tex);
    free(trl);
    free(tel);
    x->t_truth = at_now() - t0;
    return rc;
}

void infl_truth_free(infl_truth *t) {
    free(t->loo_rows);
    free(t->loo_actual);
    free(t->loo_base);
    free(t->lds_masks);
    free(t->lds_margins);
    free(t->lds_mean);
    memset(t, 0, sizeof *t);
}
