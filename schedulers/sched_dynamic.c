/* sched_dynamic.c — the guided chunk rule. See scheduler.h. */
#include "core.h"
#include "scheduler.h"

int64_t sched_dynamic_chunk(int64_t remaining, int n_ranks) {
    AT_CHECK(n_ranks >= 1 && remaining >= 0);
    if (remaining == 0) return 0;
    int64_t per = 2 * (int64_t)n_ranks;
    int64_t c = (remaining + per - 1) / per;
    return c < 1 ? 1 : c;
}
