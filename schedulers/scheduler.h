/* scheduler.h — who runs which work unit.
 *
 * Model of use
 * ------------
 * A scheduler is a pure function of (unit costs, rank count): no MPI, no
 * I/O, so it is unit-tested without MPI and every rank computes the same
 * answer on its own. Units are numbered 0..n_units-1 in plan order; the
 * fold combines partials in that order whatever the assignment, so the
 * scheduler changes speed, never results.
 *
 * static: each rank gets one contiguous range of unit ids; the ranges split
 * the cumulative cost as evenly as contiguity allows (rank r's range starts
 * at the first unit whose cost prefix reaches r/n of the total). Ranks may
 * get empty ranges when there are more ranks than units.
 */
#ifndef ATTRIB_SCHEDULER_H
#define ATTRIB_SCHEDULER_H

#include <stdint.h>

typedef struct {
    int n_ranks;
    int64_t n_units;
    int64_t *first; /* (n_ranks + 1): rank r runs units [first[r], first[r+1]) */
} sched_static;

/* costs (n_units) > 0. Allocates s->first; free with sched_static_free. */
void sched_static_build(sched_static *s, const double *costs, int64_t n_units,
                        int n_ranks);
void sched_static_free(sched_static *s);
/* The rank that runs unit u. */
int sched_static_owner(const sched_static *s, int64_t u);

/* Size of the next dynamic chunk when `remaining` units are unassigned. */
int64_t sched_dynamic_chunk(int64_t remaining, int n_ranks);

#endif
