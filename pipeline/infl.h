/* infl.h — internals of the training-data attribution pipeline, shared by
 * influence.c (set-up, features, the fold), infl_scores.c (preconditioners,
 * score tiles, the results file) and truth.c (leave-one-out, LDS). */
#ifndef ATTRIB_INFL_H
#define ATTRIB_INFL_H

#include <stdint.h>

#include "pipeline.h"
#include "tda_feat.h"
#include "tda_kfac.h"
#include "tda_solve.h"
#include "tda_truth.h"

#define INFL_MAX_LAYERS 64   /* layers of a resolved selection */
#define INFL_MAX_SRC 64       /* model sources: model.path, models, checkpoints */
#define INFL_MAX_FSETS 128
#define INFL_MAX_STAGES (2 * JOB_MAX_INFLUENCE + 4)
#define INFL_TEST_TILE 1024   /* test rows per score tile */
#define INFL_MAX_EXACT 16384  /* parameters of an exact inverse */
#define INFL_PROJ_BUDGET ((size_t)1 << 30) /* projection matrices kept in memory */

enum { INFL_TEST = 0, INFL_TRAIN = 1 };

typedef struct {
    char path[JOB_PATH_MAX];
    int ckpt;        /* checkpoint index in path, -1: a model file */
    int epoch;
    double lr;       /* learning rate of the checkpoint's epoch (TracIn's weight) */
    char sha[65];    /* content hash of the parameters */
    float *params;   /* (n_params) */
} infl_src;

typedef struct {
    int src;
    eng_loss_kind loss;
    int method;      /* the first method using it (its layers and projection) */
    tda_proj_kind proj;
    int k_req;
    uint64_t seed;
    char layers[2048];       /* the selection as text, for provenance */
    tda_feat *feat;  /* built on first use, by the owner only */
    int shared;      /* the extractor belongs to an earlier set */
    int owner;       /* the set whose extractor this one uses (itself if not shared) */
    size_t bytes;    /* the extractor's memory (0 when shared) */
    int dim;
    size_t p;
    char prov[65];
    char prov_text[8192];
    char dir[JOB_PATH_MAX + 64];
} infl_fset;

typedef struct {
    int fs;          /* feature set */
    double w;        /* weight of the term */
} infl_term;

/* One influence method: score = sum_t w_t A_t B_t^T (x q for TRAK), with A_t
 * the preconditioned test features of term t and B_t its train features. */
typedef struct {
    /* the parameter selection: the job's layers, or for kfac/ekfac without
     * layers every linear and conv2d layer with trainable parameters */
    int n_layers;
    char layers[INFL_MAX_LAYERS][ENG_NAME_MAX];
    int n_terms;
    infl_term t[INFL_MAX_SRC];
    int normalize;           /* unit rows (test and train) */
    float *A[INFL_MAX_SRC];  /* (n_te, dim) preconditioned test features */
    /* what was used and found */
    int has_lambda;
    double lambda, mean_eig, min_eig, max_eig;
    double term_lambda[INFL_MAX_SRC]; /* TRAK: the damping of each model */
    int solver_iters_max;
    double solver_residual_max;
    int64_t solver_unconverged;
    double loo_pearson, loo_spearman; /* per test row, averaged */
    double loo_pooled_pearson, loo_pooled_spearman;
    double lds, lds_lo, lds_hi;
    double *lds_per_test;    /* (n_te) */
    double *lds_pred;        /* (M, n_te) */
    double *loo_pred;        /* (n_te, P) */
} infl_method;

typedef struct {
    char name[JOB_NAME_MAX + 40];
    char setting[160];
    double bytes;
} infl_stage;

/* Ground truth (truth.c). */
typedef struct {
    int P;                 /* leave-one-out points */
    int64_t *loo_rows;     /* (P) train row indices (within the selection) */
    double *loo_actual;    /* (n_te, P) test loss change when the point is left out */
    double *loo_base;      /* (n_te) test losses at the full optimum */
    double loo_grad_norm;  /* of the full fit */
    int loo_iters;
    int M, R;              /* LDS subsets and seeds */
    uint8_t *lds_masks;    /* (M, n_tr) */
    double *lds_margins;   /* (M, R, n_te) */
    double *lds_mean;      /* (M, n_te) mean over seeds */
} infl_truth;

typedef struct {
    run_ctx *c;
    int size, local_ranks;
    h5_reader *trd;          /* the train split */
    int64_t tr_start, n_tr;  /* train rows */
    int64_t n_te;            /* test rows (c->row_start, c->n_rows) */
    int64_t D;
    int C;
    int64_t tb, rb;          /* test and train block rows */
    int64_t tt;              /* test rows per score tile */
    int K;                   /* top-k */
    int cap;                 /* engine rows per call */
    int64_t n_hess;          /* train rows of the curvature estimate of the method being
                                preconditioned (its hessian_rows, or all) */
    char store[JOB_PATH_MAX + 16];
    int n_src;
    infl_src src[INFL_MAX_SRC];
    float *own_params;       /* the model's own block (model.path), restored at the end */
    int n_fs;
    infl_fset fs[INFL_MAX_FSETS];
    infl_method m[JOB_MAX_INFLUENCE];
    uint8_t *te_hash, *tr_hash; /* SHA-256 of each block's rows */
    int n_stages;
    infl_stage stages[INFL_MAX_STAGES];
    infl_truth truth;
    int64_t units_computed, units_reused;
    double t_featurise, t_truth, t_precondition, t_scores;
} infl_ctx;

/* influence.c */
#define INFL_MPI_CHUNK ((size_t)1 << 28) /* elements per MPI call (counts are int) */
double *infl_dalloc(size_t n, const char *what); /* zeroed, at least 1 element */
/* In-place MPI_SUM over all ranks / broadcast from rank 0 of n doubles, in
 * pieces of INFL_MPI_CHUNK. Collective. */
void infl_sum_f64(MPI_Comm comm, double *buf, size_t n);
void infl_bcast_f64(MPI_Comm comm, double *buf, size_t n);
/* names[i] = im->layers[i] (the method's resolved selection); returns names. */
const char *const *infl_layer_names(const infl_method *im, const char **names);
typedef void (*infl_block_fn)(void *ctx, int64_t b, double *part, at_err *err);
int infl_ofold(infl_ctx *x, int64_t n_blocks, size_t len, infl_block_fn fn, void *ctx,
               double *sum, at_err *err);
int infl_read_rows(infl_ctx *x, int split, int64_t r0, int64_t n, float *xs, int32_t *lab,
                   at_err *err);
void infl_use_src(infl_ctx *x, int s);
void infl_block_rows(const infl_ctx *x, int split, int64_t b, int64_t *r0, int64_t *n);
int64_t infl_n_blocks(const infl_ctx *x, int split);
void infl_block_path(const infl_ctx *x, int f, int split, int64_t b, char *out, size_t cap);
void infl_block_prov(const infl_ctx *x, int f, int split, int64_t b, char out[65]);
int infl_read_block(infl_ctx *x, int f, int split, int64_t b, float *F, double *prob,
                    at_err *err);

/* infl_scores.c */
int infl_precondition(infl_ctx *x, at_err *err);
int infl_write_results(infl_ctx *x, at_err *err);

/* truth.c */
int infl_truth_run(infl_ctx *x, at_err *err);
void infl_truth_free(infl_truth *t);

#endif
