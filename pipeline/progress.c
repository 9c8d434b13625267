/* progress.c — units done / total, rows/s and ETA on rank 0. See pipeline.h. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pipeline.h"

void progress_init(progress *pr, int64_t units_total, double work_total,
                   double rows_total, double interval) {
    memset(pr, 0, sizeof *pr);
    pr->units_total = units_total;
    pr->work_total = work_total > 0 ? work_total : 1.0;
    pr->rows_total = rows_total;
    pr->t0 = pr->last = at_now();
    pr->interval = interval > 0 ? interval : 5.0;
    pr->tty = isatty(fileno(stderr));
}

static void fmt_eta(double s, char *out, size_t cap) {
    if (s < 0 || s > 1e8) { snprintf(out, cap, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, cap, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(progress *pr, int final) {
    double now = at_now(), el = now - pr->t0;
    double frac = pr->work_done / pr->work_total;
    double rate = el > 0 ? pr->rows_done / el : 0.0;
    double todo = pr->work_total - pr->work_base, now_done = pr->work_done - pr->work_base;
    double eta = now_done > 0 ? el * (todo - now_done) / now_done : -1.0;
    char es[32], els[32];
    fmt_eta(final ? 0.0 : eta, es, sizeof es);
    fmt_eta(el, els, sizeof els);
    if (pr->tty) {
        char bar[31];
        int fill = (int)(frac * 30.0 + 0.5);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3.0f%% units %lld/%lld  %.1f rows/s  elapsed %s  ETA %s   ",
                bar, 100.0 * frac, (long long)pr->units_done, (long long)pr->units_total,
                rate, els, es);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "progress: units %lld/%lld (%.1f%%), %.1f rows/s, elapsed %s, ETA %s\n",
                (long long)pr->units_done, (long long)pr->units_total, 100.0 * frac, rate,
                els, es);
    }
    fflush(stderr);
    pr->last = now;
    pr->printed = 1;
}

void progress_base(progress *pr, int64_t units, double work) {
    pr->units_done = units;
    pr->work_done = pr->work_base = work;
}

void progress_add(progress *pr, int64_t units, double work, double rows) {
    pr->units_done += units;
    pr->work_done += work;
    pr->rows_done += rows;
    double now = at_now();
    double every = pr->tty ? 0.2 : pr->interval;
    if (now - pr->last >= every) draw(pr, 0);
}

void progress_finish(progress *pr) { draw(pr, 1); }
