/* influence.c — `attrib run` of a job with an influence: section:
 * training-data attribution at cluster scale (docs/influence.md).
 *
 * Stages (all ranks; failures agreed collectively):
 *   1. open the test rows (data:), the train rows (train_data:), the model
 *      and every model of the ensembles (checkpoints, models:); plan the
 *      feature sets (model x loss x layers x projection) the methods need,
 *      and print the memory each stage needs per rank — a job that cannot
 *      fit is refused before any work, naming the setting to change;
 *   2. featurise: every (feature set, split, row block) is a unit, taken
 *      round-robin by rank; its per-example gradient features go to the
 *      gradient store (h5store.h), durable and keyed by provenance and the
 *      rows' SHA-256, so a rerun, another method or another query set
 *      reuses them. A stop (signal, stop file) ends here with exit 75;
 *   3. ground truth (truth.c): leave-one-out refits and LDS retrainings;
 *   4. per method, the preconditioner: sums over train row blocks (Gram,
 *      curvature, Kronecker factors) are computed by any rank and folded on
 *      rank 0 in block order (ofold), so 1, 2 or 3 ranks give the same
 *      bytes; then a float64 factorisation, identical on every rank; the
 *      test features are preconditioned (each rank its rows, shared);
 *   5. scores: [test tile x train block] tiles, round-robin by rank, each
 *      written collectively by the rank that computed it, never the whole
 *      matrix on one rank; top-k proponents and opponents and the LDS and
 *      LOO predictions are merged on rank 0 in tile order;
 *   6. the results file: OUT.partial, then renamed.
 */
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
#include "h5train.h"
#include "infl.h"
#include "pipeline.h"

/* ------------------------------------------------------------- helpers */

double *infl_dalloc(size_t n, const char *what) {
    return at_calloc(n ? n : 1, sizeof(double), what);
}

void infl_sum_f64(MPI_Comm comm, double *buf, size_t n) {
    for (size_t off = 0; off < n; off += INFL_MPI_CHUNK) {
        size_t k = n - off < INFL_MPI_CHUNK ? n - off : INFL_MPI_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_DOUBLE, MPI_SUM, comm);
    }
}

void infl_bcast_f64(MPI_Comm comm, double *buf, size_t n) {
    for (size_t off = 0; off < n; off += INFL_MPI_CHUNK) {
        size_t k = n - off < INFL_MPI_CHUNK ? n - off : INFL_MPI_CHUNK;
        MPI_Bcast(buf + off, (int)k, MPI_DOUBLE, 0, comm);
    }
}

const char *const *infl_layer_names(const infl_method *im, const char **names) {
    for (int i = 0; i < im->n_layers; i++) names[i] = im->layers[i];
    return names;
}

static int agree(infl_ctx *x, at_err *err) { return run_agree(x->c, err); }

int infl_read_rows(infl_ctx *x, int split, int64_t r0, int64_t n, float *xs, int32_t *lab,
                   at_err *err) {
    h5_reader *rd = split == INFL_TEST ? x->c->rd : x->trd;
    int64_t base = split == INFL_TEST ? x->c->row_start : x->tr_start;
    if (h5_reader_read(rd, base + r0, base + r0 + n, xs, lab, err)) return err->code;
    const int64_t D = x->D;
    const char *sp = split == INFL_TEST ? x->c->j.data_split : x->c->j.tda.train_split;
    for (int64_t i = 0; i < n * D; i++)
        if (!isfinite(xs[i]))
            return at_err_set(err, AT_EUSER,
                              "%s: %s/images: row %lld has a non-finite value at feature %lld; "
                              "training-data attribution needs finite inputs",
                              x->c->j.data_path, sp, (long long)(base + r0 + i / D),
                              (long long)(i % D));
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= x->C)
            return at_err_set(err, AT_EUSER,
                              "%s: %s/labels: row %lld has label %d; model %s has %d classes "
                              "(0..%d)",
                              x->c->j.data_path, sp, (long long)(base + r0 + i), lab[i],
                              x->c->j.model_path, x->C, x->C - 1);
    return 0;
}

/* Point the model at source s's parameters. */
void infl_use_src(infl_ctx *x, int s) { x->c->model.params = x->src[s].params; }

/* Fold of per-block float64 sums in block order, for any rank count: in
 * rounds of `size` blocks, rank r computes block round*size + r, rank 0
 * gathers the round and adds its blocks in order; the sum is broadcast.
 * Collective. */
int infl_ofold(infl_ctx *x, int64_t n_blocks, size_t len, infl_block_fn fn, void *ctx,
               double *sum, at_err *err) {
    run_ctx *c = x->c;
    double *part = infl_dalloc(len, "block sum");
    double *all = c->rank == 0 ? infl_dalloc(len * (size_t)c->size, "gathered block sums") : NULL;
    memset(sum, 0, len * sizeof(double));
    int rc = 0;
    AT_CHECK(len <= (size_t)INT32_MAX);
    for (int64_t base = 0; base < n_blocks && !rc; base += c->size) {
        int64_t b = base + c->rank;
        memset(part, 0, len * sizeof(double));
        if (b < n_blocks) fn(ctx, b, part, err);
        if ((rc = agree(x, err))) break;
        MPI_Gather(part, (int)len, MPI_DOUBLE, all, (int)len, MPI_DOUBLE, 0, c->comm);
        if (c->rank == 0)
            for (int r = 0; r < c->size && base + r < n_blocks; r++) {
                const double *p = all + (size_t)r * len;
                for (size_t i = 0; i < len; i++) sum[i] += p[i];
            }
    }
    if (!rc) MPI_Bcast(sum, (int)len, MPI_DOUBLE, 0, c->comm);
    free(part);
    free(all);
    return rc;
}

/* ---------------------------------------------------------- planning */

static void hex16(const char *hash, char *out) {
    memcpy(out, hash, 16);
    out[16] = '\0';
}

static const char *loss_name(eng_loss_kind k) {
    return k == ENG_LOSS_MARGIN ? "margin" : k == ENG_LOSS_MSE ? "mse" : "cross_entropy";
}

/* 1 when layer l of m has a trainable tensor. */
static int layer_trainable(const eng_model *m, int l) {
    const eng_layer *L = &m->layers[l];
    for (int t = L->tensor0; t < L->tensor0 + L->n_tensors; t++)
        if (m->tensors[t].trainable) return 1;
    return 0;
}

/* The feature set of (source, loss, method's layers and projection); an
 * existing one is reused. */
static int fset_of(infl_ctx *x, int src, eng_loss_kind loss, int mi, int allow_proj) {
    const job_influence *ji = &x->c->j.influence[mi];
    const infl_method *im = &x->m[mi];
    tda_proj_kind pk = allow_proj ? (tda_proj_kind)ji->projection : TDA_PROJ_NONE;
    int k = pk == TDA_PROJ_NONE ? 0 : ji->proj_dim;
    uint64_t seed = pk == TDA_PROJ_NONE ? 0 : ji->proj_seed;
    /* the selection as the names of the layers with trainable tensors it
     * covers, in model order: [] and the list of every such layer are the
     * same set, whichever order the job names them in */
    char layers[sizeof x->fs[0].layers] = "";
    const eng_model *m = &x->c->model;
    for (int l = 0; l < m->n_layers; l++) {
        const eng_layer *L = &m->layers[l];
        int named = im->n_layers == 0;
        for (int i = 0; i < im->n_layers; i++) named |= !strcmp(im->layers[i], L->name);
        if (!named || !layer_trainable(m, l)) continue;
        if (strlen(layers) + strlen(L->name) + 2 >= sizeof layers) break;
        if (layers[0]) strcat(layers, ",");
        strcat(layers, L->name);
    }
    for (int f = 0; f < x->n_fs; f++) {
        infl_fset *s = &x->fs[f];
        if (s->src == src && s->loss == loss && s->proj == pk && s->k_req == k &&
            s->seed == seed && !strcmp(s->layers, layers))
            return f;
    }
    AT_CHECK(x->n_fs < INFL_MAX_FSETS);
    infl_fset *s = &x->fs[x->n_fs];
    memset(s, 0, sizeof *s);
    s->src = src;
    s->loss = loss;
    s->proj = pk;
    s->k_req = k;
    s->seed = seed;
    s->method = mi;
    snprintf(s->layers, sizeof s->layers, "%s", layers);
    return x->n_fs++;
}

/* Plan a set's feature extractor: its dimension and memory, without
 * building it (a dense projection matrix takes seconds to generate, which a
 * run whose blocks are all in the store never needs). Sets that differ only
 * in the source share one extractor. */
static int fset_plan(infl_ctx *x, int f, at_err *err) {
    infl_fset *s = &x->fs[f];
    for (int g = 0; g < f; g++) {
        infl_fset *o = &x->fs[g];
        if (o->loss == s->loss && o->proj == s->proj && o->k_req == s->k_req &&
            o->seed == s->seed && !strcmp(o->layers, s->layers)) {
            s->shared = 1;
            s->owner = o->shared ? o->owner : g;
            s->dim = o->dim;
            s->p = o->p;
            s->bytes = 0;
            return 0;
        }
    }
    const job_influence *ji = &x->c->j.influence[s->method];
    const infl_method *im = &x->m[s->method];
    const char *names[INFL_MAX_LAYERS];
    infl_layer_names(im, names);
    if (tda_feat_plan(&x->c->model, names, im->n_layers, s->loss, s->proj, s->k_req, x->cap,
                      INFL_PROJ_BUDGET, &s->bytes, &s->dim, err)) {
        at_err_prefix(err, "%s: influence[%d] (%s): ", x->c->j.source_path, s->method,
                      ji->name);
        return err->code;
    }
    s->owner = f;
    eng_param_sel sel;
    if (eng_param_sel_layers(&x->c->model, names, im->n_layers, &sel, err)) return err->code;
    s->p = sel.n;
    return 0;
}

/* The extractor of set f, built on first use (by the set that owns it). */
static tda_feat *fset_extractor(infl_ctx *x, int f, at_err *err) {
    infl_fset *o = &x->fs[x->fs[f].owner];
    if (!o->feat) {
        const infl_method *im = &x->m[o->method];
        const char *names[INFL_MAX_LAYERS];
        infl_layer_names(im, names);
        if (tda_feat_new(&o->feat, &x->c->model, names, im->n_layers, o->loss, o->proj,
                         o->k_req, o->seed, x->cap, INFL_PROJ_BUDGET, err))
            return NULL;
        AT_CHECK(tda_feat_dim(o->feat) == o->dim);
    }
    return o->feat;
}

static void fset_provenance(infl_ctx *x, int f) {
    infl_fset *s = &x->fs[f];
    const infl_src *src = &x->src[s->src];
    char text[8192]; /* paths (2 x 1 KiB), layers (2 KiB) and the rest: never truncated */
    snprintf(text, sizeof text,
             "format = attrib-features 1\nmodel = %s\ncheckpoint = %d\nmodel_sha256 = %s\n"
             "loss = %s\nlayers = %s\nprojection = %s\nproj_dim = %d\nproj_seed = %llu\n"
             "dim = %d\nparams = %zu\ndata = %s\n",
             src->path, src->ckpt, src->sha, loss_name(s->loss), s->layers,
             job_projection_name((job_projection)s->proj), s->k_req,
             (unsigned long long)s->seed, s->dim, s->p, x->c->j.data_path);
    at_sha256_buf_hex(text, strlen(text), s->prov);
    snprintf(s->prov_text, sizeof s->prov_text, "%s", text);
    char h[17];
    hex16(s->prov, h);
    snprintf(s->dir, sizeof s->dir, "%s/%s", x->store, h);
}

/* Block b of a split: rows [b*B, min(N, (b+1)*B)). */
void infl_block_rows(const infl_ctx *x, int split, int64_t b, int64_t *r0, int64_t *n) {
    int64_t B = split == INFL_TEST ? x->tb : x->rb;
    int64_t N = split == INFL_TEST ? x->n_te : x->n_tr;
    *r0 = b * B;
    *n = N - *r0 < B ? N - *r0 : B;
}

int64_t infl_n_blocks(const infl_ctx *x, int split) {
    int64_t B = split == INFL_TEST ? x->tb : x->rb;
    int64_t N = split == INFL_TEST ? x->n_te : x->n_tr;
    return (N + B - 1) / B;
}

/* <dir>/<split name>_<first row in the split>_<rows>.h5: blocks of two
 * selections of one split share a file only when they hold the same rows. */
void infl_block_path(const infl_ctx *x, int f, int split, int64_t b, char *out, size_t cap) {
    int64_t r0, n;
    infl_block_rows(x, split, b, &r0, &n);
    const int64_t base = split == INFL_TEST ? x->c->row_start : x->tr_start;
    snprintf(out, cap, "%s/%s_%lld_%lld.h5", x->fs[f].dir,
             split == INFL_TEST ? x->c->j.data_split : x->c->j.tda.train_split,
             (long long)(base + r0), (long long)n);
}

/* The provenance of one block: the set's and the rows' hashes. */
void infl_block_prov(const infl_ctx *x, int f, int split, int64_t b, char out[65]) {
    const uint8_t *rh = (split == INFL_TEST ? x->te_hash : x->tr_hash) + 32 * b;
    at_sha256 h;
    at_sha256_init(&h);
    at_sha256_update(&h, x->fs[f].prov, 64);
    at_sha256_update(&h, rh, 32);
    uint8_t d[32];
    at_sha256_final(&h, d);
    at_sha256_hex(d, out);
}

int infl_read_block(infl_ctx *x, int f, int split, int64_t b, float *F, double *prob,
                    at_err *err) {
    char path[JOB_PATH_MAX + 256], prov[65];
    int64_t r0, n;
    infl_block_rows(x, split, b, &r0, &n);
    infl_block_path(x, f, split, b, path, sizeof path);
    infl_block_prov(x, f, split, b, prov);
    return h5_store_read(path, prov, r0, n, x->fs[f].dim, F, prob, err);
}

/* ------------------------------------------------------ the model sources */

static int add_src(infl_ctx *x, const char *path, int ckpt, double lr) {
    for (int s = 0; s < x->n_src; s++)
        if (x->src[s].ckpt == ckpt && !strcmp(x->src[s].path, path)) return s;
    AT_CHECK(x->n_src < INFL_MAX_SRC);
    infl_src *s = &x->src[x->n_src];
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->ckpt = ckpt;
    s->lr = lr;
    return x->n_src++;
}

/* Load every source's parameters (every rank reads; files are small next
 * to the work). */
static int load_sources(infl_ctx *x, at_err *err) {
    eng_model *m = &x->c->model;
    float *own = m->params;
    x->own_params = own;
    for (int i = 0; i < x->n_src && !err->code; i++) {
        infl_src *s = &x->src[i];
        s->params = at_malloc(m->n_params * sizeof(float), "model parameters");
        if (i == 0 && s->ckpt < 0) {
            memcpy(s->params, own, m->n_params * sizeof(float));
            snprintf(s->sha, sizeof s->sha, "%s", x->c->minfo.sha256);
        } else if (s->ckpt >= 0) {
            m->params = s->params;
            int epoch = 0;
            double lr = 0;
            if (h5_ckpt_load(s->path, s->ckpt, m, &epoch, &lr, err) == 0) {
                s->lr = lr;
                s->epoch = epoch;
                h5_model_hash(m, s->sha);
            }
            m->params = own;
        } else {
            eng_model o;
            h5_model_info oi;
            if (h5_model_load(s->path, &o, &oi, err) == 0) {
                int same = o.n_params == m->n_params && o.n_tensors == m->n_tensors;
                for (int t = 0; same && t < m->n_tensors; t++)
                    same = !strcmp(o.tensors[t].name, m->tensors[t].name) &&
                           o.tensors[t].numel == m->tensors[t].numel;
                if (!same)
                    at_err_set(err, AT_EUSER,
                               "%s: model %s has another architecture than model.path %s; "
                               "an ensemble needs models of one architecture",
                               x->c->j.source_path, s->path, x->c->j.model_path);
                else
                    memcpy(s->params, o.params, m->n_params * sizeof(float));
                snprintf(s->sha, sizeof s->sha, "%s", oi.sha256);
                eng_model_free(&o);
            }
        }
    }
    return err->code;
}

/* ------------------------------------------------------------- memory */

static double mem_available(const infl_ctx *x) {
    const char *env = getenv("ATTRIB_MEM_LIMIT");
    if (env && *env) return atof(env);
    double avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "MemAvailable:", 13)) avail = atof(line + 13) * 1024.0;
        fclose(f);
    }
    if (avail <= 0) avail = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    return avail / (double)(x->local_ranks > 0 ? x->local_ranks : 1);
}

static void mem_stage(infl_ctx *x, const char *stage, double bytes, const char *setting) {
    if (x->n_stages < INFL_MAX_STAGES) {
        infl_stage *s = &x->stages[x->n_stages++];
        snprintf(s->name, sizeof s->name, "%s", stage);
        snprintf(s->setting, sizeof s->setting, "%s", setting);
        s->bytes = bytes;
    }
}

/* Bytes of K-FAC's factors, eigenbases, eigenvalues and workspace
 * (tda_kfac_plan) over the method's selection; 0 if it would be refused
 * (the preconditioning stage reports that error). */
static double kfac_bytes(const infl_ctx *x, const job_influence *ji) {
    const infl_method *im = &x->m[ji - x->c->j.influence];
    const char *names[INFL_MAX_LAYERS];
    infl_layer_names(im, names);
    eng_loss loss = {.kind = ENG_LOSS_XENT};
    size_t b = 0;
    at_err e = {0};
    if (tda_kfac_plan(&x->c->model, names, im->n_layers, ji->inverse == JOB_INV_EKFAC, loss,
                      x->cap, &b, &e))
        return 0;
    return (double)b;
}

/* The memory each stage needs per rank (rank 0 prints); refuses a job
 * whose largest stage exceeds what a rank has. */
static int memory_plan(infl_ctx *x, at_err *err) {
    const job *j = &x->c->j;
    const double D = (double)x->D, R = (double)x->size; /* rank 0 gathers R partials */
    eng_memory em;
    eng_plan_memory(&x->c->model, x->cap, ENG_F32, &em);
    double base = (double)x->c->model.n_params * 4.0 * (double)x->n_src;
    double feat = 0;
    for (int f = 0; f < x->n_fs; f++) feat += (double)x->fs[f].bytes;
    double blockmax = 0;
    for (int f = 0; f < x->n_fs; f++) {
        double b = (double)x->rb * (D * 4 + (double)x->fs[f].dim * 4 + 8);
        if (b > blockmax) blockmax = b;
    }
    mem_stage(x, "featurise", base + feat + blockmax + (double)em.total,
              "train_data.block_rows, proj_dim or layers");
    for (int mi = 0; mi < j->n_influence; mi++) {
        const infl_method *im = &x->m[mi];
        const job_influence *ji = &j->influence[mi];
        double pre = 0, dim = (double)x->fs[im->t[0].fs].dim;
        char nm[JOB_NAME_MAX + 32];
        snprintf(nm, sizeof nm, "precondition %s", ji->name);
        if (ji->kind == JOB_INFL_INFLUENCE) {
            if (ji->inverse == JOB_INV_EXACT)
                pre = dim * dim * 8.0 * (2.0 + R) + (double)x->cap * dim * (double)x->C * 8.0;
            else if (ji->inverse == JOB_INV_KFAC || ji->inverse == JOB_INV_EKFAC)
                pre = kfac_bytes(x, ji) * (2.0 + R);
            else
                pre = (double)(ji->hessian_rows && ji->hessian_rows < x->n_tr
                                   ? ji->hessian_rows
                                   : x->n_tr) *
                          D * 4.0 +
                      8.0 * dim * 8.0;
        } else if (ji->kind == JOB_INFL_TRAK) {
            pre = dim * dim * 8.0 * (2.0 + R);
        }
        pre += (double)x->n_te * dim * 12.0 * (double)im->n_terms;
        mem_stage(x, nm, base + feat + pre,
                  ji->kind == JOB_INFL_INFLUENCE && ji->inverse == JOB_INV_EXACT
                      ? "layers (fewer parameters) or inverse: cg"
                      : "proj_dim, layers or data.rows (fewer test rows)");
        /* test features, a tile, a train block, the round's summaries (top-k
         * and LDS sums, gathered R-fold on rank 0) and the LDS predictions */
        const double M = (double)j->tda.lds_subsets;
        double sc = (double)x->n_te * dim * 4.0 * (double)im->n_terms +
                    (double)x->tt * (double)x->rb * 4.0 + (double)x->rb * dim * 4.0 +
                    (double)x->tt * ((double)x->K * 32.0 + M * 8.0) * (1.0 + R) +
                    M * (double)x->n_te * 8.0;
        snprintf(nm, sizeof nm, "scores %s", ji->name);
        mem_stage(x, nm, base + sc, "data.rows (fewer test rows) or train_data.block_rows");
    }
    if (j->tda.loo_points)
        mem_stage(x, "leave-one-out", base + (double)(x->n_tr + x->n_te) * D * 4.0 +
                                          (double)x->c->model.n_params *
                                              (double)x->c->model.n_params * 8.0 * 2.0,
                  "train_data.rows (a smaller train set)");
    if (j->tda.lds_subsets)
        mem_stage(x, "lds",
                  base + (double)(x->n_tr + x->n_te) * D * 4.0 + (double)em.total +
                      (double)j->tda.lds_subsets *
                          ((double)x->n_tr + (double)(j->tda.lds_seeds + 1) * x->n_te * 8.0),
                  "train_data.rows, ground_truth.lds.subsets or data.rows");
    double avail = mem_available(x);
    const infl_stage *worst = NULL;
    for (int s = 0; s < x->n_stages; s++)
        if (!worst || x->stages[s].bytes > worst->bytes) worst = &x->stages[s];
    if (x->c->rank == 0) {
        char a[32], b[32];
        at_human_bytes(avail, a, sizeof a);
        printf("memory per rank (%s available to each of %d rank(s) on this node):\n", a,
               x->local_ranks);
        for (int s = 0; s < x->n_stages; s++) {
            at_human_bytes(x->stages[s].bytes, b, sizeof b);
            printf("  %-28s %s\n", x->stages[s].name, b);
        }
        fflush(stdout);
    }
    if (worst && worst->bytes > avail) {
        char a[32], b[32];
        at_human_bytes(avail, a, sizeof a);
        at_human_bytes(worst->bytes, b, sizeof b);
        return at_err_set(err, AT_EUSER,
                          "%s: stage '%s' needs %s per rank but %s is available to each of the "
                          "%d rank(s) on this node; lower %s, or run fewer ranks per node",
                          j->source_path, worst->name, b, a, x->local_ranks, worst->setting);
    }
    return 0;
}

/* ------------------------------------------------------------- set-up */

static int open_inputs(infl_ctx *x, at_err *err) {
    run_ctx *c = x->c;
    job *j = &c->j;
    int rc;
    if (j->n_methods)
        at_err_set(err, AT_EUSER,
                   "%s: a job computes either feature attributions (methods:) or training-data "
                   "attribution (influence:), not both: split it into two jobs with their own "
                   "output files",
                   j->source_path);
    if ((rc = agree(x, err))) return rc;
    if ((rc = run_open_inputs(c, err))) return rc;
    x->n_te = c->n_rows;
    h5_dataset_info ti;
    if (h5_reader_open(&x->trd, j->data_path, j->tda.train_split, &ti, err) == 0) {
        int64_t n = ti.n_rows, r0 = j->tda.train_start,
                r1 = j->tda.train_end < 0 ? n : j->tda.train_end;
        if (r0 >= n || r1 > n)
            at_err_set(err, AT_EUSER,
                       "%s: train_data.rows: rows %lld:%lld are outside split '%s', which has "
                       "%lld rows",
                       j->source_path, (long long)r0, (long long)r1, j->tda.train_split,
                       (long long)n);
        else if (ti.n_features != c->info.n_features)
            at_err_set(err, AT_EUSER,
                       "%s: split '%s' has %lld features per row but split '%s' has %lld",
                       j->data_path, j->tda.train_split, (long long)ti.n_features,
                       j->data_split, (long long)c->info.n_features);
        x->tr_start = r0;
        x->n_tr = r1 - r0;
    } else {
        at_err_prefix(err, "train_data.split: ");
    }
    if ((rc = agree(x, err))) return rc;
    x->D = c->info.n_features;
    x->C = c->model.out_features;
    x->tb = j->block_rows;
    x->rb = j->tda.train_block_rows;
    x->tt = x->n_te < INFL_TEST_TILE ? x->n_te : INFL_TEST_TILE;
    x->K = j->tda.top_k < x->n_tr ? j->tda.top_k : (int)x->n_tr;
    x->cap = plan_engine_batch(&c->model);
    if (x->cap > 256) x->cap = 256;
    if (j->tda.store[0])
        snprintf(x->store, sizeof x->store, "%s", j->tda.store);
    else
        snprintf(x->store, sizeof x->store, "%s.store", j->output_path);
    return 0;
}

/* Methods -> sources, feature sets and terms. */
static int plan_methods(infl_ctx *x, at_err *err) {
    job *j = &x->c->j;
    add_src(x, j->model_path, -1, 1.0);
    /* checkpoints first, to know their count */
    for (int mi = 0; mi < j->n_influence && !err->code; mi++) {
        const job_influence *ji = &j->influence[mi];
        if (!ji->checkpoints[0]) continue;
        int K = 0;
        if (h5_ckpt_count(ji->checkpoints, &K, err)) {
            at_err_prefix(err, "%s: influence[%d] (%s): checkpoints: ", j->source_path, mi,
                          ji->name);
            break;
        }
        for (int k = 0; k < K; k++) add_src(x, ji->checkpoints, k, 0);
    }
    if (err->code) return err->code;
    for (int mi = 0; mi < j->n_influence; mi++) {
        const job_influence *ji = &j->influence[mi];
        for (int k = 0; k < ji->n_models; k++) add_src(x, ji->models[k], -1, 1.0);
    }
    if (load_sources(x, err)) return err->code;
    for (int mi = 0; mi < j->n_influence; mi++) {
        const job_influence *ji = &j->influence[mi];
        infl_method *im = &x->m[mi];
        memset(im, 0, sizeof *im);
        im->normalize = ji->kind == JOB_INFL_GRAD_COS || ji->normalize;
        for (int i = 0; i < ji->n_layers; i++)
            snprintf(im->layers[im->n_layers++], ENG_NAME_MAX, "%s", ji->layers[i]);
        if (!ji->n_layers && ji->kind == JOB_INFL_INFLUENCE &&
            (ji->inverse == JOB_INV_KFAC || ji->inverse == JOB_INV_EKFAC)) {
            /* K-FAC covers linear and conv2d layers: all of them with
             * trainable parameters, and the features over the same */
            const eng_model *m = &x->c->model;
            for (int l = 0; l < m->n_layers; l++) {
                const eng_layer *L = &m->layers[l];
                if ((L->kind == ENG_LAYER_LINEAR || L->kind == ENG_LAYER_CONV2D) &&
                    layer_trainable(m, l)) {
                    if (im->n_layers == INFL_MAX_LAYERS)
                        return at_err_set(err, AT_EUSER,
                                          "%s: influence[%d] (%s): the model has more than %d "
                                          "linear and conv2d layers; name the ones kfac covers "
                                          "with `layers`",
                                          j->source_path, mi, ji->name, INFL_MAX_LAYERS);
                    snprintf(im->layers[im->n_layers++], ENG_NAME_MAX, "%s", L->name);
                }
            }
            if (!im->n_layers)
                return at_err_set(err, AT_EUSER,
                                  "%s: influence[%d] (%s): inverse %s needs linear or conv2d "
                                  "layers with parameters; model %s has none",
                                  j->source_path, mi, ji->name, job_inverse_name(ji->inverse),
                                  j->model_path);
        }
        eng_loss_kind loss = ji->kind == JOB_INFL_TRAK ? ENG_LOSS_MARGIN : ENG_LOSS_XENT;
        int proj_ok = ji->kind != JOB_INFL_INFLUENCE;
        int srcs[INFL_MAX_SRC], ns = 0;
        if (ji->kind == JOB_INFL_TRACIN) {
            for (int s = 0; s < x->n_src; s++)
                if (x->src[s].ckpt >= 0 && !strcmp(x->src[s].path, ji->checkpoints))
                    srcs[ns++] = s;
        } else if (ji->kind == JOB_INFL_TRAK) {
            srcs[ns++] = 0;
            for (int k = 0; k < ji->n_models; k++) srcs[ns++] = add_src(x, ji->models[k], -1, 1);
            if (ji->checkpoints[0])
                for (int s = 0; s < x->n_src; s++)
                    if (x->src[s].ckpt >= 0 && !strcmp(x->src[s].path, ji->checkpoints))
                        srcs[ns++] = s;
        } else {
            srcs[ns++] = 0;
        }
        for (int t = 0; t < ns; t++) {
            im->t[t].fs = fset_of(x, srcs[t], loss, mi, proj_ok);
            im->t[t].w = ji->kind == JOB_INFL_TRACIN ? x->src[srcs[t]].lr
                         : ji->kind == JOB_INFL_TRAK ? 1.0 / ns
                                                      : 1.0;
        }
        im->n_terms = ns;
    }
    for (int f = 0; f < x->n_fs; f++) {
        if (fset_plan(x, f, err)) return err->code;
        fset_provenance(x, f);
    }
    for (int mi = 0; mi < j->n_influence; mi++) {
        const job_influence *ji = &j->influence[mi];
        infl_method *im = &x->m[mi];
        if (ji->kind == JOB_INFL_INFLUENCE && ji->inverse == JOB_INV_EXACT &&
            x->fs[im->t[0].fs].dim > INFL_MAX_EXACT)
            return at_err_set(err, AT_EUSER,
                              "%s: influence[%d] (%s): inverse exact over %d parameters needs a "
                              "%d x %d matrix; select fewer parameters with `layers`, or use "
                              "inverse: cg, lissa, kfac or ekfac",
                              j->source_path, mi, ji->name, x->fs[im->t[0].fs].dim,
                              x->fs[im->t[0].fs].dim, x->fs[im->t[0].fs].dim);
    }
    return 0;
}

/* Hash every block's rows (x and labels); each rank hashes an even share;
 * OR-combined, as in run.c's digest. Collective. */
static int hash_rows(infl_ctx *x, int split, uint8_t **out, at_err *err) {
    int64_t nb = infl_n_blocks(x, split), B = split == INFL_TEST ? x->tb : x->rb;
    uint8_t *h = at_calloc((size_t)nb * 32 + 1, 1, "row hashes");
    float *xs = at_malloc((size_t)(B * x->D + 1) * sizeof(float), "rows");
    int32_t *lab = at_malloc((size_t)(B + 1) * sizeof(int32_t), "labels");
    int64_t lo = nb * x->c->rank / x->size, hi = nb * (x->c->rank + 1) / x->size;
    for (int64_t b = lo; b < hi && !err->code; b++) {
        int64_t r0, n;
        infl_block_rows(x, split, b, &r0, &n);
        if (infl_read_rows(x, split, r0, n, xs, lab, err)) break;
        at_sha256 s;
        at_sha256_init(&s);
        at_sha256_update(&s, xs, (size_t)(n * x->D) * sizeof(float));
        at_sha256_update(&s, lab, (size_t)n * sizeof(int32_t));
        at_sha256_final(&s, h + 32 * b);
    }
    free(xs);
    free(lab);
    int rc = agree(x, err);
    if (!rc) MPI_Allreduce(MPI_IN_PLACE, h, (int)(nb * 32), MPI_UINT8_T, MPI_BOR, x->c->comm);
    *out = h;
    return rc;
}

/* ---------------------------------------------------------- featurise */

static int stop_requested(infl_ctx *x) {
    if (stop_signal_received()) return STOP_SIGNAL;
    if (access(x->c->stop_path, F_OK) == 0) return STOP_FILE;
    if (x->c->j.max_wall_time > 0 && at_now() - x->c->t_start > x->c->j.max_wall_time)
        return STOP_WALL_TIME;
    return STOP_NONE;
}

/* Every (set, split, block) unit, round-robin by rank; blocks already in
 * the store are kept. Collective. */
static int featurise(infl_ctx *x, int *stopped, at_err *err) {
    run_ctx *c = x->c;
    const int64_t nbt = infl_n_blocks(x, INFL_TEST), nbr = infl_n_blocks(x, INFL_TRAIN);
    /* units block-major: the feature sets of one block follow each other,
     * so a rank reading the block's rows for one set keeps them for the next */
    const int64_t per = nbt + nbr, n_units = per * x->n_fs;
    int64_t rows_of = -1; /* the block whose rows xs holds */
    int64_t Bmax = x->tb > x->rb ? x->tb : x->rb;
    int dmax = 1;
    for (int f = 0; f < x->n_fs; f++)
        if (x->fs[f].dim > dmax) dmax = x->fs[f].dim;
    float *xs = at_malloc((size_t)(Bmax * x->D) * sizeof(float), "rows");
    int32_t *lab = at_malloc((size_t)Bmax * sizeof(int32_t), "labels");
    float *F = at_malloc((size_t)Bmax * (size_t)dmax * sizeof(float), "features");
    double *prob = infl_dalloc((size_t)Bmax, "probabilities");
    int64_t done[2] = {0, 0}; /* computed, reused */
    int stop = 0;
    double t0 = at_now(), last = t0;
    if (c->rank == 0)
        for (int f = 0; f < x->n_fs && !err->code; f++)
            h5_store_prepare_dir(x->fs[f].dir, x->fs[f].prov_text, err);
    if (agree(x, err)) goto out;
    for (int64_t u = c->rank; u < n_units && !err->code; u += x->size) {
        if ((stop = stop_requested(x))) break;
        int f = (int)(u % x->n_fs);
        int64_t k = u / x->n_fs;
        int split = k < nbt ? INFL_TEST : INFL_TRAIN;
        int64_t b = split == INFL_TEST ? k : k - nbt, r0, n;
        infl_block_rows(x, split, b, &r0, &n);
        char path[JOB_PATH_MAX + 256], prov[65];
        infl_block_path(x, f, split, b, path, sizeof path);
        infl_block_prov(x, f, split, b, prov);
        const int dim = x->fs[f].dim;
        if (h5_store_has(path, prov, r0, n, dim)) {
            done[1]++;
            continue;
        }
        if (k != rows_of) {
            if (infl_read_rows(x, split, r0, n, xs, lab, err)) break;
            rows_of = k;
        }
        tda_feat *fe = fset_extractor(x, f, err);
        if (!fe) break;
        infl_use_src(x, x->fs[f].src);
        tda_feat_compute(fe, &c->model, xs, lab, n, F, prob);
        infl_use_src(x, 0);
        for (int64_t i = 0; i < n * dim; i++)
            if (!isfinite(F[i])) {
                at_err_set(err, AT_EUSER,
                           "influence[%d] (%s): the gradient of %s row %lld is not finite "
                           "(model %s); check the model's weights",
                           x->fs[f].method, c->j.influence[x->fs[f].method].name,
                           split == INFL_TEST ? "test" : "train",
                           (long long)(r0 + i / dim), x->src[x->fs[f].src].path);
                break;
            }
        if (err->code) break;
        if (h5_store_write(path, prov, r0, n, dim, F, prob, err)) break;
        done[0]++;
        double now = at_now();
        if (c->rank == 0 && now - last > c->j.progress_interval) {
            AT_INFO("featurise: unit %lld of %lld (%.1f s)", (long long)u + 1,
                    (long long)n_units, now - t0);
            last = now;
        }
    }
out:
    free(xs);
    free(lab);
    free(F);
    free(prob);
    int rc = agree(x, err);
    if (rc) return rc;
    int64_t tot[2];
    MPI_Allreduce(done, tot, 2, MPI_INT64_T, MPI_SUM, c->comm);
    MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, c->comm);
    *stopped = stop;
    x->units_computed = tot[0];
    x->units_reused = tot[1];
    x->t_featurise = at_now() - t0;
    if (c->rank == 0 && !stop)
        AT_INFO("featurise: %lld block(s) computed, %lld reused from %s/ (%.2f s)",
                (long long)tot[0], (long long)tot[1], x->store, x->t_featurise);
    return 0;
}

/* ------------------------------------------------------------ cleanup */

static void ctx_free(infl_ctx *x) {
    for (int f = 0; f < x->n_fs; f++) tda_feat_free(x->fs[f].feat); /* owners only */
    if (x->own_params) x->c->model.params = x->own_params; /* run.c frees it */
    for (int s = 0; s < x->n_src; s++) free(x->src[s].params);
    for (int mi = 0; mi < JOB_MAX_INFLUENCE; mi++) {
        for (int t = 0; t < INFL_MAX_SRC; t++) free(x->m[mi].A[t]);
        free(x->m[mi].lds_per_test);
        free(x->m[mi].lds_pred);
        free(x->m[mi].loo_pred);
    }
    free(x->te_hash);
    free(x->tr_hash);
    if (x->trd) h5_reader_close(x->trd);
    infl_truth_free(&x->truth);
}

/* The plan hash: the effective job, every model source's content hash and
 * every block's rows. A results file holding it is this job's. */
static void plan_hash(infl_ctx *x) {
    /* the effective job without what decides no number: where the output
     * and the store go, progress and stop settings */
    job *jc = at_malloc(sizeof *jc, "job copy");
    memcpy(jc, &x->c->j, sizeof *jc);
    jc->output_path[0] = jc->source_path[0] = jc->stop_file[0] = jc->tda.store[0] = '\0';
    jc->overwrite = jc->keep_shards = 0;
    jc->progress_interval = jc->checkpoint_interval = jc->max_wall_time = 0;
    char *text = job_emit_yaml(jc);
    free(jc);
    at_sha256 h;
    at_sha256_init(&h);
    at_sha256_update(&h, "attrib-influence 1\n", 19);
    at_sha256_update(&h, text, strlen(text));
    free(x->c->plan_text);
    x->c->plan_text = text;
    for (int s = 0; s < x->n_src; s++) at_sha256_update(&h, x->src[s].sha, 64);
    at_sha256_update(&h, x->te_hash, (size_t)infl_n_blocks(x, INFL_TEST) * 32);
    at_sha256_update(&h, x->tr_hash, (size_t)infl_n_blocks(x, INFL_TRAIN) * 32);
    uint8_t d[32];
    at_sha256_final(&h, d);
    at_sha256_hex(d, x->c->plan_hash);
}

/* An existing results file: this job's -> *complete; another's -> refused
 * unless output.overwrite (or --fresh). Rank 0 decides. Collective. */
static int check_output(infl_ctx *x, int *complete, at_err *err) {
    run_ctx *c = x->c;
    const job *j = &c->j;
    int flag = 0;
    if (c->rank == 0 && access(j->output_path, F_OK) == 0) {
        char *hash = NULL;
        int rc = h5_file_root_attr(j->output_path, "plan_hash", &hash);
        int same = rc == 0 && !strcmp(hash, c->plan_hash);
        if (same && !c->fresh)
            flag = 1;
        else if (!same && !j->overwrite)
            at_err_set(err, AT_EUSER,
                       "output %s already exists and %s; set output.overwrite: true to replace "
                       "it when this run finishes, or choose another path with -o",
                       j->output_path,
                       rc == 0 ? "holds the results of another job (or of other data or "
                                 "models)"
                               : "is not an attrib results file");
        free(hash);
    }
    int rc = agree(x, err);
    MPI_Bcast(&flag, 1, MPI_INT, 0, c->comm);
    *complete = flag;
    return rc;
}

/* A stop asked for between stages: the store keeps the features; the
 * stages after featurising are recomputed by the rerun. Collective. */
static int stage_stop(infl_ctx *x, const char *next) {
    int stop = stop_requested(x);
    MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, x->c->comm);
    if (stop && x->c->rank == 0) {
        fprintf(stderr,
                "attrib: stopped early before %s: %s. The gradient features are kept in %s/; "
                "rerun the same command to resume (exit %d).\n",
                next, stop_reason_text((stop_reason)stop), x->store, AT_EXIT_RESUMABLE);
        fflush(stderr);
    }
    return stop ? AT_EXIT_RESUMABLE : 0;
}

/* --------------------------------------------------------------- main */

static void print_plan(infl_ctx *x) {
    const job *j = &x->c->j;
    printf("training-data attribution: %lld test rows (%s split '%s') x %lld train rows (split "
           "'%s'); %d model source(s), %d feature set(s), store %s/\n",
           (long long)x->n_te, j->data_path, j->data_split, (long long)x->n_tr,
           j->tda.train_split, x->n_src, x->n_fs, x->store);
    for (int f = 0; f < x->n_fs; f++) {
        const infl_fset *s = &x->fs[f];
        char ck[32] = "";
        if (x->src[s->src].ckpt >= 0) snprintf(ck, sizeof ck, " checkpoint %d", x->src[s->src].ckpt);
        printf("  features %d: %s%s, %s loss, layers %s, %zu parameters -> %s %d\n", f,
               x->src[s->src].path, ck, loss_name(s->loss), s->layers, s->p,
               job_projection_name((job_projection)s->proj), s->dim);
    }
    for (int mi = 0; mi < j->n_influence; mi++)
        printf("  /influence/%s: %s, %d term(s)\n", j->influence[mi].name,
               job_infl_kind_name(j->influence[mi].kind), x->m[mi].n_terms);
    fflush(stdout);
}

int infl_main(run_ctx *c, int validate_only, int dry_run, at_err *err) {
    infl_ctx *x = at_calloc(1, sizeof *x, "influence context");
    x->c = c;
    x->size = c->size;
    MPI_Comm local;
    MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &x->local_ranks);
    MPI_Comm_free(&local);
    double t0 = at_now();
    int rc = open_inputs(x, err);
    if (!rc) {
        plan_methods(x, err);
        rc = agree(x, err);
    }
    if (!rc) {
        memory_plan(x, err);
        rc = agree(x, err);
    }
    if (!rc && (rc = hash_rows(x, INFL_TEST, &x->te_hash, err)) == 0)
        rc = hash_rows(x, INFL_TRAIN, &x->tr_hash, err);
    if (rc) goto out;
    if (validate_only || dry_run) {
        if (c->rank == 0) {
            if (validate_only) printf("%s: job is valid\n", c->j.source_path);
            print_plan(x);
        }
        goto out;
    }
    plan_hash(x);
    int complete = 0;
    if ((rc = check_output(x, &complete, err))) goto out;
    if (complete) {
        if (c->rank == 0)
            printf("%s already holds this job's results (plan %.12s...); nothing to do. Use "
                   "--fresh to compute them again.\n",
                   c->j.output_path, c->plan_hash);
        goto out;
    }
    /* a stop file left by the run this one resumes (as resume.c does) */
    if (c->rank == 0) unlink(c->stop_path);
    MPI_Barrier(c->comm);
    if (c->rank == 0) print_plan(x);
    int stopped = 0;
    if ((rc = featurise(x, &stopped, err))) goto out;
    if (stopped) {
        if (c->rank == 0) {
            fprintf(stderr,
                    "attrib: stopped early: %s. Finished gradient blocks are kept in %s/; "
                    "rerun the same command to resume (exit %d).\n",
                    stop_reason_text((stop_reason)stopped), x->store, AT_EXIT_RESUMABLE);
            fflush(stderr);
        }
        rc = AT_EXIT_RESUMABLE;
        goto out;
    }
    if ((rc = stage_stop(x, "the ground truth")) || (rc = infl_truth_run(x, err))) goto out;
    if ((rc = stage_stop(x, "preconditioning")) || (rc = infl_precondition(x, err))) goto out;
    if ((rc = stage_stop(x, "the scores")) || (rc = infl_write_results(x, err))) goto out;
    if (c->rank == 0) {
        printf("wrote %s\n", c->j.output_path);
        for (int mi = 0; mi < c->j.n_influence; mi++) {
            const infl_method *im = &x->m[mi];
            printf("  /influence/%s/scores [%lld, %lld]  %s", c->j.influence[mi].name,
                   (long long)x->n_te, (long long)x->n_tr,
                   job_infl_kind_name(c->j.influence[mi].kind));
            if (im->has_lambda) printf(", damping %.4g", im->lambda);
            if (im->loo_pearson == im->loo_pearson && c->j.tda.loo_points)
                printf("; LOO Pearson %.4f, Spearman %.4f", im->loo_pearson, im->loo_spearman);
            if (c->j.tda.lds_subsets)
                printf("; LDS %.4f [%.4f, %.4f]", im->lds, im->lds_lo, im->lds_hi);
            printf("\n");
        }
        printf("  %d rank(s), %.2f s total (featurise %.2f s, ground truth %.2f s, "
               "precondition %.2f s, scores %.2f s)\n",
               c->size, at_now() - t0, x->t_featurise, x->t_truth, x->t_precondition,
               x->t_scores);
    }
out:
    ctx_free(x);
    free(x);
    return rc;
}
