/* test_core.c — Philox4x32-10 and SHA-256 known-answer vectors, the
 * counter RNG's purity, and the static scheduler's invariants. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "scheduler.h"

#include "check.h"

static void test_philox(void) {
    /* Known-answer vectors of Random123's philox4x32_10. */
    uint32_t o[4];
    at_philox(0, 0, 0, o);
    EXPECT(o[0] == 0x6627e8d5u && o[1] == 0xe169c58du && o[2] == 0xbc57ac4cu && o[3] == 0x9b00dbd8u,
           "philox zero vector: %08x %08x %08x %08x", o[0], o[1], o[2], o[3]);
    at_philox(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull, o);
    EXPECT(o[0] == 0x408f276du && o[1] == 0x41c83b0eu && o[2] == 0xa20bc7c6u && o[3] == 0x6d5451fdu,
           "philox ones vector: %08x %08x %08x %08x", o[0], o[1], o[2], o[3]);
    at_philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, o);
    EXPECT(o[0] == 0xd16cfe09u && o[1] == 0x94fdccebu && o[2] == 0x5001e420u && o[3] == 0x24126ea1u,
           "philox pi vector: %08x %08x %08x %08x", o[0], o[1], o[2], o[3]);
}

static void test_rng(void) {
    /* purity: same arguments, same value, in any order */
    float a = at_rng_uniform(1, 2, 3, 4), b = at_rng_uniform(1, 2, 3, 5);
    EXPECT(at_rng_uniform(1, 2, 3, 4) == a && a != b, "uniform purity");
    /* moments */
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = at_rng_uniform_f64(9, 1, 0, (uint64_t)i);
        double z = at_rng_normal(9, 2, 0, (uint64_t)i);
        EXPECT(u >= 0.0 && u < 1.0, "uniform range");
        s += u; s2 += u * u; n1 += z; n2 += z * z;
    }
    EXPECT(fabs(s / n - 0.5) < 0.005 && fabs(s2 / n - 1.0 / 3) < 0.005, "uniform moments");
    EXPECT(fabs(n1 / n) < 0.01 && fabs(n2 / n - 1.0) < 0.02, "normal moments %g %g", n1 / n, n2 / n);
    /* permutation: a permutation, and a pure function of (seed, stream) */
    uint32_t p[1000], q[1000];
    int seen[1000] = {0};
    at_rng_permutation(p, 1000, 4, 8);
    at_rng_permutation(q, 1000, 4, 8);
    for (int i = 0; i < 1000; i++) seen[p[i]]++;
    int ok = 1;
    for (int i = 0; i < 1000; i++) ok &= seen[i] == 1;
    EXPECT(ok, "permutation covers 0..n-1 once");
    EXPECT(memcmp(p, q, sizeof p) == 0, "permutation purity");
    at_rng_permutation(q, 1000, 4, 9);
    EXPECT(memcmp(p, q, sizeof p) != 0, "streams differ");
}

static void test_sha256(void) {
    char hex[65];
    at_sha256_buf_hex("abc", 3, hex);
    EXPECT(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
           "sha256(abc) = %s", hex);
    at_sha256_buf_hex("", 0, hex);
    EXPECT(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
           "sha256('') = %s", hex);
    /* incremental == one shot, over a block boundary */
    char msg[200];
    for (int i = 0; i < 200; i++) msg[i] = (char)(i * 7);
    at_sha256 s;
    uint8_t d[32];
    at_sha256_init(&s);
    at_sha256_update(&s, msg, 63);
    at_sha256_update(&s, msg + 63, 2);
    at_sha256_update(&s, msg + 65, 135);
    at_sha256_final(&s, d);
    char h1[65], h2[65];
    at_sha256_hex(d, h1);
    at_sha256_buf_hex(msg, 200, h2);
    EXPECT(strcmp(h1, h2) == 0, "incremental sha256");
    /* 1,000,000 x 'a' */
    at_sha256_init(&s);
    char as[1000];
    memset(as, 'a', sizeof as);
    for (int i = 0; i < 1000; i++) at_sha256_update(&s, as, 1000);
    at_sha256_final(&s, d);
    at_sha256_hex(d, h1);
    EXPECT(strcmp(h1, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0,
           "sha256(a x 1e6) = %s", h1);
}

static void test_static_scheduler(void) {
    for (int64_t n_units = 0; n_units <= 40; n_units += 3)
        for (int ranks = 1; ranks <= 9; ranks++) {
            double *cost = malloc(sizeof(double) * (size_t)(n_units + 1));
            for (int64_t u = 0; u < n_units; u++) cost[u] = 1.0 + (double)(u % 5);
            sched_static s;
            sched_static_build(&s, cost, n_units, ranks);
            EXPECT(s.first[0] == 0 && s.first[ranks] == n_units, "ranges cover all units");
            for (int r = 0; r < ranks; r++) EXPECT(s.first[r] <= s.first[r + 1], "ranges ordered");
            for (int64_t u = 0; u < n_units; u++) {
                int o = sched_static_owner(&s, u);
                EXPECT(s.first[o] <= u && u < s.first[o + 1], "owner of unit %lld", (long long)u);
            }
            /* balance: no rank gets more than its share plus one unit */
            double total = 0;
            for (int64_t u = 0; u < n_units; u++) total += cost[u];
            for (int r = 0; r < ranks; r++) {
                double c = 0;
                for (int64_t u = s.first[r]; u < s.first[r + 1]; u++) c += cost[u];
                EXPECT(c <= total / ranks + 5.0 + 1e-9, "rank %d of %d has cost %g of %g", r, ranks, c, total);
            }
            sched_static_free(&s);
            free(cost);
        }
}

/* Guided chunks: every unit handed out exactly once, chunks never grow, the
 * last 2n chunks are single units, and the count stays logarithmic. */
static void test_dynamic_chunks(void) {
    for (int ranks = 1; ranks <= 9; ranks++)
        for (int64_t n = 0; n <= 5000; n = n * 3 + 1) {
            int64_t left = n, prev = n + 1, chunks = 0;
            while (left > 0) {
                int64_t c = sched_dynamic_chunk(left, ranks);
                EXPECT(c >= 1 && c <= left, "chunk %lld of %lld left", (long long)c, (long long)left);
                EXPECT(c <= prev, "chunks shrink (%lld after %lld)", (long long)c, (long long)prev);
                EXPECT(c <= (left + 2 * ranks - 1) / (2 * ranks), "chunk at most remaining/2n");
                if (left <= 2 * ranks) EXPECT(c == 1, "single units at the end");
                prev = c;
                left -= c;
                chunks++;
            }
            EXPECT(left == 0, "all units handed out");
            EXPECT(chunks <= 2 * ranks * (8 + 2 * 13), "%lld chunks for %lld units", (long long)chunks, (long long)n);
        }
    EXPECT(sched_dynamic_chunk(0, 4) == 0, "nothing left, empty chunk");
}

int main(void) {
    test_philox();
    test_rng();
    test_sha256();
    test_static_scheduler();
    test_dynamic_chunks();
    return check_report("test_core");
}
