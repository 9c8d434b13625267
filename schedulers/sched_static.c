/* sched_static.c — contiguous, cost-weighted blocks. See scheduler.h. */
#include <stdlib.h>

#include "core.h"
#include "scheduler.h"

void sched_static_build(sched_static *s, const double *costs, int64_t n_units,
                        int n_ranks) {
    AT_CHECK(n_ranks >= 1 && n_units >= 0);
    s->n_ranks = n_ranks;
    s->n_units = n_units;
    s->first = at_malloc((size_t)(n_ranks + 1) * sizeof(int64_t), "static schedule");
    /* Prefix sums in float64 in unit order: identical on every rank. */
    double total = 0.0;
    for (int64_t u = 0; u < n_units; u++) {
        AT_CHECK(costs[u] > 0.0);
        total += costs[u];
    }
    int64_t u = 0;
    double prefix = 0.0;
    s->first[0] = 0;
    for (int r = 1; r < n_ranks; r++) {
        double goal = total * (double)r / (double)n_ranks;
        /* Advance while taking the next unit keeps us closer to the goal. */
        while (u < n_units && prefix + 0.5 * costs[u] < goal) {
            prefix += costs[u];
            u++;
        }
        s->first[r] = u;
    }
    s->first[n_ranks] = n_units;
}

void sched_static_free(sched_static *s) {
    free(s->first);
    s->first = NULL;
}

int sched_static_owner(const sched_static *s, int64_t u) {
    AT_CHECK(u >= 0 && u < s->n_units);
    /* binary search for the last r with first[r] <= u */
    int lo = 0, hi = s->n_ranks - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->first[mid] <= u) lo = mid; else hi = mid - 1;
    }
    return lo;
}
