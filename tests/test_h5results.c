/* test_h5results.c — collective results files (io/h5io h5_results_*).
 *
 * Every rank owns interleaved blocks of rows (block b belongs to rank
 * b % size) and writes them collectively: once as one call with all its
 * ranges (given in reverse order), once one block per call with ranks that
 * have run out of blocks passing no ranges. Then rank 0 reopens the file
 * serially and checks every value, the attributes, the chunking/filters and
 * that every dataset has its dimension scales attached (DIMENSION_LIST).
 *
 * Usage: test_h5results [path]   (default test_h5results_np<size>.h5)
 * The file is left in place for tests/check_results_xarray.py. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <mpi.h>

#include "h5io.h"

#define N 1000 /* samples */
#define F 20   /* features */
#define C 10   /* classes */
#define B 37   /* rows per block */

static int g_fail = 0;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "[%d] FAIL %s:%d: %s\n", g_rank, __FILE__,        \
                    __LINE__, #cond);                                         \
            g_fail++;                                                         \
        }                                                                     \
    } while (0)

static int g_rank = 0, g_size = 1;

/* A call that must succeed; err is the caller's at_err *. */
#define OK(call)                                                              \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ != 0) {                                                       \
            fprintf(stderr, "[%d] FAIL %s:%d: %s -> %d: %s\n", g_rank,        \
                    __FILE__, __LINE__, #call, rc_, err->msg);                \
            at_err_clear(err);                                                \
            g_fail++;                                                         \
        }                                                                     \
    } while (0)

static float val_ig(int64_t r, int64_t j) { return (float)(r * 1000 + j); }
static double val_delta(int64_t r) { return 0.5 * (double)r - 3.25; }
static float val_logit(int64_t r, int64_t c) { return (float)r * 0.25f - (float)c; }

/* My blocks: rows [b*B, min((b+1)*B, N)) for b = rank, rank+size, ... */
static int my_blocks(int64_t *row0, int64_t *nrows) {
    int n = 0;
    for (int64_t b = g_rank; b * B < N; b += g_size) {
        row0[n] = b * B;
        nrows[n] = (b + 1) * B <= N ? B : N - b * B;
        n++;
    }
    return n;
}

static void write_file(const char *path, at_err *err) {
    h5_results *r = NULL;
    OK(h5_results_create(&r, path, MPI_COMM_WORLD, err));
    if (!r) return;

    int64_t sample[N];
    int32_t feature[F], cls[C];
    for (int i = 0; i < N; i++) sample[i] = 5000 + i;
    for (int i = 0; i < F; i++) feature[i] = i;
    for (int i = 0; i < C; i++) cls[i] = i;
    OK(h5_results_scale(r, "sample", H5IO_I64, N, sample, "row index in the split", err));
    OK(h5_results_scale(r, "feature", H5IO_I32, F, feature, "flattened pixel", err));
    OK(h5_results_scale(r, "class", H5IO_I32, C, cls, NULL, err));
    OK(h5_results_scale(r, "nothing", H5IO_I64, 0, NULL, "an empty axis", err));

    int64_t d_ig[2] = {N, F}, d_n[1] = {N}, d_lg[2] = {N, C}, d_empty[2] = {0, F};
    const char *s_ig[2] = {"sample", "feature"}, *s_n[1] = {"sample"};
    const char *s_lg[2] = {"sample", "class"}, *s_empty[2] = {"nothing", "feature"};
    OK(h5_results_dataset(r, "attributions/ig/values", H5IO_F32, 2, d_ig, s_ig, 64, 4,
                          "integrated gradients", err));
    OK(h5_results_dataset(r, "attributions/ig/delta", H5IO_F64, 1, d_n, s_n, 100000, 0,
                          "completeness gap", err));
    OK(h5_results_dataset(r, "predictions/pred", H5IO_I32, 1, d_n, s_n, 0, 1, NULL, err));
    OK(h5_results_dataset(r, "/logits", H5IO_F32, 2, d_lg, s_lg, 128, 1, NULL, err));
    OK(h5_results_dataset(r, "empty/values", H5IO_F32, 2, d_empty, s_empty, 16, 4,
                          NULL, err));

    int64_t row0[N / B + 2], nrows[N / B + 2];
    int nb = my_blocks(row0, nrows);
    int64_t my_rows = 0;
    for (int k = 0; k < nb; k++) my_rows += nrows[k];

    /* one call with all my ranges in reverse order; buf follows that order */
    int64_t rrow0[N / B + 2], rnrows[N / B + 2];
    float *ig = malloc(sizeof(float) * (size_t)(my_rows ? my_rows : 1) * F);
    double *delta = malloc(sizeof(double) * (size_t)(my_rows ? my_rows : 1));
    float *lg = malloc(sizeof(float) * (size_t)(my_rows ? my_rows : 1) * C);
    size_t o = 0;
    for (int k = 0; k < nb; k++) {
        int kk = nb - 1 - k;
        rrow0[k] = row0[kk];
        rnrows[k] = nrows[kk];
        for (int64_t i = 0; i < nrows[kk]; i++, o++) {
            for (int j = 0; j < F; j++) ig[o * F + j] = val_ig(row0[kk] + i, j);
            delta[o] = val_delta(row0[kk] + i);
            for (int c = 0; c < C; c++) lg[o * C + c] = val_logit(row0[kk] + i, c);
        }
    }
    OK(h5_results_write_rows(r, "attributions/ig/values", nb, rrow0, rnrows, ig, err));
    OK(h5_results_write_rows(r, "attributions/ig/delta", nb, rrow0, rnrows, delta, err));
    /* rows in natural order, ranges split into single rows (adjacent merge) */
    o = 0;
    for (int k = 0; k < nb; k++)
        for (int64_t i = 0; i < nrows[k]; i++, o++)
            for (int c = 0; c < C; c++) lg[o * C + c] = val_logit(row0[k] + i, c);
    int64_t *r1 = malloc(sizeof(int64_t) * (size_t)(my_rows ? my_rows : 1));
    int64_t *n1 = malloc(sizeof(int64_t) * (size_t)(my_rows ? my_rows : 1));
    o = 0;
    for (int k = 0; k < nb; k++)
        for (int64_t i = 0; i < nrows[k]; i++, o++) {
            r1[o] = row0[k] + i;
            n1[o] = 1;
        }
    OK(h5_results_write_rows(r, "/logits", (int)my_rows, r1, n1, lg, err));
    free(n1);
    free(r1);

    /* one block per call; everybody makes the same number of calls */
    int max_nb = 0;
    MPI_Allreduce(&nb, &max_nb, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    for (int k = 0; k < max_nb; k++) {
        int32_t pred[B];
        int have = k < nb;
        for (int64_t i = 0; have && i < nrows[k]; i++)
            pred[i] = (int32_t)((row0[k] + i) % C);
        OK(h5_results_write_rows(r, "predictions/pred", have, have ? &row0[k] : NULL,
                                 have ? &nrows[k] : NULL, have ? pred : NULL, err));
    }
    /* nobody writes: still collective */
    OK(h5_results_write_rows(r, "empty/values", 0, NULL, NULL, NULL, err));

    OK(h5_results_attr_str(r, "/", "format", "attrib-results", err));
    OK(h5_results_attr_i64(r, "/", "n_ranks", g_size, err));
    OK(h5_results_attr_f64(r, "/", "elapsed", 1.5, err));
    OK(h5_results_attr_str(r, "attributions/ig", "method", "integrated_gradients", err));
    double qw[3] = {0.25, 0.5, 0.25};
    OK(h5_results_attr_f64v(r, "attributions/ig", "quad_weights", qw, 3, err));
    OK(h5_results_attr_str(r, "attributions/ig/values", "units", "logit", err));
    OK(h5_results_attr_str(r, "meta/config", "job", "name: test\n", err)); /* new group */
    OK(h5_results_attr_str(r, "/", "format", "attrib-results", err)); /* overwrite */

    /* errors reach every rank without a hang */
    at_err e2;
    at_err_clear(&e2);
    int64_t z0 = 0, z1 = 1;
    int rc = h5_results_write_rows(r, "no/such", 1, &z0, &z1, ig, &e2);
    EXPECT(rc == AT_EINTERNAL && strstr(e2.msg, "no dataset no/such"));
    at_err_clear(&e2);
    int64_t d_bad[1] = {7};
    rc = h5_results_dataset(r, "bad", H5IO_F32, 1, d_bad, s_n, 1, 0, NULL, &e2);
    EXPECT(rc == AT_EINTERNAL &&
           strstr(e2.msg, "dataset bad axis 0: scale /sample has 1000 values, the "
                          "axis has 7"));

    free(lg);
    free(delta);
    free(ig);
    OK(h5_results_close(r, err));
}

/* --------------------------------------------------------- serial checks */

static void check_attached(hid_t f, const char *dset, int ndims,
                           const char *const *scales) {
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    EXPECT(d >= 0);
    if (d < 0) return;
    EXPECT(H5Aexists(d, "DIMENSION_LIST") > 0);
    for (int i = 0; i < ndims; i++) {
        hid_t s = H5Dopen2(f, scales[i], H5P_DEFAULT);
        EXPECT(H5DSis_scale(s) > 0);
        if (H5DSis_attached(d, s, (unsigned)i) <= 0) {
            fprintf(stderr, "FAIL: %s axis %d: scale %s not attached\n", dset, i,
                    scales[i]);
            g_fail++;
        }
        char name[64] = {0};
        H5DSget_scale_name(s, name, sizeof name);
        EXPECT(strcmp(name, scales[i][0] == '/' ? scales[i] + 1 : scales[i]) == 0);
        H5Dclose(s);
    }
    H5Dclose(d);
}

static int n_filters(hid_t f, const char *dset, hsize_t *chunk0) {
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT), p = H5Dget_create_plist(d);
    int n = H5Pget_nfilters(p);
    hsize_t ch[4] = {0};
    if (H5Pget_layout(p) == H5D_CHUNKED) H5Pget_chunk(p, 4, ch);
    *chunk0 = ch[0];
    H5Pclose(p);
    H5Dclose(d);
    return n;
}

static char *read_str_attr(hid_t f, const char *obj, const char *name) {
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    hid_t a = H5Aopen(o, name, H5P_DEFAULT), t = H5Aget_type(a);
    char *s = NULL, *out = NULL;
    if (H5Tis_variable_str(t) > 0 && H5Tget_cset(t) == H5T_CSET_UTF8 &&
        H5Aread(a, t, &s) >= 0) {
        out = strdup(s);
        H5free_memory(s);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return out;
}

static void check_file(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT(f >= 0);
    if (f < 0) return;
    float *ig = malloc(sizeof(float) * N * F), *lg = malloc(sizeof(float) * N * C);
    double delta[N];
    int32_t pred[N];
    int64_t sample[N];
    EXPECT(H5LTread_dataset_float(f, "/attributions/ig/values", ig) >= 0);
    EXPECT(H5LTread_dataset_double(f, "/attributions/ig/delta", delta) >= 0);
    EXPECT(H5LTread_dataset_int(f, "/predictions/pred", pred) >= 0);
    EXPECT(H5LTread_dataset_float(f, "/logits", lg) >= 0);
    EXPECT(H5LTread_dataset(f, "/sample", H5T_NATIVE_INT64, sample) >= 0);
    int bad = 0;
    for (int64_t r = 0; r < N; r++) {
        for (int j = 0; j < F; j++) bad += ig[r * F + j] != val_ig(r, j);
        for (int c = 0; c < C; c++) bad += lg[r * C + c] != val_logit(r, c);
        bad += delta[r] != val_delta(r);
        bad += pred[r] != r % C;
        bad += sample[r] != 5000 + r;
    }
    if (bad) fprintf(stderr, "FAIL: %d wrong values\n", bad);
    g_fail += bad != 0;
    free(lg);
    free(ig);

    hsize_t dims[2] = {1, 1};
    EXPECT(H5LTget_dataset_info(f, "/empty/values", dims, NULL, NULL) >= 0 &&
           dims[0] == 0 && dims[1] == F);

    const char *s_ig[2] = {"/sample", "/feature"}, *s_n[1] = {"/sample"};
    const char *s_lg[2] = {"/sample", "/class"}, *s_empty[2] = {"/nothing", "/feature"};
    check_attached(f, "/attributions/ig/values", 2, s_ig);
    check_attached(f, "/attributions/ig/delta", 1, s_n);
    check_attached(f, "/predictions/pred", 1, s_n);
    check_attached(f, "/logits", 2, s_lg);
    check_attached(f, "/empty/values", 2, s_empty);

    hsize_t ch = 0;
    EXPECT(n_filters(f, "/attributions/ig/values", &ch) == 2 && ch == 64);
    EXPECT(n_filters(f, "/attributions/ig/delta", &ch) == 0 && ch == N); /* clipped */
    EXPECT(n_filters(f, "/predictions/pred", &ch) == 2 && ch == 1);      /* >= 1 */
    EXPECT(n_filters(f, "/empty/values", &ch) == 0 && ch == 0);          /* contiguous */

    char *s = read_str_attr(f, "/", "format");
    EXPECT(s && strcmp(s, "attrib-results") == 0);
    free(s);
    s = read_str_attr(f, "/attributions/ig", "method");
    EXPECT(s && strcmp(s, "integrated_gradients") == 0);
    free(s);
    s = read_str_attr(f, "/attributions/ig/values", "units");
    EXPECT(s && strcmp(s, "logit") == 0);
    free(s);
    s = read_str_attr(f, "/attributions/ig/values", "description");
    EXPECT(s && strcmp(s, "integrated gradients") == 0);
    free(s);
    s = read_str_attr(f, "/meta/config", "job");
    EXPECT(s && strcmp(s, "name: test\n") == 0);
    free(s);
    long long nr = 0;
    double el = 0, qw[3] = {0};
    EXPECT(H5LTget_attribute_long_long(f, "/", "n_ranks", &nr) >= 0 && nr == g_size);
    EXPECT(H5LTget_attribute_double(f, "/", "elapsed", &el) >= 0 && el == 1.5);
    EXPECT(H5LTget_attribute_double(f, "/attributions/ig", "quad_weights", qw) >= 0 &&
           qw[0] == 0.25 && qw[1] == 0.5 && qw[2] == 0.25);
    EXPECT(H5Fget_obj_count(f, H5F_OBJ_ALL) == 1);
    H5Fclose(f);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    at_log_set_rank(g_rank);
    h5io_quiet();
    char path[1024], tmp[1100];
    if (argc > 1)
        snprintf(path, sizeof path, "%s", argv[1]);
    else
        snprintf(path, sizeof path, "test_h5results_np%d.h5", g_size);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    at_err err;
    at_err_clear(&err);
    /* a results file in a missing directory fails on every rank */
    h5_results *r = NULL;
    int rc = h5_results_create(&r, "no/such/dir/x.h5", MPI_COMM_WORLD, &err);
    EXPECT(rc == AT_EIO && r == NULL && strstr(err.msg, "no/such/dir/x.h5: cannot create"));
    at_err_clear(&err);

    write_file(tmp, &err);
    if (err.code) fprintf(stderr, "[%d] error: %s\n", g_rank, err.msg);
    /* the caller renames after a successful close */
    if (g_rank == 0 && rename(tmp, path) != 0) {
        perror("rename");
        g_fail++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g_rank == 0) check_file(path);

    int fails = 0;
    MPI_Allreduce(&g_fail, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0 && fails)
        printf("test_h5results (%d ranks): %d failure(s)\n", g_size, fails);
    else if (g_rank == 0)
        printf("test_h5results (%d ranks): all passed\n", g_size);
    MPI_Finalize();
    return fails ? 1 : 0;
}
