/* work.c — computing the pending units and making them durable.
 *
 * Every rank runs the same loop: take the next unit (static: its own
 * contiguous range of the pending units; dynamic: chunks handed out by rank
 * 0, which computes too), check for a stop, compute the unit's float64
 * partial, keep it until run.checkpoint_interval seconds of work have piled
 * up, then write them all to one shard of its own (h5shard.h: tmp, fsync,
 * rename). A unit counts as done only once its shard has its final name.
 *
 * Messages (all small):
 *   TAG_TO0   rank r -> 0: {REPORT_UNIT, u} a unit computed (progress);
 *             {REPORT_REQUEST, 0} give me a chunk (dynamic);
 *             {REPORT_BYE, n} r has left its loop after n durable units.
 *             One tag, so rank 0 sees each rank's messages in send order.
 *   TAG_CHUNK 0 -> r: {lo, hi} pending-list indices; lo == hi: no more.
 *   TAG_STOP  any -> every other rank, at most once each: {reason}.
 * A dynamic worker asks for its next chunk as soon as it gets one, so it
 * never waits for rank 0 to finish a unit of its own. Rank 0 serves between
 * its units and, once out of work, waits with Iprobe + nanosleep (no spin).
 * At the end all ranks count the stop messages sent to each rank
 * (Allreduce) and receive the ones still in flight, so none is left over.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"
#include "pipeline.h"
#include "scheduler.h"

enum { TAG_TO0 = 21, TAG_CHUNK = 22, TAG_STOP = 23 };
enum { REPORT_UNIT = 0, REPORT_REQUEST = 1, REPORT_BYE = 2 };

/* Sends in flight and their buffers. */
typedef struct {
    MPI_Request *req;
    long long **buf;
    int n, cap;
} outbox;

static void outbox_send(outbox *o, MPI_Comm comm, int dest, int tag, long long a, long long b) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 32;
        o->req = at_realloc(o->req, (size_t)o->cap * sizeof *o->req, "outbox");
        o->buf = at_realloc(o->buf, (size_t)o->cap * sizeof *o->buf, "outbox");
    }
    long long *m = at_malloc(2 * sizeof(long long), "message");
    m[0] = a;
    m[1] = b;
    MPI_Isend(m, 2, MPI_LONG_LONG, dest, tag, comm, &o->req[o->n]);
    o->buf[o->n++] = m;
}

static void outbox_reap(outbox *o, int wait) {
    int k = 0;
    for (int i = 0; i < o->n; i++) {
        int done = 0;
        if (wait) {
            MPI_Wait(&o->req[i], MPI_STATUS_IGNORE);
            done = 1;
        } else {
            MPI_Test(&o->req[i], &done, MPI_STATUS_IGNORE);
        }
        if (done) {
            free(o->buf[i]);
        } else {
            o->req[k] = o->req[i];
            o->buf[k++] = o->buf[i];
        }
    }
    o->n = k;
}

typedef struct {
    run_ctx *c;
    work_stats *st;
    at_err *err;
    int64_t *todo, n_todo;   /* pending units, plan order */
    /* static: this rank's range of todo indices */
    int64_t s_lo, s_hi;
    /* dynamic */
    int64_t pool;            /* rank 0: next unassigned todo index */
    int64_t cur_lo, cur_hi;  /* the chunk in hand */
    int req_out;             /* worker: a chunk request awaits its reply */
    long long chunk[2];
    MPI_Request chunk_req;
    int no_more;
    /* stops */
    stop_reason stop;
    int stop_sent;
    int stop_recv;
    double last_file_check;
    /* rank 0 */
    int byes;
    progress pr;
    int show;
    /* shard in the making */
    int np, pcap;
    int64_t *pu;
    int *prows;
    double **pbuf;
    size_t pbytes;
    double last_flush;
    int seq;
    /* cost model for max_wall_time: seconds per engine row, worst seen */
    double s_per_cost, flush_s;
    outbox ob;
    int unit_log;            /* fd of ATTRIB_UNIT_LOG, or -1 */
} worker;

/* ------------------------------------------------------------- stopping */

static void set_stop(worker *w, stop_reason r) {
    if (r > w->stop) w->stop = r;
    if (w->stop_sent) return;
    w->stop_sent = 1;
    for (int k = 0; k < w->c->size; k++)
        if (k != w->c->rank) outbox_send(&w->ob, w->c->comm, k, TAG_STOP, (long long)r, 0);
}

static void recv_stops(worker *w) {
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_STOP, w->c->comm, &flag, &s);
        if (!flag) return;
        long long m[2];
        MPI_Recv(m, 2, MPI_LONG_LONG, s.MPI_SOURCE, TAG_STOP, w->c->comm, MPI_STATUS_IGNORE);
        w->stop_recv++;
        if ((stop_reason)m[0] > w->stop) w->stop = (stop_reason)m[0];
    }
}

static void check_stops(worker *w) {
    run_ctx *c = w->c;
    if (stop_signal_received()) set_stop(w, STOP_SIGNAL);
    if (c->rank == 0 && !w->stop_sent) {
        double now = at_now();
        if (now - w->last_file_check >= 1.0) {
            w->last_file_check = now;
            if (access(c->stop_path, F_OK) == 0) set_stop(w, STOP_FILE);
        }
    }
    recv_stops(w);
}

/* ------------------------------------------------------- rank 0 service */

static void account(worker *w, int64_t u) {
    const plan *p = &w->c->p;
    const plan_unit *U = &p->units[u];
    double frac = (double)(U->c1 - U->c0) / p->specs[U->method].n_cols;
    progress_add(&w->pr, 1, p->costs[u], U->nrows * frac / p->n_methods);
}

static void take_chunk(worker *w, int64_t *lo, int64_t *hi) {
    int64_t n = w->stop ? 0 : sched_dynamic_chunk(w->n_todo - w->pool, w->c->size);
    *lo = w->pool;
    *hi = w->pool + n;
    w->pool += n;
}

/* Rank 0: take in reports, answer chunk requests. */
static void serve(worker *w) {
    run_ctx *c = w->c;
    if (c->rank != 0) return;
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_TO0, c->comm, &flag, &s);
        if (!flag) return;
        long long m[2];
        MPI_Recv(m, 2, MPI_LONG_LONG, s.MPI_SOURCE, TAG_TO0, c->comm, MPI_STATUS_IGNORE);
        if (m[0] == REPORT_UNIT) {
            account(w, (int64_t)m[1]);
        } else if (m[0] == REPORT_REQUEST) {
            int64_t lo, hi;
            take_chunk(w, &lo, &hi);
            long long r[2] = {lo, hi};
            MPI_Send(r, 2, MPI_LONG_LONG, s.MPI_SOURCE, TAG_CHUNK, c->comm);
        } else {
            w->byes++;
        }
    }
}

/* ------------------------------------------------------------ next unit */

static void request_chunk(worker *w) {
    run_ctx *c = w->c;
    outbox_send(&w->ob, c->comm, 0, TAG_TO0, REPORT_REQUEST, 0);
    MPI_Irecv(w->chunk, 2, MPI_LONG_LONG, 0, TAG_CHUNK, c->comm, &w->chunk_req);
    w->req_out = 1;
}

/* Wait for the reply to the outstanding request; 1 when it is a chunk. */
static int await_chunk(worker *w) {
    for (;;) {
        int done = 0;
        MPI_Test(&w->chunk_req, &done, MPI_STATUS_IGNORE);
        if (done) break;
        recv_stops(w);
        outbox_reap(&w->ob, 0);
        run_nap();
    }
    w->req_out = 0;
    if (w->chunk[0] >= w->chunk[1]) {
        w->no_more = 1;
        return 0;
    }
    w->cur_lo = w->chunk[0];
    w->cur_hi = w->chunk[1];
    return 1;
}

/* The next todo index to compute, or -1. */
static int64_t next_index(worker *w) {
    run_ctx *c = w->c;
    if (c->j.scheduler == JOB_SCHED_STATIC) return w->s_lo < w->s_hi ? w->s_lo++ : -1;
    if (w->cur_lo < w->cur_hi) return w->cur_lo++;
    if (c->rank == 0) {
        take_chunk(w, &w->cur_lo, &w->cur_hi);
        return w->cur_lo < w->cur_hi ? w->cur_lo++ : -1;
    }
    if (w->no_more || !w->req_out) return -1;
    if (!await_chunk(w)) return -1;
    request_chunk(w); /* ask for the next one while this one runs */
    return w->cur_lo++;
}

/* --------------------------------------------------------------- shards */

static int flush(worker *w) {
    if (w->np == 0) return 0;
    run_ctx *c = w->c;
    char path[JOB_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/a%03d-r%05d-%06d.h5", c->shard_dir, c->attempt, c->rank,
             w->seq++);
    double t0 = at_now();
    int rc = h5_shard_write(path, c->plan_hash, w->np, w->pu, w->prows, c->p.width,
                            w->pbuf, w->err);
    double dt = at_now() - t0;
    w->st->shard_s += dt;
    if (dt > w->flush_s) w->flush_s = dt;
    if (rc == 0) {
        w->st->units_computed += w->np;
        w->st->shards_written++;
    }
    for (int i = 0; i < w->np; i++) free(w->pbuf[i]);
    w->np = 0;
    w->pbytes = 0;
    w->last_flush = at_now();
    return rc;
}

static void keep(worker *w, int64_t u, int rows, double *buf) {
    if (w->np == w->pcap) {
        w->pcap = w->pcap ? 2 * w->pcap : 16;
        w->pu = at_realloc(w->pu, (size_t)w->pcap * sizeof *w->pu, "pending units");
        w->prows = at_realloc(w->prows, (size_t)w->pcap * sizeof *w->prows, "pending units");
        w->pbuf = at_realloc(w->pbuf, (size_t)w->pcap * sizeof *w->pbuf, "pending units");
    }
    w->pu[w->np] = u;
    w->prows[w->np] = rows;
    w->pbuf[w->np] = buf;
    w->np++;
    w->pbytes += (size_t)rows * (size_t)w->c->p.width * sizeof(double);
}

/* ----------------------------------------------------------------- loop */

#define SHARD_MAX_BYTES ((size_t)256 << 20)

int work_run(run_ctx *c, work_stats *st, at_err *err) {
    const plan *p = &c->p;
    const int W = p->width;
    worker w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.st = st;
    w.err = err;
    w.unit_log = -1;
    const char *log_path = getenv("ATTRIB_UNIT_LOG");
    if (log_path && *log_path) w.unit_log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

    w.todo = at_malloc((size_t)(p->n_units + 1) * sizeof(int64_t), "pending units");
    for (int64_t u = 0; u < p->n_units; u++)
        if (!c->done[u]) w.todo[w.n_todo++] = u;
    sched_static sched = {0};
    if (c->j.scheduler == JOB_SCHED_STATIC) {
        double *cost = at_malloc((size_t)(w.n_todo + 1) * sizeof(double), "pending costs");
        for (int64_t i = 0; i < w.n_todo; i++) cost[i] = p->costs[w.todo[i]];
        sched_static_build(&sched, cost, w.n_todo, c->size);
        w.s_lo = sched.first[c->rank];
        w.s_hi = sched.first[c->rank + 1];
        free(cost);
    } else if (c->rank != 0) {
        request_chunk(&w);
    }
    if (c->rank == 0) {
        double work = 0, done_work = 0;
        for (int64_t u = 0; u < p->n_units; u++) {
            work += p->costs[u];
            if (c->done[u]) done_work += p->costs[u];
        }
        progress_init(&w.pr, p->n_units, work, (double)p->n_rows, c->j.progress_interval);
        progress_base(&w.pr, c->n_done_before, done_work);
    }

    mth_scratch sc;
    mth_scratch_init(&sc, &c->model, plan_engine_batch(&c->model));
    block_cache b;
    block_cache_init(&b, p);
    int32_t *target = at_malloc((size_t)p->block_rows * sizeof(int32_t), "block targets");
    w.last_flush = at_now();
    double t0 = at_now();

    for (;;) {
        check_stops(&w);
        serve(&w);
        if (w.stop) break;
        int64_t i = next_index(&w);
        if (i < 0) break;
        int64_t u = w.todo[i];
        const plan_unit *U = &p->units[u];
        if (c->j.max_wall_time > 0) { /* will this unit and a shard still fit? */
            double left = c->j.max_wall_time - (at_now() - c->t_start);
            if (p->costs[u] * w.s_per_cost + 2.0 * w.flush_s + 1.0 > left) {
                set_stop(&w, STOP_WALL_TIME);
                break;
            }
        }
        double tu = at_now();
        if (block_load(c, &sc, &b, U->rb, err) || block_targets(c, U->method, &b, target, err)) {
            set_stop(&w, STOP_ERROR);
            break;
        }
        /* the unit's (nrows, width) partial, in a buffer of the shard's row
         * width (p->width >= every method's width; the rest stays 0) */
        double *partial = at_calloc((size_t)U->nrows * W + 1, sizeof(double), "unit partial");
        mth_rows rows = {.x = b.x, .baseline = c->baseline[U->method], .target = target,
                         .R = U->nrows, .row0 = U->row0, .refs = c->refs[U->method],
                         .n_refs = c->n_refs[U->method]};
        mth_run_unit(&p->specs[U->method], &c->model, &sc, &rows, U->c0, U->c1, partial);
        double spc = (at_now() - tu) / p->costs[u];
        if (spc > w.s_per_cost) w.s_per_cost = spc;
        at_fault("unit");
        if (w.unit_log >= 0 && write(w.unit_log, "u\n", 2) != 2) {
            /* a test hook only; nothing to do */
        }
        keep(&w, u, U->nrows, partial);
        if (c->rank == 0)
            account(&w, u);
        else
            outbox_send(&w.ob, c->comm, 0, TAG_TO0, REPORT_UNIT, (long long)u);
        outbox_reap(&w.ob, 0);
        if (at_now() - w.last_flush >= c->j.checkpoint_interval || w.pbytes >= SHARD_MAX_BYTES) {
            if (flush(&w)) {
                set_stop(&w, STOP_ERROR);
                break;
            }
        }
    }
    st->compute_s = at_now() - t0;
    /* What this rank finished becomes durable, whatever ended the loop. */
    if (flush(&w) && !w.stop) set_stop(&w, STOP_ERROR);

    if (c->rank != 0) {
        if (w.req_out) await_chunk(&w); /* its reply is ignored */
        outbox_send(&w.ob, c->comm, 0, TAG_TO0, REPORT_BYE, (long long)st->units_computed);
    } else {
        while (w.byes < c->size - 1) {
            check_stops(&w);
            serve(&w);
            if (w.byes < c->size - 1) run_nap();
        }
    }
    outbox_reap(&w.ob, 1);

    /* Receive the stop messages still in flight: every rank learns how many
     * were sent to it. */
    int *sent = at_calloc((size_t)c->size * 2, sizeof(int), "stop counts");
    if (w.stop_sent)
        for (int k = 0; k < c->size; k++) sent[k] = k != c->rank;
    MPI_Allreduce(MPI_IN_PLACE, sent, c->size, MPI_INT, MPI_SUM, c->comm);
    for (int k = w.stop_recv; k < sent[c->rank]; k++) {
        long long m[2];
        MPI_Status s;
        MPI_Recv(m, 2, MPI_LONG_LONG, MPI_ANY_SOURCE, TAG_STOP, c->comm, &s);
        if ((stop_reason)m[0] > w.stop) w.stop = (stop_reason)m[0];
    }
    free(sent);
    int reason = (int)w.stop;
    MPI_Allreduce(MPI_IN_PLACE, &reason, 1, MPI_INT, MPI_MAX, c->comm);
    st->stop = (stop_reason)reason;
    long long mine = st->units_computed, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_LONG_LONG, MPI_SUM, c->comm);
    st->units_done_all = c->n_done_before + all;
    if (c->rank == 0 && st->stop != STOP_ERROR) progress_finish(&w.pr);

    if (w.unit_log >= 0) close(w.unit_log);
    free(w.todo);
    free(w.pu);
    free(w.prows);
    free(w.pbuf);
    free(w.ob.req);
    free(w.ob.buf);
    free(target);
    block_cache_free(&b);
    mth_scratch_free(&sc);
    sched_static_free(&sched);
    return run_agree(c, err);
}
