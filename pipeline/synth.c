/* synth.c — `attrib import synthetic-tokens`: a sequence-classification
 * task whose relevant tokens are known, for testing attributions of
 * transformers.
 *
 * The task. Sequences of T tokens over a vocabulary of V ids. Ids 0..3 are
 * the markers A, B, C, D; ids 4..V-1 are noise. Every sequence holds
 * exactly two markers, two different ones (an ordered pair of the 12),
 * at two distinct random positions p < q, and noise (uniform over
 * 4..V-1) everywhere else. The class says whether the two markers appear
 * in ascending order of their ids:
 *   0 "descending" (the marker at p has the larger id, e.g. C ... A)
 *   1 "ascending"  (the marker at p has the smaller id, e.g. A ... C)
 * Neither the markers present nor any sum of per-token, per-position
 * features decides it (A first means ascending, but C first may go either
 * way): a model needs positions AND tokens that look at each other. Measured
 * with jobs/train_transformer.yaml: the two-block transformer reaches
 * ~100%; without pos_embedding it stays at chance (50%); with the attention
 * layers replaced by linear ones (positions kept) it stays well below.
 * Only the two marker positions decide the label: they are the ground
 * truth, /<split>/relevant (N, T) uint8 = 1 there, 0 elsewhere.
 *
 * Everything comes from the counter RNG: row r of split s (0 train, 1
 * test) uses stream AT_STREAM_SYNTH and counter a = s * 2^40 + r, with
 * b = 0 and 1 for the first and second marker, 2 and 3 for the positions,
 * 4 + t for the noise at position t. Same seed, same bytes; the test rows are different draws
 * from the train rows.
 *
 * Token ids are stored as float32 numbers in /<split>/images (N, T): the
 * engine reads ids as numbers and the first layer is an embedding.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5train.h"
#include "pipeline.h"

#define SYNTH_MARKERS 4
#define SYNTH_MAX_ROWS 100000000LL
#define SYNTH_MAX_LEN 4096LL
#define SYNTH_MAX_VOCAB 16777216LL /* ids stay exact in float32 */


static const char *const synth_classes[2] = {"descending", "ascending"};

/* One split of n rows: x (n, T) ids as floats, y (n), rel (n, T). */
static void synth_split(float *x, int32_t *y, uint8_t *rel, int64_t n, int T, int V, uint64_t seed,
                        int split) {
    for (int64_t r = 0; r < n; r++) {
        const uint64_t a = ((uint64_t)split << 40) + (uint64_t)r;
        float *xr = x + (size_t)r * T;
        uint8_t *mr = rel + (size_t)r * T;
        const int first = (int)at_rng_below(SYNTH_MARKERS, seed, AT_STREAM_SYNTH, a, 0);
        int second = (int)at_rng_below(SYNTH_MARKERS - 1, seed, AT_STREAM_SYNTH, a, 1);
        if (second >= first) second++;
        int i = (int)at_rng_below((uint64_t)T, seed, AT_STREAM_SYNTH, a, 2);
        int j = (int)at_rng_below((uint64_t)T - 1, seed, AT_STREAM_SYNTH, a, 3);
        if (j >= i) j++;
        const int p = i < j ? i : j, q = i < j ? j : i;
        for (int t = 0; t < T; t++) {
            xr[t] = (float)(SYNTH_MARKERS + at_rng_below((uint64_t)(V - SYNTH_MARKERS), seed,
                                                         AT_STREAM_SYNTH, a, 4 + (uint64_t)t));
            mr[t] = 0;
        }
        xr[p] = (float)first;
        xr[q] = (float)second;
        mr[p] = mr[q] = 1;
        y[r] = first < second;
    }
}

/* An integer option value in [lo, hi]; AT_EUSER naming the option. */
static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out,
                     at_err *err) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return at_err_set(err, AT_EUSER,
                          "import synthetic-tokens: %s: expected an integer in %lld..%lld, "
                          "got '%s'",
                          opt, lo, hi, s ? s : "(nothing)");
    *out = v;
    return 0;
}

static int parse_seed(const char *s, uint64_t *out, at_err *err) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && *s != '-' ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *s == '-' || *end || errno)
        return at_err_set(err, AT_EUSER,
                          "import synthetic-tokens: --seed: expected an integer in "
                          "0..18446744073709551615, got '%s'",
                          s ? s : "(nothing)");
    *out = v;
    return 0;
}

int cmd_import_synthetic(int argc, char **argv) {
    const char *out = NULL;
    long long n_train = 20000, n_test = 2000, T = 16, V = 32;
    uint64_t seed = 1;
    at_err err = {0};
    for (int i = 0; i < argc && !err.code; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: attrib import synthetic-tokens --out D.h5 [--n-train 20000]\n"
                   "         [--n-test 2000] [--seq-len 16] [--vocab 32] [--seed 1]\n"
                   "A sequence-classification task with known relevant tokens. Ids 0..3 are\n"
                   "the markers A, B, C, D, the others noise; each sequence holds two\n"
                   "different markers at two random positions, and the class is whether\n"
                   "their ids ascend in reading order (1 ascending, 0 descending).\n"
                   "Writes /train and /test: images (N, seq-len) float32 token ids, labels,\n"
                   "and relevant (N, seq-len) uint8 = 1 at the two marker positions.\n"
                   "Same seed, same bytes. See jobs/train_transformer.yaml.\n");
            return 0;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!v) at_err_set(&err, AT_EUSER, "import synthetic-tokens: %s needs a path", a);
            out = v;
            i++;
        } else if (!strcmp(a, "--n-train")) {
            parse_int(a, v, 1, SYNTH_MAX_ROWS, &n_train, &err);
            i++;
        } else if (!strcmp(a, "--n-test")) {
            parse_int(a, v, 0, SYNTH_MAX_ROWS, &n_test, &err);
            i++;
        } else if (!strcmp(a, "--seq-len")) {
            parse_int(a, v, 2, SYNTH_MAX_LEN, &T, &err);
            i++;
        } else if (!strcmp(a, "--vocab")) {
            parse_int(a, v, SYNTH_MARKERS + 1, SYNTH_MAX_VOCAB, &V, &err);
            i++;
        } else if (!strcmp(a, "--seed")) {
            parse_seed(v, &seed, &err);
            i++;
        } else {
            at_err_set(&err, AT_EUSER,
                       "import synthetic-tokens: unexpected argument '%s' "
                       "(see attrib import synthetic-tokens --help)",
                       a);
        }
    }
    if (!err.code && !out)
        at_err_set(&err, AT_EUSER, "import synthetic-tokens: --out D.h5 is required");
    if (!err.code && (n_train + n_test) * T > (long long)1 << 32)
        at_err_set(&err, AT_EUSER,
                   "import synthetic-tokens: --n-train + --n-test times "
                   "--seq-len is %lld tokens; at most 2^32 are supported",
                   (n_train + n_test) * T);
    if (err.code) {
        cli_error(&err);
        return err.code;
    }
    const long long n[2] = {n_train, n_test};
    float *x[2];
    int32_t *y[2];
    uint8_t *rel[2];
    h5_split_extra extra[2];
    h5_split_data splits[2];
    const char *names[2] = {"train", "test"};
    int n_splits = 0;
    for (int s = 0; s < 2; s++) {
        size_t rows = n[s] ? (size_t)n[s] : 1;
        x[s] = at_malloc(rows * (size_t)T * sizeof(float), "synthetic tokens");
        y[s] = at_malloc(rows * sizeof(int32_t), "synthetic labels");
        rel[s] = at_malloc(rows * (size_t)T, "synthetic relevance");
        synth_split(x[s], y[s], rel[s], n[s], (int)T, (int)V, seed, s);
        if (s == 1 && n[s] == 0) continue; /* no test split */
        extra[s] = (h5_split_extra){
            "relevant", H5_ELEM_U8, 1,
            {T, 0, 0},  rel[s],     "1 at the two marker positions that decide the label"};
        splits[n_splits++] =
            (h5_split_data){names[s],
                            n[s],
                            1,
                            {T, 0},
                            x[s],
                            y[s],
                            "token ids as float32 (0..3 markers A, B, C, D; 4.. noise)",
                            "1 if the two markers' ids ascend in reading order, else 0",
                            1,
                            &extra[s]};
    }
    char source[512];
    snprintf(source, sizeof source,
             "synthetic-tokens: attrib import synthetic-tokens --seed %" PRIu64
             " --seq-len %lld --vocab %lld --n-train %lld --n-test %lld (markers A, B, C, D "
             "= ids 0..3, two different ones per sequence; class 1 = their ids ascend in "
             "reading order)",
             seed, T, V, n_train, n_test);
    int rc = h5_dataset_write(out, source, synth_classes, 2, splits, n_splits, &err);
    if (rc == 0)
        printf("wrote %s (synthetic tokens: train %lld, test %lld sequences of %lld ids, "
               "vocabulary %lld, seed %" PRIu64 ")\n",
               out, n_train, n_test, T, V, seed);
    else
        cli_error(&err);
    for (int s = 0; s < 2; s++) {
        free(x[s]);
        free(y[s]);
        free(rel[s]);
    }
    return rc;
}
