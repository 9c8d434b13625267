/* run.c — `attrib run` and `attrib validate`: the MPI lifecycle of a job.
 *
 * Stages (all ranks):
 *   1. rank 0 reads the job file and broadcasts its text; every rank parses
 *      the same text with the same --set overrides;
 *   2. every rank opens the data and model files and checks them; errors are
 *      agreed on collectively so all ranks fail or go on together (exit 2);
 *   3. the plan (pipeline.h) and the static schedule; each rank computes its
 *      units in order, reading only its rows' hyperslabs; a unit's float64
 *      partial goes to the owner of its (method, row block) — the rank that
 *      runs the block's first column block;
 *   4. owners fold partials in unit order (never arrival order), finalize
 *      scores and per-sample statistics;
 *   5. all ranks write the results file collectively (parallel HDF5) to
 *      OUT.partial; rank 0 fsyncs and renames it to OUT. A run that fails
 *      leaves no results file behind.
 * Rank 0 shows progress while computing; other ranks report each finished
 * unit with a small message. Waiting never spins (Iprobe + nanosleep).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5io.h"
#include "pipeline.h"
#include "scheduler.h"

enum { TAG_PARTIAL = 11, TAG_PROGRESS = 12 };

typedef struct {
    MPI_Comm comm;
    int rank, size;
    job j;
    char *job_yaml;          /* effective job, emitted */
    h5_reader *rd;
    h5_dataset_info info;
    eng_model model;
    h5_model_info minfo;
    int64_t row_start, n_rows;
    float *baseline[JOB_MAX_METHODS]; /* (D) per method that uses one */
    plan p;
    sched_static sched;
    double t_start;
    char started_at[32];
} run_ctx;

/* --------------------------------------------------------------- helpers */

static void iso_now(char *out, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void nap(void) {
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
}

/* All ranks agree on the outcome of a stage: returns the largest code of
 * any rank. The lowest failing rank prints its message (so the message is
 * printed once, by the rank that saw it). */
static int agree(run_ctx *c, const at_err *err) {
    int code = err->code, worst = 0;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, c->comm);
    if (worst == 0) return 0;
    int mine = code ? c->rank : c->size, first = 0;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    if (first == c->rank) cli_error(err);
    return worst;
}

static void bcast_string(run_ctx *c, char **s) {
    long n = c->rank == 0 && *s ? (long)strlen(*s) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_LONG, 0, c->comm);
    if (c->rank != 0) {
        free(*s);
        *s = n ? at_malloc((size_t)n, "broadcast text") : NULL;
    }
    if (n) MPI_Bcast(*s, (int)n, MPI_CHAR, 0, c->comm);
}

/* mkdir -p of the directory holding path. */
static int make_parent_dirs(const char *path, at_err *err) {
    char *tmp = at_strdup(path, "path");
    char *dir = dirname(tmp);
    char buf[JOB_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    free(tmp);
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/') continue;
        *q = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return at_err_set(err, AT_EUSER, "%s: cannot create directory %s: %s", path, buf,
                              strerror(errno));
        *q = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return at_err_set(err, AT_EUSER, "%s: cannot create directory %s: %s", path, buf,
                          strerror(errno));
    return 0;
}

static int fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY : O_RDWR);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ stage 1, 2 */

/* Everything that can be checked before computing. Collective. */
static int prepare(run_ctx *c, const cli_job_args *a, at_err *err) {
    char *text = NULL;
    if (c->rank == 0) job_read_file(a->job_path, &text, err);
    if (agree(c, err)) return AT_EUSER;
    bcast_string(c, &text);
    /* -o OUT is one more override, output.path=OUT, applied last. */
    const char *sets[258];
    int n_sets = a->n_sets;
    memcpy(sets, a->sets, (size_t)n_sets * sizeof *sets);
    char *out_set = NULL;
    if (a->out_path) {
        size_t len = strlen(a->out_path) + 16;
        out_set = at_malloc(len, "-o override");
        snprintf(out_set, len, "output.path=%s", a->out_path);
        sets[n_sets++] = out_set;
    }
    job_parse(text, a->job_path, sets, n_sets, JOB_PURPOSE_RUN, &c->j, err);
    free(text);
    free(out_set);
    int rc = agree(c, err);
    if (rc) return rc;
    job *j = &c->j;
    c->job_yaml = job_emit_yaml(j);

    /* data */
    if (h5_reader_open(&c->rd, j->data_path, j->data_split, &c->info, err) == 0) {
        int64_t n = c->info.n_rows;
        int64_t r0 = j->row_start, r1 = j->row_end < 0 ? n : j->row_end;
        if (r0 >= n || r1 > n)
            at_err_set(err, AT_EUSER,
                       "%s: data.rows: rows %lld:%lld are outside split '%s', which has %lld rows",
                       j->source_path[0] ? j->source_path : a->job_path, (long long)r0,
                       (long long)r1, j->data_split, (long long)n);
        c->row_start = r0;
        c->n_rows = r1 - r0;
    }
    if ((rc = agree(c, err))) return rc;

    /* model */
    h5_model_load(j->model_path, &c->model, &c->minfo, err);
    if ((rc = agree(c, err))) return rc;
    if (c->model.in_features != c->info.n_features)
        at_err_set(err, AT_EUSER,
                   "model %s takes %d input features but dataset %s split '%s' has %lld "
                   "features per row",
                   j->model_path, c->model.in_features, j->data_path, j->data_split,
                   (long long)c->info.n_features);
    for (int m = 0; m < j->n_methods && !err->code; m++) {
        const job_method *jm = &j->methods[m];
        if (jm->target == JOB_TARGET_CLASS && jm->target_class >= c->model.out_features)
            at_err_set(err, AT_EUSER,
                       "methods[%d] (%s): target class %d does not exist; model %s has %d "
                       "classes (0..%d)",
                       m, jm->name, jm->target_class, j->model_path, c->model.out_features,
                       c->model.out_features - 1);
    }
    if ((rc = agree(c, err))) return rc;

    /* baselines: the dataset mean is computed by rank 0 and broadcast */
    const int64_t D = c->info.n_features;
    for (int m = 0; m < j->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        if (jm->kind != JOB_METHOD_INTEGRATED_GRADIENTS) continue;
        float *b = at_malloc((size_t)D * sizeof(float), "baseline");
        if (jm->baseline == JOB_BASELINE_MEAN) {
            double *mean = at_calloc((size_t)D, sizeof(double), "baseline mean");
            if (c->rank == 0) h5_dataset_mean(j->data_path, jm->baseline_split, mean, D, err);
            if ((rc = agree(c, err))) {
                free(mean);
                free(b);
                return rc;
            }
            MPI_Bcast(mean, (int)D, MPI_DOUBLE, 0, c->comm);
            for (int64_t d = 0; d < D; d++) b[d] = (float)mean[d];
            free(mean);
        } else {
            float v = jm->baseline == JOB_BASELINE_CONSTANT ? (float)jm->baseline_value : 0.0f;
            for (int64_t d = 0; d < D; d++) b[d] = v;
        }
        c->baseline[m] = b;
    }

    /* output: never clobber unless asked */
    if (c->rank == 0) {
        struct stat st;
        if (stat(j->output_path, &st) == 0 && !j->overwrite)
            at_err_set(err, AT_EUSER,
                       "output %s already exists; set output.overwrite: true, pass "
                       "--set output.overwrite=true, or choose another path with -o",
                       j->output_path);
        else if (!a->dry_run)
            make_parent_dirs(j->output_path, err);
    }
    if ((rc = agree(c, err))) return rc;

    if (plan_build(&c->p, j, c->row_start, c->n_rows, D, c->model.out_features, err) == 0)
        sched_static_build(&c->sched, c->p.costs, c->p.n_units, c->size);
    return agree(c, err);
}

static void ctx_free(run_ctx *c) {
    if (c->rd) h5_reader_close(c->rd);
    eng_model_free(&c->model);
    for (int m = 0; m < JOB_MAX_METHODS; m++) free(c->baseline[m]);
    plan_free(&c->p);
    sched_static_free(&c->sched);
    free(c->job_yaml);
}

/* ------------------------------------------------------------ stage 3, 4 */

/* The rows of one row block, with the model's view of them. */
typedef struct {
    int64_t rb;
    int nrows;
    float *x;        /* (block_rows, D) */
    int32_t *label;  /* (block_rows) */
    float *logits;   /* (block_rows, C) */
    int32_t *pred;   /* (block_rows) */
} block_cache;

static int load_block(run_ctx *c, mth_scratch *sc, block_cache *b, int64_t rb,
                      at_err *err) {
    if (b->rb == rb) return 0;
    const plan *p = &c->p;
    const int D = (int)p->n_features, C = (int)p->n_classes;
    int64_t row0 = rb * p->block_rows;
    int n = (int)(p->n_rows - row0 < p->block_rows ? p->n_rows - row0 : p->block_rows);
    if (h5_reader_read(c->rd, c->row_start + row0, c->row_start + row0 + n, b->x, b->label, err))
        return err->code;
    for (int s = 0; s < n; s += sc->cap) {
        int nb = n - s < sc->cap ? n - s : sc->cap;
        const float *lg = eng_model_forward(&c->model, &sc->ws, b->x + (size_t)s * D, nb);
        memcpy(b->logits + (size_t)s * C, lg, (size_t)nb * C * sizeof(float));
    }
    for (int r = 0; r < n; r++) {
        const float *z = b->logits + (size_t)r * C;
        int best = 0;
        for (int k = 1; k < C; k++)
            if (z[k] > z[best]) best = k;
        b->pred[r] = best;
    }
    b->rb = rb;
    b->nrows = n;
    return 0;
}

static int targets_for(run_ctx *c, int m, const block_cache *b, int32_t *t,
                       at_err *err) {
    const job_method *jm = &c->j.methods[m];
    for (int r = 0; r < b->nrows; r++) {
        switch (jm->target) {
        case JOB_TARGET_PREDICTED: t[r] = b->pred[r]; break;
        case JOB_TARGET_CLASS: t[r] = jm->target_class; break;
        case JOB_TARGET_LABEL:
            t[r] = b->label[r];
            if (t[r] < 0 || t[r] >= c->p.n_classes)
                return at_err_set(err, AT_EUSER,
                                  "%s: /%s/labels[%lld] = %d is not a class of the model "
                                  "(0..%lld) — methods[%d] (%s) uses target: label",
                                  c->j.data_path, c->j.data_split,
                                  (long long)(c->row_start + b->rb * c->p.block_rows + r),
                                  t[r], (long long)c->p.n_classes - 1, m, jm->name);
            break;
        }
    }
    return 0;
}

/* Finished rows owned by this rank, per method, back to back in plan order. */
typedef struct {
    int n_ranges;
    int64_t *row0, *nrows;       /* (n_ranges) */
    float *scores;               /* (rows, D) */
    int32_t *target;             /* (rows) */
    float *delta, *output_diff;  /* (rows), IG only */
    int64_t filled;              /* rows so far */
} method_out;

/* The samples' own data for the rows this rank owns; its row ranges are
 * method 0's (mo[0].row0, mo[0].nrows), since the same rank owns both. */
typedef struct {
    int32_t *label, *pred;
    float *logits;
    int64_t filled;
} samples_out;

typedef struct {
    int64_t u;
    double *buf;
} stored_partial;

typedef struct {
    MPI_Request *req;
    double **buf;
    int n, cap;
    int64_t *progress_ids;   /* unit ids reported to rank 0 (non-zero ranks) */
    MPI_Request *preq;
    int np;
} outbox;

static void outbox_push(outbox *o, MPI_Request r, double *buf) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->req = at_realloc(o->req, (size_t)o->cap * sizeof *o->req, "outbox");
        o->buf = at_realloc(o->buf, (size_t)o->cap * sizeof *o->buf, "outbox");
    }
    o->req[o->n] = r;
    o->buf[o->n] = buf;
    o->n++;
}

/* Free send buffers whose sends have completed. */
static void outbox_reap(outbox *o, int wait) {
    int k = 0;
    for (int i = 0; i < o->n; i++) {
        int done = 0;
        if (wait) MPI_Wait(&o->req[i], MPI_STATUS_IGNORE), done = 1;
        else MPI_Test(&o->req[i], &done, MPI_STATUS_IGNORE);
        if (done) free(o->buf[i]);
        else { o->req[k] = o->req[i]; o->buf[k] = o->buf[i]; k++; }
    }
    o->n = k;
}

/* On a failed run: withdraw sends nobody will receive, then complete them. */
static void outbox_cancel(outbox *o, MPI_Request *preq, int np) {
    for (int i = 0; i < o->n; i++) MPI_Cancel(&o->req[i]);
    for (int i = 0; i < np; i++) MPI_Cancel(&preq[i]);
    outbox_reap(o, 1);
    MPI_Waitall(np, preq, MPI_STATUSES_IGNORE);
}

typedef struct {
    progress pr;
    int64_t reported; /* units accounted for on rank 0 */
} rank0_view;

static void account_unit(run_ctx *c, rank0_view *v, int64_t u) {
    const plan_unit *U = &c->p.units[u];
    double frac = (double)(U->c1 - U->c0) / c->p.specs[U->method].n_cols;
    progress_add(&v->pr, 1, c->p.costs[u], U->nrows * frac / c->p.n_methods);
    v->reported++;
}

/* Rank 0: take in the progress messages that have arrived. */
static void drain_progress(run_ctx *c, rank0_view *v) {
    if (c->rank != 0 || !v) return;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_PROGRESS, c->comm, &flag, &st);
        if (!flag) return;
        long long u;
        MPI_Recv(&u, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_PROGRESS, c->comm, MPI_STATUS_IGNORE);
        account_unit(c, v, (int64_t)u);
    }
}

/* Receive the partial of unit u from rank src, without spinning. */
static void recv_partial(run_ctx *c, rank0_view *v, double *buf, int n, int src,
                         int64_t u) {
    for (;;) {
        int flag = 0;
        MPI_Iprobe(src, TAG_PARTIAL, c->comm, &flag, MPI_STATUS_IGNORE);
        if (flag) break;
        drain_progress(c, v);
        nap();
    }
    MPI_Recv(buf, n + 1, MPI_DOUBLE, src, TAG_PARTIAL, c->comm, MPI_STATUS_IGNORE);
    /* Messages between two ranks arrive in send order; both sides walk the
     * plan in unit order, so this is unit u. Check it anyway. */
    AT_CHECK((int64_t)buf[n] == u);
}

typedef struct {
    double compute_s, fold_s;
    int64_t units_done;
    int64_t n_rel_over;      /* samples with |delta| > 1e-2 |f(x)-f(b)| */
    double max_rel_delta;
    int64_t correct;         /* predicted == label over owned samples */
} run_stats;

static int compute(run_ctx *c, method_out *mo, samples_out *so, uint8_t *block_hash,
                   run_stats *st, at_err *err) {
    const plan *p = &c->p;
    const int D = (int)p->n_features, C = (int)p->n_classes, BR = p->block_rows;
    const int64_t u_lo = c->sched.first[c->rank], u_hi = c->sched.first[c->rank + 1];
    mth_scratch sc;
    mth_scratch_init(&sc, &c->model, PLAN_ENGINE_BATCH);
    block_cache b = {.rb = -1};
    b.x = at_malloc((size_t)BR * D * sizeof(float), "block rows");
    b.label = at_malloc((size_t)BR * sizeof(int32_t), "block labels");
    b.logits = at_malloc((size_t)BR * C * sizeof(float), "block logits");
    b.pred = at_malloc((size_t)BR * sizeof(int32_t), "block predictions");
    int32_t *target = at_malloc((size_t)BR * sizeof(int32_t), "block targets");
    stored_partial *mine = at_calloc((size_t)(u_hi - u_lo + 1), sizeof *mine, "own partials");
    int n_mine = 0;
    outbox ob = {0};
    long long *pids = at_malloc((size_t)(u_hi - u_lo + 1) * sizeof(long long), "progress ids");
    MPI_Request *preq = at_malloc((size_t)(u_hi - u_lo + 1) * sizeof(MPI_Request), "progress requests");
    int np = 0;
    rank0_view view, *v = NULL;
    if (c->rank == 0) {
        double work = 0.0;
        for (int64_t u = 0; u < p->n_units; u++) work += p->costs[u];
        progress_init(&view.pr, p->n_units, work, (double)p->n_rows, c->j.progress_interval);
        view.reported = 0;
        v = &view;
    }

    double t0 = at_now();
    for (int64_t u = u_lo; u < u_hi && !err->code; u++) {
        const plan_unit *U = &p->units[u];
        if (load_block(c, &sc, &b, U->rb, err)) break;
        if (targets_for(c, U->method, &b, target, err)) break;
        size_t n = (size_t)U->nrows * D;
        double *partial = at_calloc(n + 1, sizeof(double), "unit partial");
        mth_run_unit(&p->specs[U->method], &c->model, &sc, b.x, c->baseline[U->method],
                     target, U->nrows, U->c0, U->c1, partial);
        partial[n] = (double)u;
        int owner = sched_static_owner(&c->sched, plan_first_unit(p, U->method, U->rb));
        if (owner == c->rank) {
            mine[n_mine].u = u;
            mine[n_mine].buf = partial;
            n_mine++;
        } else {
            MPI_Request r;
            MPI_Isend(partial, (int)n + 1, MPI_DOUBLE, owner, TAG_PARTIAL, c->comm, &r);
            outbox_push(&ob, r, partial);
            outbox_reap(&ob, 0);
        }
        st->units_done++;
        if (c->rank == 0) {
            account_unit(c, v, u);
            drain_progress(c, v);
        } else {
            pids[np] = (long long)u;
            MPI_Isend(&pids[np], 1, MPI_LONG_LONG, 0, TAG_PROGRESS, c->comm, &preq[np]);
            np++;
        }
    }
    st->compute_s = at_now() - t0;
    /* A failing rank cannot simply stop: the others wait for its partials.
     * Agree here; every rank checks before any fold. */
    int rc = agree(c, err);
    if (rc) goto done;

    /* Fold and finalize the (method, row block)s this rank owns. */
    t0 = at_now();
    double *acc = at_malloc((size_t)BR * D * sizeof(double), "fold accumulator");
    double *tmp = at_malloc(((size_t)BR * D + 1) * sizeof(double), "received partial");
    double *fb = at_malloc((size_t)C * sizeof(double), "baseline logits");
    int next_mine = 0;
    for (int m = 0; m < p->n_methods; m++) {
        const mth_spec *sp = &p->specs[m];
        int has_delta = mth_has_delta(sp);
        if (has_delta) { /* logits of the baseline, once per method */
            const float *lg = eng_model_forward(&c->model, &sc.ws, c->baseline[m], 1);
            for (int k = 0; k < C; k++) fb[k] = lg[k];
        }
        for (int64_t rb = 0; rb < p->n_rb; rb++) {
            int64_t u0 = plan_first_unit(p, m, rb);
            if (sched_static_owner(&c->sched, u0) != c->rank) continue;
            if (load_block(c, &sc, &b, rb, err) || targets_for(c, m, &b, target, err)) goto fold_failed;
            size_t n = (size_t)b.nrows * D;
            memset(acc, 0, n * sizeof(double));
            for (int cb = 0; cb < p->n_cb[m]; cb++) {
                int64_t u = u0 + cb;
                int src = sched_static_owner(&c->sched, u);
                if (src == c->rank) {
                    AT_CHECK(next_mine < n_mine && mine[next_mine].u == u);
                    mth_fold(acc, mine[next_mine].buf, n);
                    free(mine[next_mine].buf);
                    mine[next_mine].buf = NULL;
                    next_mine++;
                } else {
                    recv_partial(c, v, tmp, (int)n, src, u);
                    mth_fold(acc, tmp, n);
                }
            }
            method_out *o = &mo[m];
            float *sc_out = o->scores + (size_t)o->filled * D;
            mth_finalize(sp, acc, b.x, c->baseline[m], b.nrows, D, sc_out);
            for (int r = 0; r < b.nrows; r++) {
                o->target[o->filled + r] = target[r];
                if (!has_delta) continue;
                double s = 0.0;
                for (int d = 0; d < D; d++) s += (double)sc_out[(size_t)r * D + d];
                double diff = (double)b.logits[(size_t)r * C + target[r]] - fb[target[r]];
                double delta = s - diff;
                o->delta[o->filled + r] = (float)delta;
                o->output_diff[o->filled + r] = (float)diff;
                double rel = fabs(delta) / (fabs(diff) > 1e-12 ? fabs(diff) : 1e-12);
                if (rel > 1e-2) st->n_rel_over++;
                if (rel > st->max_rel_delta) st->max_rel_delta = rel;
            }
            o->row0[o->n_ranges] = rb * BR;
            o->nrows[o->n_ranges] = b.nrows;
            o->n_ranges++;
            o->filled += b.nrows;
            if (m == 0) { /* the samples' own data, with their digest */
                memcpy(so->label + so->filled, b.label, (size_t)b.nrows * sizeof(int32_t));
                memcpy(so->pred + so->filled, b.pred, (size_t)b.nrows * sizeof(int32_t));
                memcpy(so->logits + (size_t)so->filled * C, b.logits,
                       (size_t)b.nrows * C * sizeof(float));
                for (int r = 0; r < b.nrows; r++) st->correct += b.pred[r] == b.label[r];
                so->filled += b.nrows;
                at_sha256 h;
                at_sha256_init(&h);
                at_sha256_update(&h, b.x, n * sizeof(float));
                at_sha256_update(&h, b.label, (size_t)b.nrows * sizeof(int32_t));
                at_sha256_final(&h, block_hash + 32 * rb);
            }
        }
    }
fold_failed:
    free(acc);
    free(tmp);
    free(fb);
    st->fold_s = at_now() - t0;
    rc = agree(c, err);
    if (c->rank == 0 && !rc) {
        while (v->reported < p->n_units) {
            drain_progress(c, v);
            if (v->reported < p->n_units) nap();
        }
        progress_finish(&v->pr);
    }

done:
    if (rc) {
        outbox_cancel(&ob, preq, np);
    } else {
        outbox_reap(&ob, 1);
        MPI_Waitall(np, preq, MPI_STATUSES_IGNORE);
    }
    for (int i = 0; i < n_mine; i++) free(mine[i].buf);
    free(mine); free(ob.req); free(ob.buf); free(pids); free(preq);
    free(b.x); free(b.label); free(b.logits); free(b.pred); free(target);
    mth_scratch_free(&sc);
    return rc;
}

/* --------------------------------------------------------------- stage 5 */

static const char *feature_dim_names[2][3] = {{"feature", NULL, NULL}, {"y", "x", NULL}};

static int write_results(run_ctx *c, const char *tmp_path, method_out *mo,
                         samples_out *so, const uint8_t *block_hash, run_stats *st,
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
    char path[256], grp[200], tb[16];
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
        if (mth_has_delta(sp)) {
            snprintf(path, sizeof path, "%s/delta", grp);
            h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z,
                               "completeness error sum(scores) - (f(x) - f(baseline))", err);
            h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->delta, err);
            snprintf(path, sizeof path, "%s/output_diff", grp);
            h5_results_dataset(r, path, H5IO_F32, 1, dn, s_dims, br, z,
                               "f(x) - f(baseline) of the target logit", err);
            h5_results_write_rows(r, path, o->n_ranges, o->row0, o->nrows, o->output_diff, err);
        }
        h5_results_attr_str(r, grp, "kind", job_method_kind_name(jm->kind), err);
        h5_results_attr_str(r, grp, "target", job_target_name(jm, tb, sizeof tb), err);
        h5_results_attr_str(r, grp, "output", "logit", err);
        if (jm->kind == JOB_METHOD_SALIENCY) h5_results_attr_i64(r, grp, "abs", jm->abs_value, err);
        if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS) {
            h5_results_attr_i64(r, grp, "n_steps", jm->n_steps, err);
            h5_results_attr_str(r, grp, "quadrature", job_quadrature_name(jm->quadrature), err);
            h5_results_attr_str(r, grp, "baseline", job_baseline_name(jm->baseline), err);
            if (jm->baseline == JOB_BASELINE_CONSTANT)
                h5_results_attr_f64(r, grp, "baseline_value", jm->baseline_value, err);
            if (jm->baseline == JOB_BASELINE_MEAN)
                h5_results_attr_str(r, grp, "baseline_split", jm->baseline_split, err);
            h5_results_attr_f64v(r, grp, "alphas", sp->alpha, sp->n_cols, err);
            h5_results_attr_f64v(r, grp, "weights", sp->weight, sp->n_cols, err);
        }
    }

    /* provenance: identical values on every rank (collective attributes) */
    char data_sha[65], plan_sha[65], host[256] = "", finished[32];
    at_sha256_buf_hex(block_hash, (size_t)p->n_rb * 32, data_sha);
    {
        at_sha256 h;
        uint8_t dg[32];
        at_sha256_init(&h);
        const char *tag = "attrib-plan-v1\n";
        at_sha256_update(&h, tag, strlen(tag));
        for (int m = 0; m < j->n_methods; m++) {
            char line[512];
            const job_method *jm = &j->methods[m];
            int len = snprintf(line, sizeof line, "%s %s %s %d %s %s %.17g %s %d\n", jm->name,
                               job_method_kind_name(jm->kind), job_target_name(jm, tb, sizeof tb),
                               jm->n_steps, job_quadrature_name(jm->quadrature),
                               job_baseline_name(jm->baseline), jm->baseline_value,
                               jm->baseline_split, jm->abs_value);
            at_sha256_update(&h, line, (size_t)len);
        }
        char line[512];
        int len = snprintf(line, sizeof line, "rows %lld %lld block %d step %d seed %llu\n",
                           (long long)c->row_start, (long long)N, j->block_rows, j->step_block,
                           (unsigned long long)j->seed);
        at_sha256_update(&h, line, (size_t)len);
        at_sha256_update(&h, c->minfo.sha256, 64);
        at_sha256_update(&h, data_sha, 64);
        at_sha256_final(&h, dg);
        at_sha256_hex(dg, plan_sha);
    }
    if (c->rank == 0) gethostname(host, sizeof host - 1);
    iso_now(finished, sizeof finished);
    MPI_Bcast(host, sizeof host, MPI_CHAR, 0, c->comm);
    MPI_Bcast(finished, sizeof finished, MPI_CHAR, 0, c->comm);
    double t[2] = {st->compute_s, st->fold_s}, tmax[2];
    MPI_Allreduce(t, tmax, 2, MPI_DOUBLE, MPI_MAX, c->comm);
    double elapsed = at_now() - c->t_start;
    MPI_Bcast(&elapsed, 1, MPI_DOUBLE, 0, c->comm);
    double *units = at_malloc((size_t)c->size * sizeof(double), "units per rank");
    for (int k = 0; k < c->size; k++)
        units[k] = (double)(c->sched.first[k + 1] - c->sched.first[k]);

    h5_results_attr_str(r, "/", "format", "attrib-results", err);
    h5_results_attr_i64(r, "/", "format_version", 1, err);
    h5_results_attr_str(r, "/", "attrib_version", ATTRIB_VERSION, err);
    h5_results_attr_str(r, "/", "job_yaml", c->job_yaml, err);
    h5_results_attr_str(r, "/", "job_file", j->source_path, err);
    h5_results_attr_str(r, "/", "plan_hash", plan_sha, err);
    h5_results_attr_str(r, "/", "model_path", j->model_path, err);
    h5_results_attr_str(r, "/", "model_sha256", c->minfo.sha256, err);
    h5_results_attr_str(r, "/", "data_path", j->data_path, err);
    h5_results_attr_str(r, "/", "data_split", j->data_split, err);
    h5_results_attr_str(r, "/", "data_sha256", data_sha, err);
    h5_results_attr_i64(r, "/", "row_start", c->row_start, err);
    h5_results_attr_i64(r, "/", "row_end", c->row_start + N, err);
    h5_results_attr_i64(r, "/", "n_ranks", c->size, err);
    h5_results_attr_str(r, "/", "scheduler", job_scheduler_name(j->scheduler), err);
    h5_results_attr_f64v(r, "/", "units_per_rank", units, c->size, err);
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

static void method_out_init(method_out *o, int64_t rows, int64_t D, int64_t ranges) {
    memset(o, 0, sizeof *o);
    o->row0 = at_malloc((size_t)(ranges + 1) * sizeof(int64_t), "ranges");
    o->nrows = at_malloc((size_t)(ranges + 1) * sizeof(int64_t), "ranges");
    o->scores = at_malloc((size_t)(rows * D + 1) * sizeof(float), "scores");
    o->target = at_malloc((size_t)(rows + 1) * sizeof(int32_t), "targets");
    o->delta = at_malloc((size_t)(rows + 1) * sizeof(float), "deltas");
    o->output_diff = at_malloc((size_t)(rows + 1) * sizeof(float), "output diffs");
}

static void method_out_free(method_out *o) {
    free(o->row0); free(o->nrows); free(o->scores); free(o->target);
    free(o->delta); free(o->output_diff);
}

/* ------------------------------------------------------------- commands */

static int run_main(int argc, char **argv, int validate_only) {
    MPI_Init(NULL, NULL);
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.comm = MPI_COMM_WORLD;
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.size);
    at_log_set_rank(c.rank);
    c.t_start = at_now();
    iso_now(c.started_at, sizeof c.started_at);
    MPI_Bcast(c.started_at, sizeof c.started_at, MPI_CHAR, 0, c.comm);
    at_err err = {0};
    cli_job_args a;
    int rc = 0;
    if (cli_parse_job_args(argc, argv, !validate_only, &a, &err)) {
        if (c.rank == 0) cli_error(&err);
        MPI_Finalize();
        return AT_EUSER;
    }
    if (a.help) {
        if (c.rank == 0)
            printf(validate_only
                       ? "usage: attrib validate JOB.yaml [--set section.key=value]...\n"
                         "Checks the job file (syntax, fields, values) and opens its data and model\n"
                         "files; prints the plan. Exit 0 when valid, 2 with a message when not.\n"
                       : "usage: attrib run JOB.yaml [-o OUT.h5] [--set section.key=value]... [--dry-run]\n"
                         "Runs the job's methods on its data with its model and writes one HDF5 results\n"
                         "file (docs/format.md). Run as one process or under mpirun/srun -n N; the\n"
                         "scores are the same bytes for any N.\n"
                         "  -o OUT.h5        results file (overrides output.path)\n"
                         "  --set k=v        override a job field, e.g. --set methods.ig.n_steps=64\n"
                         "  --dry-run        print the plan (units, rows, steps, passes, output size)\n"
                         "                   and exit\n");
        MPI_Finalize();
        return 0;
    }
    eng_set_threads(1);
    if (validate_only) { /* a training job is checked as one */
        int is_train = 0;
        if (c.rank == 0) rc = train_validate(&a, &is_train, &err);
        MPI_Bcast(&is_train, 1, MPI_INT, 0, c.comm);
        MPI_Bcast(&rc, 1, MPI_INT, 0, c.comm);
        if (is_train) {
            if (rc && c.rank == 0) cli_error(&err);
            goto out;
        }
    }
    rc = prepare(&c, &a, &err);
    if (rc) goto out;
    eng_set_threads(c.j.blas_threads);
    if (validate_only || a.dry_run) {
        if (c.rank == 0) {
            if (validate_only) printf("%s: job is valid\n", a.job_path);
            plan_print(stdout, &c.p, &c.j, c.size);
        }
        goto out;
    }
    if (c.rank == 0)
        AT_INFO("run %s: %lld rows x %d method(s) = %lld units on %d rank(s)", a.job_path,
                (long long)c.n_rows, c.j.n_methods, (long long)c.p.n_units, c.size);

    /* Output buffers for the rows this rank will own. */
    const plan *p = &c.p;
    int64_t own_rows[JOB_MAX_METHODS] = {0}, own_ranges[JOB_MAX_METHODS] = {0};
    for (int m = 0; m < p->n_methods; m++)
        for (int64_t rb = 0; rb < p->n_rb; rb++)
            if (sched_static_owner(&c.sched, plan_first_unit(p, m, rb)) == c.rank) {
                own_ranges[m]++;
                own_rows[m] += p->n_rows - rb * p->block_rows < p->block_rows
                                   ? p->n_rows - rb * p->block_rows
                                   : p->block_rows;
            }
    method_out mo[JOB_MAX_METHODS];
    for (int m = 0; m < p->n_methods; m++)
        method_out_init(&mo[m], own_rows[m], p->n_features, own_ranges[m]);
    samples_out so = {0};
    so.label = at_malloc((size_t)(own_rows[0] + 1) * sizeof(int32_t), "labels");
    so.pred = at_malloc((size_t)(own_rows[0] + 1) * sizeof(int32_t), "predictions");
    so.logits = at_malloc((size_t)(own_rows[0] * p->n_classes + 1) * sizeof(float), "logits");
    uint8_t *bh = at_calloc((size_t)p->n_rb * 32 + 1, 1, "block hashes");
    uint8_t *bh_all = at_calloc((size_t)p->n_rb * 32 + 1, 1, "block hashes");
    run_stats st = {0};

    rc = compute(&c, mo, &so, bh, &st, &err);
    char tmp_path[JOB_PATH_MAX + 16];
    snprintf(tmp_path, sizeof tmp_path, "%s.partial", c.j.output_path);
    if (!rc) {
        /* Each block hash is written by its owner only: OR gives all of them. */
        MPI_Allreduce(bh, bh_all, (int)p->n_rb * 32, MPI_UINT8_T, MPI_BOR, c.comm);
        double tw = at_now();
        write_results(&c, tmp_path, mo, &so, bh_all, &st, &err);
        rc = agree(&c, &err);
        if (!rc && c.rank == 0) {
            if (fsync_path(tmp_path, 0) != 0 || rename(tmp_path, c.j.output_path) != 0) {
                at_err_set(&err, AT_EIO, "%s: cannot move results into place: %s",
                           c.j.output_path, strerror(errno));
                cli_error(&err);
                rc = AT_EIO;
            } else {
                char *dup = at_strdup(c.j.output_path, "path");
                fsync_path(dirname(dup), 1);
                free(dup);
            }
        }
        MPI_Bcast(&rc, 1, MPI_INT, 0, c.comm);
        if (!rc) {
            int64_t tot[2] = {st.n_rel_over, st.correct}, tot_all[2];
            double mx = st.max_rel_delta, mx_all;
            MPI_Reduce(tot, tot_all, 2, MPI_INT64_T, MPI_SUM, 0, c.comm);
            MPI_Reduce(&mx, &mx_all, 1, MPI_DOUBLE, MPI_MAX, 0, c.comm);
            if (c.rank == 0) {
                printf("wrote %s\n", c.j.output_path);
                printf("  %lld samples of %s split '%s' (rows %lld:%lld); model accuracy on "
                       "them %.2f%%\n",
                       (long long)c.n_rows, c.j.data_path, c.j.data_split,
                       (long long)c.row_start, (long long)(c.row_start + c.n_rows),
                       100.0 * (double)tot_all[1] / (double)c.n_rows);
                for (int m = 0; m < p->n_methods; m++) {
                    const job_method *jm = &c.j.methods[m];
                    printf("  /attributions/%s/scores  %s", jm->name, job_method_kind_name(jm->kind));
                    if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS)
                        printf(" (%d %s steps, baseline %s)", jm->n_steps,
                               job_quadrature_name(jm->quadrature), job_baseline_name(jm->baseline));
                    printf("\n");
                }
                if (mx_all > 0 || tot_all[0] > 0)
                    printf("  completeness: max |delta|/|f(x)-f(b)| = %.3g; %lld sample-method "
                           "pairs above 1e-2\n",
                           mx_all, (long long)tot_all[0]);
                printf("  %d rank(s), %.2f s total (compute %.2f s, write %.2f s)\n", c.size,
                       at_now() - c.t_start, st.compute_s, at_now() - tw);
            }
        }
    }
    if (rc && c.rank == 0) unlink(tmp_path);
    for (int m = 0; m < p->n_methods; m++) method_out_free(&mo[m]);
    free(so.label); free(so.pred); free(so.logits);
    free(bh); free(bh_all);
out:
    ctx_free(&c);
    MPI_Finalize();
    return rc;
}

int cmd_run(int argc, char **argv) { return run_main(argc, argv, 0); }
int cmd_validate(int argc, char **argv) { return run_main(argc, argv, 1); }
