/* infl_scores.c — preconditioners, score tiles and the results file of
 * training-data attribution (influence.c has the stages; docs/influence.md
 * the formulas). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5io.h"
#include "h5shard.h"
#include "h5store.h"
#include "infl.h"


static void normalize_rows(float *F, int64_t n, int dim) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)F[i * dim + d] * F[i * dim + d];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int d = 0; d < dim; d++) F[i * dim + d] *= inv;
    }
}

/* ------------------------------------------------ curvature over train rows */

/* Train rows [0, n_hess) in blocks of rb: the rows of curvature estimates. */
typedef struct {
    infl_ctx *x;
    const job_influence *ji;
    tda_curv *cv;
    tda_kfac *kf;
    int stage;
    size_t len;
    float *xs;
    int32_t *lab;
} curv_job;

static int64_t hess_blocks(const infl_ctx *x) { return (x->n_hess + x->rb - 1) / x->rb; }

static int hess_rows(curv_job *cj, int64_t b, int64_t *n, at_err *err) {
    infl_ctx *x = cj->x;
    int64_t r0 = b * x->rb;
    *n = x->n_hess - r0 < x->rb ? x->n_hess - r0 : x->rb;
    return infl_read_rows(x, INFL_TRAIN, r0, *n, cj->xs, cj->lab, err);
}

static void curv_matrix_block(void *ctx, int64_t b, double *part, at_err *err) {
    curv_job *cj = ctx;
    int64_t n;
    if (hess_rows(cj, b, &n, err)) return;
    tda_curv_accum_matrix(cj->cv, &cj->x->c->model, cj->xs, cj->lab, n, part);
}

static void kfac_block(void *ctx, int64_t b, double *part, at_err *err) {
    curv_job *cj = ctx;
    int64_t n;
    if (hess_rows(cj, b, &n, err)) return;
    tda_kfac_accum(cj->kf, &cj->x->c->model, cj->stage, cj->xs, cj->lab, n, part);
}

/* Gram sum Phi_b^T Phi_b of one train block of a feature set (TRAK). */
typedef struct {
    infl_ctx *x;
    int fs;
    float *F;
    double *Fd;
} gram_job;

static void gram_block(void *ctx, int64_t b, double *part, at_err *err) {
    gram_job *g = ctx;
    infl_ctx *x = g->x;
    int64_t r0, n;
    infl_block_rows(x, INFL_TRAIN, b, &r0, &n);
    const int dim = x->fs[g->fs].dim;
    if (infl_read_block(x, g->fs, INFL_TRAIN, b, g->F, NULL, err)) return;
    for (int64_t i = 0; i < n * dim; i++) g->Fd[i] = g->F[i];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, (int)n, 1.0, g->Fd, dim, 1.0,
                part, dim);
    for (int i = 0; i < dim; i++) /* mirror: the fold sums full matrices */
        for (int k = 0; k < i; k++) part[(size_t)i * dim + k] = part[(size_t)k * dim + i];
}

/* ------------------------------------------- iterative inverses (cg, lissa) */

typedef struct {
    infl_ctx *x;
    tda_curv *cv;
    const float *hx;      /* (n_hess, D) */
    const int32_t *hl;
    int64_t n_hess;
    int batch;            /* lissa: rows per step; 0 = all rows (exact) */
    int cap;
    double *tmp;
} mv_job;

static void mv_fn(void *ctx, int64_t step, const double *v, double *out) {
    mv_job *m = ctx;
    const size_t p = tda_curv_dim(m->cv);
    memset(out, 0, p * sizeof(double));
    const int64_t D = m->x->D;
    if (m->batch <= 0) {
        for (int64_t r0 = 0; r0 < m->n_hess; r0 += m->cap) {
            int64_t n = m->n_hess - r0 < m->cap ? m->n_hess - r0 : m->cap;
            tda_curv_accum_matvec(m->cv, &m->x->c->model, m->hx + r0 * D, m->hl + r0, n, v, 1,
                                  out);
        }
        for (size_t i = 0; i < p; i++) out[i] /= (double)m->n_hess;
        return;
    }
    /* a stochastic step: batch rows starting at (step * batch) mod n, wrapping */
    int64_t start = (int64_t)(((uint64_t)step * (uint64_t)m->batch) % (uint64_t)m->n_hess);
    int64_t left = m->batch;
    while (left > 0) {
        int64_t n = m->n_hess - start < left ? m->n_hess - start : left;
        tda_curv_accum_matvec(m->cv, &m->x->c->model, m->hx + start * D, m->hl + start, n, v,
                              1, out);
        left -= n;
        start = 0;
    }
    for (size_t i = 0; i < p; i++) out[i] /= (double)m->batch;
}

/* ------------------------------------------------------ preconditioning */

/* The test features of a set, all rows, on every rank (float32). */
static int test_features(infl_ctx *x, int fs, float **out, at_err *err) {
    const int dim = x->fs[fs].dim;
    float *A = at_calloc((size_t)x->n_te * (size_t)dim + 1, sizeof(float), "test features");
    const int64_t nb = infl_n_blocks(x, INFL_TEST);
    for (int64_t b = 0; b < nb && !err->code; b++) {
        int64_t r0, n;
        infl_block_rows(x, INFL_TEST, b, &r0, &n);
        infl_read_block(x, fs, INFL_TEST, b, A + r0 * dim, NULL, err);
    }
    *out = A;
    return err->code;
}

typedef void (*precond_fn)(void *ctx, double *B, int64_t n, int64_t row0, at_err *err);

/* A (n_te, dim) <- rows preconditioned by fn in chunks of `chunk` rows (a
 * constant of the method, never of the rank count: a factorised solve's
 * rounding may depend on how many right-hand sides it gets), each rank its
 * chunks round-robin, shared by an exact sum (one writer per element). */
static int precondition_rows(infl_ctx *x, float *A, int dim, int64_t chunk, precond_fn fn,
                             void *ctx, at_err *err) {
    const int64_t nb = (x->n_te + chunk - 1) / chunk;
    double *B = infl_dalloc((size_t)chunk * (size_t)dim, "test rows");
    float *mine = at_calloc((size_t)x->n_te * (size_t)dim + 1, sizeof(float), "preconditioned");
    for (int64_t b = x->c->rank; b < nb && !err->code; b += x->size) {
        int64_t r0 = b * chunk, n = x->n_te - r0 < chunk ? x->n_te - r0 : chunk;
        for (int64_t i = 0; i < n * dim; i++) B[i] = A[r0 * dim + i];
        fn(ctx, B, n, r0, err);
        for (int64_t i = 0; i < n * dim; i++) mine[r0 * dim + i] = (float)B[i];
    }
    free(B);
    int rc = run_agree(x->c, err);
    if (!rc) {
        size_t tot = (size_t)x->n_te * (size_t)dim;
        for (size_t off = 0; off < tot; off += INFL_MPI_CHUNK) {
            size_t n = tot - off < INFL_MPI_CHUNK ? tot - off : INFL_MPI_CHUNK;
            MPI_Allreduce(mine + off, A + off, (int)n, MPI_FLOAT, MPI_SUM, x->c->comm);
        }
    }
    free(mine);
    return rc;
}

static void dense_apply(void *ctx, double *B, int64_t n, int64_t row0, at_err *err) {
    (void)row0;
    (void)err;
    tda_dense_solve(ctx, B, (int)n);
}

static void kfac_apply(void *ctx, double *B, int64_t n, int64_t row0, at_err *err) {
    (void)row0;
    (void)err;
    const tda_kfac *k = ctx;
    size_t p = tda_kfac_dim(k);
    double *out = infl_dalloc((size_t)n * p, "kfac out");
    tda_kfac_apply(k, B, (int)n, out);
    memcpy(B, out, (size_t)n * p * sizeof(double));
    free(out);
}

typedef struct {
    mv_job *mv;
    const job_influence *ji;
    infl_method *im;
    double lambda;
    int p;
} iter_job;

static void iter_apply(void *ctx, double *B, int64_t n, int64_t row0, at_err *err) {
    iter_job *it = ctx;
    const job_influence *ji = it->ji;
    double *b = infl_dalloc((size_t)it->p, "rhs"), *xs = infl_dalloc((size_t)it->p, "solution");
    for (int64_t i = 0; i < n && !err->code; i++) {
        memcpy(b, B + i * it->p, (size_t)it->p * sizeof(double));
        if (ji->inverse == JOB_INV_CG) {
            tda_cg_info info;
            tda_cg(mv_fn, it->mv, it->p, it->lambda, b, xs, ji->cg_tol, ji->cg_max_iter, &info);
            if (info.iters > it->im->solver_iters_max) it->im->solver_iters_max = info.iters;
            if (info.rel_residual > it->im->solver_residual_max)
                it->im->solver_residual_max = info.rel_residual;
            if (!info.converged) it->im->solver_unconverged++;
        } else {
            tda_lissa_info info;
            if (tda_lissa(mv_fn, it->mv, it->p, it->lambda, b, xs, ji->lissa_depth,
                          ji->lissa_scale, ji->lissa_repeats, &info, err)) {
                at_err_prefix(err, "%s: influence[%d] (%s), test row %lld: ",
                              it->mv->x->c->j.source_path,
                              (int)(ji - it->mv->x->c->j.influence), ji->name,
                              (long long)(it->mv->x->c->row_start + row0 + i));
                break;
            }
            if (info.steps > it->im->solver_iters_max) it->im->solver_iters_max = info.steps;
            if (info.growth > it->im->solver_residual_max)
                it->im->solver_residual_max = info.growth;
        }
        memcpy(B + i * it->p, xs, (size_t)it->p * sizeof(double));
    }
    free(b);
    free(xs);
}

static int precondition_influence(infl_ctx *x, int mi, at_err *err) {
    const job *j = &x->c->j;
    const job_influence *ji = &j->influence[mi];
    infl_method *im = &x->m[mi];
    const int fs = im->t[0].fs, p = x->fs[fs].dim;
    const char *names[INFL_MAX_LAYERS];
    infl_layer_names(im, names);
    eng_loss loss = {.kind = ENG_LOSS_XENT};
    int64_t nh = ji->hessian_rows && ji->hessian_rows < x->n_tr ? ji->hessian_rows : x->n_tr;
    x->n_hess = nh;
    curv_job cj = {.x = x, .ji = ji};
    cj.xs = at_malloc((size_t)(x->rb * x->D) * sizeof(float), "rows");
    cj.lab = at_malloc((size_t)x->rb * sizeof(int32_t), "labels");
    int rc = 0;
    infl_use_src(x, 0);
    if (ji->inverse == JOB_INV_KFAC || ji->inverse == JOB_INV_EKFAC) {
        if (tda_kfac_new(&cj.kf, &x->c->model, names, im->n_layers,
                         ji->inverse == JOB_INV_EKFAC, loss, x->cap, err))
            at_err_prefix(err, "%s: influence[%d] (%s): ", j->source_path, mi, ji->name);
        if ((rc = run_agree(x->c, err))) goto out;
        if ((size_t)p != tda_kfac_dim(cj.kf))
            AT_CHECK(!"kfac and feature selections differ");
        size_t l0 = tda_kfac_stats_len(cj.kf, 0);
        double *s0 = infl_dalloc(l0, "kfac factors");
        cj.stage = 0;
        rc = infl_ofold(x, hess_blocks(x), l0, kfac_block, &cj, s0, err);
        if (!rc && tda_kfac_factor(cj.kf, s0, nh, err))
            at_err_prefix(err, "%s: influence[%d] (%s): ", j->source_path, mi, ji->name);
        free(s0);
        if (rc || (rc = run_agree(x->c, err))) goto out;
        double *s1 = NULL;
        if (ji->inverse == JOB_INV_EKFAC) {
            size_t l1 = tda_kfac_stats_len(cj.kf, 1);
            s1 = infl_dalloc(l1, "ekfac eigenvalues");
            cj.stage = 1;
            rc = infl_ofold(x, hess_blocks(x), l1, kfac_block, &cj, s1, err);
        }
        if (!rc && tda_kfac_finish(cj.kf, s1, nh, ji->damping, ji->damping_relative,
                                   &im->lambda, err))
            at_err_prefix(err, "%s: influence[%d] (%s): ", j->source_path, mi, ji->name);
        free(s1);
        if (rc || (rc = run_agree(x->c, err))) goto out;
        im->has_lambda = 1;
        /* the mean of the eigenvalues is known when damping is relative to it */
        im->mean_eig = ji->damping_relative && ji->damping > 0 ? im->lambda / ji->damping : NAN;
        rc = precondition_rows(x, im->A[0], p, x->tb, kfac_apply, cj.kf, err);
        goto out;
    }
    if (tda_curv_new(&cj.cv, &x->c->model, names, im->n_layers, (tda_curv_kind)ji->curvature,
                     loss, x->cap, err))
        at_err_prefix(err, "%s: influence[%d] (%s): ", j->source_path, mi, ji->name);
    if ((rc = run_agree(x->c, err))) goto out;
    AT_CHECK(tda_curv_dim(cj.cv) == (size_t)p);
    if (ji->inverse == JOB_INV_EXACT) {
        double *M = infl_dalloc((size_t)p * p, "curvature matrix");
        rc = infl_ofold(x, hess_blocks(x), (size_t)p * p, curv_matrix_block, &cj, M, err);
        if (!rc) {
            for (size_t i = 0; i < (size_t)p * p; i++) M[i] /= (double)nh;
            tda_dense d;
            if (tda_dense_factor(&d, M, p, ji->damping, ji->damping_relative,
                                 ji->curvature == JOB_CURV_HESSIAN, err) == 0) {
                im->has_lambda = 1;
                im->lambda = d.lambda;
                im->mean_eig = d.mean_eig;
                im->min_eig = d.min_eig;
                im->max_eig = d.max_eig;
            } else {
                at_err_prefix(err, "%s: influence[%d] (%s): ", j->source_path, mi, ji->name);
            }
            if (!(rc = run_agree(x->c, err)))
                rc = precondition_rows(x, im->A[0], p, x->tb, dense_apply, &d, err);
            tda_dense_free(&d); /* zeroed by a failed factor: always safe */
        }
        free(M);
        goto out;
    }
    /* cg, lissa: the curvature rows in memory, products over them */
    mv_job mv = {.x = x, .cv = cj.cv, .n_hess = nh, .cap = x->cap};
    float *hx = at_malloc((size_t)(nh * x->D) * sizeof(float), "curvature rows");
    int32_t *hl = at_malloc((size_t)nh * sizeof(int32_t), "curvature labels");
    for (int64_t r0 = 0; r0 < nh && !err->code; r0 += x->rb) {
        int64_t n = nh - r0 < x->rb ? nh - r0 : x->rb;
        infl_read_rows(x, INFL_TRAIN, r0, n, hx + r0 * x->D, hl + r0, err);
    }
    mv.hx = hx;
    mv.hl = hl;
    if (!(rc = run_agree(x->c, err))) {
        double lambda = ji->damping;
        im->mean_eig = tda_trace_estimate(mv_fn, &mv, p, 16, j->seed) / p;
        if (ji->damping_relative) lambda = ji->damping * im->mean_eig;
        im->has_lambda = 1;
        im->lambda = lambda;
        mv.batch = ji->inverse == JOB_INV_LISSA ? ji->lissa_batch : 0;
        if (mv.batch > nh) mv.batch = (int)nh;
        iter_job it = {.mv = &mv, .ji = ji, .im = im, .lambda = lambda, .p = p};
        rc = precondition_rows(x, im->A[0], p, 1, iter_apply, &it, err);
        if (!rc) {
            MPI_Allreduce(MPI_IN_PLACE, &im->solver_iters_max, 1, MPI_INT, MPI_MAX, x->c->comm);
            MPI_Allreduce(MPI_IN_PLACE, &im->solver_residual_max, 1, MPI_DOUBLE, MPI_MAX,
                          x->c->comm);
            MPI_Allreduce(MPI_IN_PLACE, &im->solver_unconverged, 1, MPI_INT64_T, MPI_SUM,
                          x->c->comm);
        }
    }
    free(hx);
    free(hl);
out:
    tda_curv_free(cj.cv);
    tda_kfac_free(cj.kf);
    free(cj.xs);
    free(cj.lab);
    return rc;
}

static int precondition_trak(infl_ctx *x, int mi, at_err *err) {
    const job_influence *ji = &x->c->j.influence[mi];
    infl_method *im = &x->m[mi];
    int rc = 0;
    for (int t = 0; t < im->n_terms && !rc; t++) {
        const int fs = im->t[t].fs, dim = x->fs[fs].dim;
        gram_job g = {.x = x, .fs = fs};
        g.F = at_malloc((size_t)x->rb * dim * sizeof(float), "train features");
        g.Fd = infl_dalloc((size_t)x->rb * dim, "train features");
        double *G = infl_dalloc((size_t)dim * dim, "Gram matrix");
        rc = infl_ofold(x, infl_n_blocks(x, INFL_TRAIN), (size_t)dim * dim, gram_block, &g, G,
                        err);
        free(g.F);
        free(g.Fd);
        if (!rc) {
            tda_dense d;
            if (tda_dense_factor(&d, G, dim, ji->damping, ji->damping_relative, 0, err)) {
                at_err_prefix(err, "%s: influence[%d] (%s), model %d: ", x->c->j.source_path,
                              mi, ji->name, t);
            } else {
                im->has_lambda = 1;
                im->lambda = d.lambda;
                im->mean_eig = d.mean_eig;
                im->term_lambda[t] = d.lambda;
            }
            if (!(rc = run_agree(x->c, err)))
                rc = precondition_rows(x, im->A[t], dim, x->tb, dense_apply, &d, err);
            tda_dense_free(&d);
        }
        free(G);
    }
    return rc;
}

int infl_precondition(infl_ctx *x, at_err *err) {
    double t0 = at_now();
    const job *j = &x->c->j;
    int rc = 0;
    for (int mi = 0; mi < j->n_influence && !rc; mi++) {
        const job_influence *ji = &j->influence[mi];
        infl_method *im = &x->m[mi];
        for (int t = 0; t < im->n_terms && !rc; t++) {
            test_features(x, im->t[t].fs, &im->A[t], err);
            rc = run_agree(x->c, err);
            if (!rc && im->normalize) normalize_rows(im->A[t], x->n_te, x->fs[im->t[t].fs].dim);
        }
        if (rc) break;
        double tm = at_now();
        if (ji->kind == JOB_INFL_INFLUENCE)
            rc = precondition_influence(x, mi, err);
        else if (ji->kind == JOB_INFL_TRAK)
            rc = precondition_trak(x, mi, err);
        if (!rc && x->c->rank == 0 && (ji->kind == JOB_INFL_INFLUENCE || ji->kind == JOB_INFL_TRAK))
            AT_INFO("influence %s: preconditioned %lld test rows (damping %.4g) in %.2f s",
                    ji->name, (long long)x->n_te, im->lambda, at_now() - tm);
    }
    x->t_precondition = at_now() - t0;
    return rc;
}

/* ----------------------------------------------------------- score tiles */

typedef struct {
    double s;
    int64_t i;
} cand;

/* better: higher score first (proponents) or lower first (opponents); ties
 * by lower index, so the order is total and merging is order-free. */
static int better(const cand *a, const cand *b, int opp) {
    if (a->s != b->s) return opp ? a->s < b->s : a->s > b->s;
    return a->i < b->i;
}

/* insert c into the sorted list l of n <= K entries */
static void topk_insert(cand *l, int *n, int K, cand c, int opp) {
    if (K == 0) return;
    if (*n == K && !better(&c, &l[K - 1], opp)) return;
    int k = *n < K ? (*n)++ : K - 1;
    while (k > 0 && better(&c, &l[k - 1], opp)) {
        l[k] = l[k - 1];
        k--;
    }
    l[k] = c;
}

typedef struct {
    int64_t t, b;        /* tile: test tile, train block */
} tile_id;

static int write_scores(infl_ctx *x, int mi, h5_results *r, at_err *err) {
    run_ctx *c = x->c;
    const job *j = &c->j;
    const job_influence *ji = &j->influence[mi];
    infl_method *im = &x->m[mi];
    const int K = x->K, M = x->truth.M, P = x->truth.P;
    const int64_t ntt = (x->n_te + x->tt - 1) / x->tt, ntb = infl_n_blocks(x, INFL_TRAIN);
    const int64_t n_tiles = ntt * ntb;
    int dmax = 1;
    for (int t = 0; t < im->n_terms; t++)
        if (x->fs[im->t[t].fs].dim > dmax) dmax = x->fs[im->t[t].fs].dim;
    float *S = at_malloc((size_t)(x->tt * x->rb) * sizeof(float), "score tile");
    float *B = at_malloc((size_t)x->rb * dmax * sizeof(float), "train features");
    double *prob = infl_dalloc((size_t)x->rb, "probabilities");
    double *q = infl_dalloc((size_t)x->rb, "TRAK weights");
    /* per round message: tile id, then per row K pro + K opp (score, index),
     * then M LDS sums per row */
    const size_t per_row = (size_t)4 * K + (size_t)M;
    const size_t msg = 2 + (size_t)x->tt * per_row;
    double *out = infl_dalloc(msg, "tile summary");
    double *all = c->rank == 0 ? infl_dalloc(msg * (size_t)c->size, "tile summaries") : NULL;
    cand *pro = NULL, *opp = NULL;
    int *npro = NULL, *nopp = NULL;
    if (c->rank == 0) {
        pro = at_malloc((size_t)(x->n_te * K + 1) * sizeof(cand), "proponents");
        opp = at_malloc((size_t)(x->n_te * K + 1) * sizeof(cand), "opponents");
        npro = at_calloc((size_t)x->n_te + 1, sizeof(int), "counts");
        nopp = at_calloc((size_t)x->n_te + 1, sizeof(int), "counts");
    }
    if (M) im->lds_pred = infl_dalloc((size_t)M * x->n_te, "LDS predictions");
    if (P) im->loo_pred = infl_dalloc((size_t)x->n_te * P, "LOO predictions");
    char path[JOB_NAME_MAX + 64];
    snprintf(path, sizeof path, "/influence/%s/scores", ji->name);
    cand *lp = at_malloc((size_t)(K + 1) * sizeof(cand), "row top-k");
    cand *lo = at_malloc((size_t)(K + 1) * sizeof(cand), "row bottom-k");
    int rc = 0;
    for (int64_t base = 0; base < n_tiles && !rc; base += c->size) {
        int64_t u = base + c->rank;
        int has = u < n_tiles;
        int64_t t = has ? u / ntb : 0, b = has ? u % ntb : 0;
        int64_t t0 = t * x->tt, nt = 0, r0 = 0, nb = 0;
        memset(out, 0, msg * sizeof(double));
        out[0] = has ? (double)u : -1.0;
        if (has) {
            nt = x->n_te - t0 < x->tt ? x->n_te - t0 : x->tt;
            infl_block_rows(x, INFL_TRAIN, b, &r0, &nb);
            memset(S, 0, (size_t)(nt * nb) * sizeof(float));
            for (int64_t k = 0; k < nb; k++) q[k] = 0;
            for (int tm = 0; tm < im->n_terms && !err->code; tm++) {
                const int fs = im->t[tm].fs, dim = x->fs[fs].dim;
                if (infl_read_block(x, fs, INFL_TRAIN, b, B, prob, err)) break;
                if (im->normalize) normalize_rows(B, nb, dim);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt, (int)nb, dim,
                            (float)im->t[tm].w, im->A[tm] + t0 * dim, dim, B, dim, 1.0f, S,
                            (int)nb);
                for (int64_t k = 0; k < nb; k++) q[k] += (1.0 - prob[k]) / im->n_terms;
            }
            if (ji->kind == JOB_INFL_TRAK)
                for (int64_t i = 0; i < nt; i++)
                    for (int64_t k = 0; k < nb; k++) S[i * nb + k] *= (float)q[k];
            for (int64_t i = 0; i < nt * nb && !err->code; i++)
                if (!isfinite(S[i]))
                    at_err_set(err, AT_EUSER,
                               "%s: influence[%d] (%s): score of test row %lld and train row "
                               "%lld is not finite; the inverse failed (raise damping)",
                               j->source_path, mi, ji->name, (long long)(t0 + i / nb),
                               (long long)(r0 + i % nb));
            out[1] = (double)nt;
            for (int64_t i = 0; i < nt; i++) {
                int a = 0, o = 0;
                for (int64_t k = 0; k < nb; k++) {
                    cand cd = {S[i * nb + k], r0 + k};
                    topk_insert(lp, &a, K, cd, 0);
                    topk_insert(lo, &o, K, cd, 1);
                }
                double *row = out + 2 + (size_t)i * per_row;
                for (int k = 0; k < K; k++) {
                    row[4 * k] = k < a ? lp[k].s : NAN;
                    row[4 * k + 1] = k < a ? (double)lp[k].i : -1;
                    row[4 * k + 2] = k < o ? lo[k].s : NAN;
                    row[4 * k + 3] = k < o ? (double)lo[k].i : -1;
                }
                for (int m = 0; m < M; m++) {
                    const uint8_t *mask = x->truth.lds_masks + (size_t)m * x->n_tr + r0;
                    double s = 0;
                    for (int64_t k = 0; k < nb; k++)
                        if (mask[k]) s += S[i * nb + k];
                    row[4 * K + m] = s;
                }
                for (int pp = 0; pp < P; pp++) {
                    int64_t col = x->truth.loo_rows[pp];
                    if (col >= r0 && col < r0 + nb)
                        im->loo_pred[(t0 + i) * P + pp] =
                            (double)S[i * nb + (col - r0)] / (double)x->n_tr;
                }
            }
        }
        if ((rc = run_agree(c, err))) break;
        if ((rc = h5_results_write_tile(r, path, has, t0, nt, r0, nb, S, err))) break;
        MPI_Gather(out, (int)msg, MPI_DOUBLE, all, (int)msg, MPI_DOUBLE, 0, c->comm);
        if (c->rank == 0)
            for (int rr = 0; rr < c->size; rr++) {
                const double *m0 = all + (size_t)rr * msg;
                if (m0[0] < 0) continue;
                int64_t uu = (int64_t)m0[0], tt0 = (uu / ntb) * x->tt, n = (int64_t)m0[1];
                for (int64_t i = 0; i < n; i++) {
                    const double *row = m0 + 2 + (size_t)i * per_row;
                    int64_t g = tt0 + i;
                    for (int k = 0; k < K; k++) {
                        if (row[4 * k + 1] >= 0)
                            topk_insert(pro + g * K, &npro[g], K,
                                        (cand){row[4 * k], (int64_t)row[4 * k + 1]}, 0);
                        if (row[4 * k + 3] >= 0)
                            topk_insert(opp + g * K, &nopp[g], K,
                                        (cand){row[4 * k + 2], (int64_t)row[4 * k + 3]}, 1);
                    }
                    for (int m = 0; m < M; m++) im->lds_pred[(size_t)m * x->n_te + g] += row[4 * K + m];
                }
            }
    }
    free(S);
    free(B);
    free(prob);
    free(q);
    free(out);
    free(all);
    free(lp);
    free(lo);
    if (!rc && P) {
        infl_sum_f64(c->comm, im->loo_pred, (size_t)x->n_te * P);
    }
    if (!rc && M) infl_bcast_f64(c->comm, im->lds_pred, (size_t)M * x->n_te);
    /* top-k: rank 0 writes every row */
    if (!rc && K > 0) {
        int64_t *ix = NULL, *ox = NULL;
        float *ps = NULL, *os = NULL;
        int64_t n0 = c->rank == 0 ? x->n_te : 0, zero = 0;
        if (c->rank == 0) {
            ix = at_malloc((size_t)(x->n_te * K) * sizeof(int64_t), "topk index");
            ox = at_malloc((size_t)(x->n_te * K) * sizeof(int64_t), "opponents index");
            ps = at_malloc((size_t)(x->n_te * K) * sizeof(float), "topk score");
            os = at_malloc((size_t)(x->n_te * K) * sizeof(float), "opponents score");
            for (int64_t g = 0; g < x->n_te; g++)
                for (int k = 0; k < K; k++) {
                    ix[g * K + k] = pro[g * K + k].i + x->tr_start;
                    ps[g * K + k] = (float)pro[g * K + k].s;
                    ox[g * K + k] = opp[g * K + k].i + x->tr_start;
                    os[g * K + k] = (float)opp[g * K + k].s;
                }
        }
        const char *nm[4] = {"topk_index", "topk_score", "opponents_index", "opponents_score"};
        const void *bufs[4] = {ix, ps, ox, os};
        for (int d = 0; d < 4 && !rc; d++) {
            char p2[JOB_NAME_MAX + 64];
            snprintf(p2, sizeof p2, "/influence/%s/%s", ji->name, nm[d]);
            rc = h5_results_write_rows(r, p2, c->rank == 0 ? 1 : 0, &zero, &n0, bufs[d], err);
        }
        free(ix);
        free(ox);
        free(ps);
        free(os);
    }
    free(pro);
    free(opp);
    free(npro);
    free(nopp);
    return rc;
}

/* ----------------------------------------------------------- the file */

static int write_vec_rank0(infl_ctx *x, h5_results *r, const char *path, int64_t n,
                           const void *buf, at_err *err) {
    int64_t zero = 0, nn = x->c->rank == 0 ? n : 0;
    return h5_results_write_rows(r, path, x->c->rank == 0 ? 1 : 0, &zero, &nn, buf, err);
}

/* LOO and LDS agreement of one method's scores with the ground truth. */
static void truth_stats(infl_ctx *x, int mi) {
    infl_method *im = &x->m[mi];
    const infl_truth *tr = &x->truth;
    im->loo_pearson = im->loo_spearman = NAN;
    if (tr->P) {
        /* per test row over the left-out points (Koh & Liang's view: the
         * actual change also holds a per-test offset from the shift of the
         * regulariser's weight, which no per-point score predicts), then
         * averaged; and pooled over every (test, point) pair */
        size_t n = (size_t)x->n_te * tr->P;
        im->loo_pooled_pearson = tda_pearson(im->loo_pred, tr->loo_actual, (int64_t)n);
        im->loo_pooled_spearman = tda_spearman(im->loo_pred, tr->loo_actual, (int64_t)n);
        double sp = 0, ss = 0;
        for (int64_t t = 0; t < x->n_te; t++) {
            double p = tda_pearson(im->loo_pred + t * tr->P, tr->loo_actual + t * tr->P, tr->P);
            double s = tda_spearman(im->loo_pred + t * tr->P, tr->loo_actual + t * tr->P, tr->P);
            sp += isfinite(p) ? p : 0;
            ss += isfinite(s) ? s : 0;
        }
        im->loo_pearson = sp / (double)x->n_te;
        im->loo_spearman = ss / (double)x->n_te;
    }
    if (tr->M) {
        im->lds_per_test = infl_dalloc((size_t)x->n_te, "LDS per test");
        double *a = infl_dalloc((size_t)tr->M, "predicted"), *b = infl_dalloc((size_t)tr->M, "actual");
        double sum = 0;
        for (int64_t t = 0; t < x->n_te; t++) {
            for (int m = 0; m < tr->M; m++) {
                a[m] = im->lds_pred[(size_t)m * x->n_te + t];
                b[m] = tr->lds_mean[(size_t)m * x->n_te + t];
            }
            double s = tda_spearman(a, b, tr->M);
            im->lds_per_test[t] = isfinite(s) ? s : 0.0;
            sum += im->lds_per_test[t];
        }
        im->lds = sum / (double)x->n_te;
        tda_bootstrap_ci(im->lds_per_test, x->n_te, x->c->j.tda.lds_bootstrap, x->c->j.seed,
                         0.95, &im->lds_lo, &im->lds_hi);
        free(a);
        free(b);
    }
}

static void fields_attrs(h5_results *r, const char *grp, const job_influence *ji,
                         at_err *err) {
    char *f = job_influence_emit(ji);
    results_fields_attrs(r, grp, f, err);
    free(f);
}

int infl_write_results(infl_ctx *x, at_err *err) {
    double t0 = at_now();
    run_ctx *c = x->c;
    const job *j = &c->j;
    const infl_truth *tr = &x->truth;
    char tmp_path[JOB_PATH_MAX + 16];
    snprintf(tmp_path, sizeof tmp_path, "%s.partial", j->output_path);
    h5_results *r = NULL;
    int rc = 0;
    if (c->rank == 0) h5_mkdir_parents(j->output_path, err);
    if ((rc = run_agree(c, err))) return rc;
    if (h5_results_create(&r, tmp_path, c->comm, err)) return err->code;
    int64_t n_ti = x->n_te > x->n_tr ? x->n_te : x->n_tr;
    const int64_t others[4] = {x->K, tr->P, tr->M, tr->R};
    for (int k = 0; k < 4; k++)
        if (others[k] > n_ti) n_ti = others[k];
    int64_t *ti = at_malloc((size_t)n_ti * sizeof(int64_t) + 8, "indices");
    for (int64_t i = 0; i < x->n_te; i++) ti[i] = c->row_start + i;
    h5_results_scale(r, "test", H5IO_I64, x->n_te, ti,
                     "row index of the test example in data.split", err);
    for (int64_t i = 0; i < x->n_tr; i++) ti[i] = x->tr_start + i;
    h5_results_scale(r, "train", H5IO_I64, x->n_tr, ti,
                     "row index of the training example in train_data.split", err);
    if (x->K > 0) {
        for (int64_t i = 0; i < x->K; i++) ti[i] = i;
        h5_results_scale(r, "rank", H5IO_I64, x->K, ti, "position in the top-k, best first", err);
    }
    if (tr->P) {
        for (int i = 0; i < tr->P; i++) ti[i] = tr->loo_rows[i] + x->tr_start;
        h5_results_scale(r, "loo_point", H5IO_I64, tr->P, ti,
                         "train row left out by a leave-one-out refit", err);
    }
    if (tr->M) {
        for (int i = 0; i < tr->M; i++) ti[i] = i;
        h5_results_scale(r, "subset", H5IO_I64, tr->M, ti, "LDS subset", err);
        for (int i = 0; i < tr->R; i++) ti[i] = i;
        h5_results_scale(r, "seed", H5IO_I64, tr->R, ti, "LDS retraining seed", err);
    }
    free(ti);
    const int cmp = j->compression;
    for (int mi = 0; mi < j->n_influence && !err->code; mi++) {
        const job_influence *ji = &j->influence[mi];
        char g[JOB_NAME_MAX + 64], p[JOB_NAME_MAX + 96];
        snprintf(g, sizeof g, "/influence/%s", ji->name);
        snprintf(p, sizeof p, "%s/scores", g);
        int64_t dims[2] = {x->n_te, x->n_tr}, chunk[2] = {x->tt, x->rb};
        const char *sc2[2] = {"test", "train"};
        h5_results_dataset_chunked(r, p, H5IO_F32, 2, dims, sc2, x->tt, chunk, cmp,
                                   "influence score of each (test, train) pair: positive = "
                                   "the train example helps the test example (proponent)",
                                   err);
        if (x->K > 0) {
            const char *sck[2] = {"test", "rank"};
            int64_t dk[2] = {x->n_te, x->K};
            const char *nm[4] = {"topk_index", "topk_score", "opponents_index", "opponents_score"};
            const char *ds[4] = {"train rows of the highest scores (proponents), best first",
                                 "their scores",
                                 "train rows of the lowest scores (opponents), lowest first",
                                 "their scores"};
            for (int d = 0; d < 4; d++) {
                snprintf(p, sizeof p, "%s/%s", g, nm[d]);
                h5_results_dataset(r, p, d % 2 ? H5IO_F32 : H5IO_I64, 2, dk, sck, x->tt, cmp,
                                   ds[d], err);
            }
        }
        if (err->code) break;
        rc = write_scores(x, mi, r, err);
        if (rc) break;
        truth_stats(x, mi);
        infl_method *im = &x->m[mi];
        h5_results_attr_str(r, g, "kind", job_infl_kind_name(ji->kind), err);
        fields_attrs(r, g, ji, err);
        h5_results_attr_i64(r, g, "feature_dim", x->fs[im->t[0].fs].dim, err);
        h5_results_attr_i64(r, g, "selected_parameters", (int64_t)x->fs[im->t[0].fs].p, err);
        h5_results_attr_i64(r, g, "ensemble_size", im->n_terms, err);
        double w[INFL_MAX_SRC];
        for (int t = 0; t < im->n_terms; t++) w[t] = im->t[t].w;
        h5_results_attr_f64v(r, g, "term_weights", w, im->n_terms, err);
        if (im->has_lambda) {
            h5_results_attr_f64(r, g, "damping_used", im->lambda, err);
            if (ji->kind == JOB_INFL_TRAK && im->n_terms > 1) /* damping_used: the last */
                h5_results_attr_f64v(r, g, "damping_used_per_model", im->term_lambda,
                                     im->n_terms, err);
            if (isfinite(im->mean_eig))
                h5_results_attr_f64(r, g, "mean_eigenvalue", im->mean_eig, err);
        }
        if (ji->kind == JOB_INFL_INFLUENCE &&
            (ji->inverse == JOB_INV_CG || ji->inverse == JOB_INV_LISSA)) {
            h5_results_attr_i64(r, g, "solver_iterations_max", im->solver_iters_max, err);
            h5_results_attr_f64(r, g, ji->inverse == JOB_INV_CG ? "cg_residual_max"
                                                                : "lissa_growth_max",
                                im->solver_residual_max, err);
            if (ji->inverse == JOB_INV_CG)
                h5_results_attr_i64(r, g, "cg_unconverged_rows", im->solver_unconverged, err);
        }
        char prov[256];
        snprintf(prov, sizeof prov, "%.16s", x->fs[im->t[0].fs].prov);
        h5_results_attr_str(r, g, "feature_set", prov, err);
        if (tr->P) {
            snprintf(p, sizeof p, "%s/loo", g);
            h5_results_attr_f64(r, p, "pearson", im->loo_pearson, err);
            h5_results_attr_f64(r, p, "spearman", im->loo_spearman, err);
            h5_results_attr_f64(r, p, "pooled_pearson", im->loo_pooled_pearson, err);
            h5_results_attr_f64(r, p, "pooled_spearman", im->loo_pooled_spearman, err);
            snprintf(p, sizeof p, "%s/loo/predicted", g);
            int64_t d2[2] = {x->n_te, tr->P};
            const char *s2[2] = {"test", "loo_point"};
            h5_results_dataset(r, p, H5IO_F64, 2, d2, s2, x->tt, cmp,
                               "predicted change of the test loss when the point is left "
                               "out: score / n_train",
                               err);
            write_vec_rank0(x, r, p, x->n_te, im->loo_pred, err);
        }
        if (tr->M) {
            snprintf(p, sizeof p, "%s/lds", g);
            h5_results_attr_f64(r, p, "lds", im->lds, err);
            h5_results_attr_f64(r, p, "ci_low", im->lds_lo, err);
            h5_results_attr_f64(r, p, "ci_high", im->lds_hi, err);
            h5_results_attr_f64(r, p, "ci_level", 0.95, err);
            snprintf(p, sizeof p, "%s/lds/per_test", g);
            const char *s1[1] = {"test"};
            int64_t d1[1] = {x->n_te};
            h5_results_dataset(r, p, H5IO_F64, 1, d1, s1, x->n_te, cmp,
                               "Spearman correlation over subsets of predicted and actual "
                               "margins",
                               err);
            write_vec_rank0(x, r, p, x->n_te, im->lds_per_test, err);
            snprintf(p, sizeof p, "%s/lds/predicted", g);
            int64_t d2[2] = {tr->M, x->n_te};
            const char *s2[2] = {"subset", "test"};
            h5_results_dataset(r, p, H5IO_F64, 2, d2, s2, tr->M, cmp,
                               "sum of the scores of the subset's train rows", err);
            write_vec_rank0(x, r, p, tr->M, im->lds_pred, err);
        }
    }
    if (!err->code && tr->P) {
        int64_t d2[2] = {x->n_te, tr->P};
        const char *s2[2] = {"test", "loo_point"};
        h5_results_dataset(r, "/ground_truth/loo/actual", H5IO_F64, 2, d2, s2, x->tt, cmp,
                           "test loss after the refit without the point minus at the full "
                           "optimum",
                           err);
        write_vec_rank0(x, r, "/ground_truth/loo/actual", x->n_te, tr->loo_actual, err);
        const char *s1[1] = {"test"};
        h5_results_dataset(r, "/ground_truth/loo/base_loss", H5IO_F64, 1, d2, s1, x->n_te, cmp,
                           "test loss at the full optimum", err);
        write_vec_rank0(x, r, "/ground_truth/loo/base_loss", x->n_te, tr->loo_base, err);
        h5_results_attr_f64(r, "/ground_truth/loo", "full_fit_grad_norm", tr->loo_grad_norm, err);
        h5_results_attr_i64(r, "/ground_truth/loo", "full_fit_iterations", tr->loo_iters, err);
    }
    if (!err->code && tr->M) {
        int64_t dm[2] = {tr->M, x->n_tr};
        const char *sm[2] = {"subset", "train"};
        h5_results_dataset(r, "/ground_truth/lds/masks", H5IO_I32, 2, dm, sm, tr->M, cmp,
                           "1 = the train row is in the subset", err);
        int32_t *mk = NULL;
        if (c->rank == 0) {
            mk = at_malloc((size_t)tr->M * x->n_tr * sizeof(int32_t), "masks");
            for (size_t i = 0; i < (size_t)tr->M * x->n_tr; i++) mk[i] = tr->lds_masks[i];
        }
        write_vec_rank0(x, r, "/ground_truth/lds/masks", tr->M, mk, err);
        free(mk);
        int64_t d3[3] = {tr->M, tr->R, x->n_te};
        const char *s3[3] = {"subset", "seed", "test"};
        h5_results_dataset(r, "/ground_truth/lds/margins", H5IO_F64, 3, d3, s3, tr->M, cmp,
                           "margin log p_y - log(1 - p_y) of the test row under the model "
                           "trained on the subset",
                           err);
        write_vec_rank0(x, r, "/ground_truth/lds/margins", tr->M, tr->lds_margins, err);
        h5_results_attr_f64(r, "/ground_truth/lds", "fraction", j->tda.lds_fraction, err);
    }
    x->t_scores = at_now() - t0;
    h5_results_attr_str(r, "/", "format", "attrib-results", err);
    h5_results_attr_i64(r, "/", "format_version", 1, err);
    h5_results_attr_str(r, "/", "attrib_version", ATTRIB_VERSION, err);
    h5_results_attr_str(r, "/", "content", "training-data attribution", err);
    h5_results_attr_str(r, "/", "job_yaml", c->job_yaml, err);
    h5_results_attr_str(r, "/", "plan_hash", c->plan_hash, err);
    h5_results_attr_str(r, "/", "plan", c->plan_text, err);
    h5_results_attr_str(r, "/", "job_file", j->source_path, err);
    h5_results_attr_str(r, "/", "model_path", j->model_path, err);
    h5_results_attr_str(r, "/", "model_sha256", c->minfo.sha256, err);
    h5_results_attr_str(r, "/", "data_path", j->data_path, err);
    h5_results_attr_str(r, "/", "data_split", j->data_split, err);
    h5_results_attr_str(r, "/", "train_split", j->tda.train_split, err);
    h5_results_attr_str(r, "/", "gradient_store", x->store, err);
    h5_results_attr_i64(r, "/", "ranks", c->size, err);
    h5_results_attr_str(r, "/", "started_at", c->started_at, err);
    h5_results_attr_f64(r, "/", "time_featurise_s", x->t_featurise, err);
    h5_results_attr_f64(r, "/", "time_ground_truth_s", x->t_truth, err);
    h5_results_attr_f64(r, "/", "time_precondition_s", x->t_precondition, err);
    h5_results_attr_f64(r, "/", "time_scores_s", x->t_scores, err);
    h5_results_attr_i64(r, "/", "feature_blocks_computed", x->units_computed, err);
    h5_results_attr_i64(r, "/", "feature_blocks_reused", x->units_reused, err);
    h5_results_close(r, err);
    rc = run_agree(c, err);
    if (!rc && c->rank == 0) rc = h5_file_commit(tmp_path, j->output_path, err);
    MPI_Bcast(&rc, 1, MPI_INT, 0, c->comm);
    if (rc && c->rank == 0) {
        cli_error(err);
        unlink(tmp_path);
    }
    return rc;
}
