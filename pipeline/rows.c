/* rows.c — what every stage of a run shares: row blocks, targets, agreeing
 * on errors, waiting, and stop signals. See pipeline.h. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"

void run_iso_now(char *out, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void run_nap(void) {
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
}

int run_agree(run_ctx *c, const at_err *err) {
    int code = err->code, worst = 0;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, c->comm);
    if (worst == 0) return 0;
    int mine = code ? c->rank : c->size, first = 0;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    if (first == c->rank) cli_error(err);
    return worst;
}

void block_cache_init(block_cache *b, const plan *p) {
    const size_t BR = (size_t)p->block_rows, D = (size_t)p->n_features,
                 C = (size_t)p->n_classes;
    memset(b, 0, sizeof *b);
    b->rb = -1;
    b->x = at_malloc(BR * D * sizeof(float), "block rows");
    b->label = at_malloc(BR * sizeof(int32_t), "block labels");
    b->logits = at_malloc(BR * C * sizeof(float), "block logits");
    b->pred = at_malloc(BR * sizeof(int32_t), "block predictions");
}

void block_cache_free(block_cache *b) {
    free(b->x);
    free(b->label);
    free(b->logits);
    free(b->pred);
    memset(b, 0, sizeof *b);
}

int block_load(run_ctx *c, mth_scratch *sc, block_cache *b, int64_t rb, at_err *err) {
    if (b->rb == rb) return 0;
    const plan *p = &c->p;
    const int D = (int)p->n_features, C = (int)p->n_classes;
    int64_t row0 = rb * p->block_rows;
    int n = (int)(p->n_rows - row0 < p->block_rows ? p->n_rows - row0 : p->block_rows);
    b->rb = -1;
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

int run_label_error(run_ctx *c, int m, int64_t row, int32_t label, at_err *err) {
    return at_err_set(err, AT_EUSER,
                      "%s: /%s/labels[%lld] = %d is not a class of the model (0..%lld) — "
                      "methods[%d] (%s) uses target: label",
                      c->j.data_path, c->j.data_split, (long long)row, label,
                      (long long)c->p.n_classes - 1, m, c->j.methods[m].name);
}

int block_targets(run_ctx *c, int m, const block_cache *b, int32_t *t, at_err *err) {
    const job_method *jm = &c->j.methods[m];
    for (int r = 0; r < b->nrows; r++) {
        switch (jm->target) {
        case JOB_TARGET_PREDICTED: t[r] = b->pred[r]; break;
        case JOB_TARGET_CLASS: t[r] = jm->target_class; break;
        case JOB_TARGET_LABEL:
            t[r] = b->label[r];
            if (t[r] < 0 || t[r] >= c->p.n_classes)
                return run_label_error(c, m, c->row_start + b->rb * c->p.block_rows + r, t[r],
                                       err);
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- stops */

static volatile sig_atomic_t g_signal;

static void on_stop_signal(int sig) {
    if (g_signal && sig == SIGINT) {
        /* Ctrl-C twice: stop now (the shards already written are safe). A
         * repeated SIGTERM is not a reason: SLURM sends it twice within
         * milliseconds at a time limit, and follows with SIGKILL anyway. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    if (!g_signal) g_signal = sig;
}

void stop_install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int stop_signal_received(void) { return (int)g_signal; }

const char *stop_reason_text(stop_reason r) {
    switch (r) {
    case STOP_NONE: return "not stopped";
    case STOP_WALL_TIME: return "run.max_wall_time reached";
    case STOP_FILE: return "the stop file appeared";
    case STOP_SIGNAL: return "a stop signal (SIGTERM, SIGUSR1 or SIGINT) arrived";
    case STOP_ERROR: return "a rank failed";
    }
    return "?";
}
