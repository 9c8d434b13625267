/* test_h5train.c — checkpoint files (io/h5train.h): write, count, load
 * back bit for bit, the errors of h5_ckpt_load, a failed checkpoint that
 * leaves the previous file intact; dataset files from memory that
 * h5_reader_open reads. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "engine.h"
#include "h5io.h"
#include "h5train.h"

#include "check.h"

static void small_model(eng_model *m, int out) {
    eng_layer sp[5] = {
        {.kind = ENG_LAYER_CONV2D, .name = "conv", .out_features = 3, .kernel = {3, 3}, .bias = 1},
        {.kind = ENG_LAYER_BATCHNORM2D, .name = "bn", .affine = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_GAP},
        {.kind = ENG_LAYER_LINEAR, .name = "fc", .out_features = out, .bias = 1}};
    at_err err = {0};
    AT_CHECK(eng_model_init(m, sp, 5, (int[]){2, 6, 6}, 3, &err) == 0);
    eng_model_init_params(m, 3);
}

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void test_checkpoints(const char *dir) {
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/sub/run.ckpt.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    eng_model m;
    small_model(&m, 4);
    const int K = 3;
    float *saved = malloc((size_t)K * m.n_params * sizeof(float));
    h5_ckpt_writer *w = h5_ckpt_writer_new(path, &m, 42, "job: yes\n");
    at_err err = {0};
    for (int k = 0; k < K; k++) {
        for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.125f * (float)(k + 1);
        memcpy(saved + k * m.n_params, m.params, m.n_params * sizeof(float));
        EXPECT(h5_ckpt_writer_add(w, &m, 2 * (k + 1), 0.1 / (k + 1), 1.0 / (k + 1), 0.5, &err) == 0,
               "add %d: %s", k, err.msg);
        EXPECT(access(tmp, F_OK) != 0, "%s left behind", tmp);
    }
    EXPECT(h5_ckpt_writer_count(w) == K, "writer count %d", h5_ckpt_writer_count(w));
    int n = -1;
    EXPECT(h5_ckpt_count(path, &n, &err) == 0 && n == K, "count %d (%s)", n, err.msg);
    for (int k = 0; k < K; k++) {
        memset(m.params, 0, m.n_params * sizeof(float));
        int epoch = 0;
        double lr = 0;
        EXPECT(h5_ckpt_load(path, k, &m, &epoch, &lr, &err) == 0, "load %d: %s", k, err.msg);
        EXPECT(memcmp(m.params, saved + k * m.n_params, m.n_params * sizeof(float)) == 0,
               "checkpoint %d differs from what was written", k);
        EXPECT(epoch == 2 * (k + 1) && lr == 0.1 / (k + 1), "checkpoint %d: epoch %d lr %g", k,
               epoch, lr);
    }

    /* errors */
    at_err e = {0};
    EXPECT(h5_ckpt_load(path, K, &m, NULL, NULL, &e) == AT_EUSER &&
               contains(e.msg, "no checkpoint 3"),
           "k out of range: %s", e.msg);
    eng_model other;
    small_model(&other, 5);
    e = (at_err){0};
    EXPECT(h5_ckpt_load(path, 0, &other, NULL, NULL, &e) == AT_EUSER &&
               contains(e.msg, "another architecture") && contains(e.msg, "out_features: 5"),
           "other architecture: %s", e.msg);
    eng_model_free(&other);
    e = (at_err){0};
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.h5", dir);
    EXPECT(h5_ckpt_count(missing, &n, &e) == AT_EUSER && contains(e.msg, "none.h5"),
           "missing file: %s", e.msg);

    /* a failed checkpoint (a tensor name HDF5 cannot take) keeps the file */
    char saved_name[sizeof m.tensors[0].name];
    memcpy(saved_name, m.tensors[0].name, sizeof saved_name);
    snprintf(m.tensors[0].name, sizeof m.tensors[0].name, "conv/weight");
    e = (at_err){0};
    EXPECT(h5_ckpt_writer_add(w, &m, 99, 0.01, 0, 0, &e) == AT_EUSER &&
               contains(e.msg, "conv/weight"),
           "bad tensor name: %s", e.msg);
    memcpy(m.tensors[0].name, saved_name, sizeof saved_name);
    EXPECT(access(tmp, F_OK) != 0, "%s left behind after a failure", tmp);
    EXPECT(h5_ckpt_count(path, &n, &err) == 0 && n == K, "after a failure: %d checkpoints", n);
    EXPECT(h5_ckpt_load(path, K - 1, &m, NULL, NULL, &err) == 0 &&
               memcmp(m.params, saved + (K - 1) * m.n_params, m.n_params * sizeof(float)) == 0,
           "after a failure the last checkpoint is not intact: %s", err.msg);
    h5_ckpt_writer_free(w);

    /* a changed weight: the content hash catches it; a missing tensor */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/checkpoints/1/state_dict/fc.bias", H5P_DEFAULT);
    float b[4];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
    b[2] += 1.0f;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b);
    H5Dclose(d);
    H5Ldelete(f, "/checkpoints/2/state_dict/bn.running_var", H5P_DEFAULT);
    H5Fclose(f);
    e = (at_err){0};
    EXPECT(h5_ckpt_load(path, 1, &m, NULL, NULL, &e) == AT_EUSER &&
               contains(e.msg, "content_sha256"),
           "changed weight: %s", e.msg);
    e = (at_err){0};
    EXPECT(h5_ckpt_load(path, 2, &m, NULL, NULL, &e) == AT_EUSER &&
               contains(e.msg, "bn.running_var"),
           "missing tensor: %s", e.msg);
    e = (at_err){0};
    EXPECT(h5_ckpt_load(path, 0, &m, NULL, NULL, &e) == 0, "checkpoint 0 untouched: %s", e.msg);
    free(saved);
    eng_model_free(&m);
}

static void test_dataset_write(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/data.h5", dir);
    enum { N = 37, H = 3, W = 5 };
    float x[N * H * W];
    int32_t y[N];
    uint8_t rel[N * W];
    for (int i = 0; i < N * H * W; i++) x[i] = (float)i / 7.0f;
    for (int i = 0; i < N; i++) y[i] = i % 3;
    for (int i = 0; i < N * W; i++) rel[i] = (uint8_t)(i % 2);
    const char *names[3] = {"a", "b", "c"};
    h5_split_extra ex = {"relevant", H5_ELEM_U8, 1, {W, 0, 0}, rel, "mask"};
    h5_split_data sp[2] = {{"train", N, 2, {H, W}, x, y, "pixels", "classes", 1, &ex},
                           {"test", 0, 2, {H, W}, NULL, NULL, NULL, NULL, 0, NULL}};
    at_err err = {0};
    EXPECT(h5_dataset_write(path, "unit test", names, 3, sp, 2, &err) == 0, "write: %s", err.msg);
    h5_reader *rd = NULL;
    h5_dataset_info info;
    EXPECT(h5_reader_open(&rd, path, "train", &info, &err) == 0, "open: %s", err.msg);
    if (rd) {
        EXPECT(info.n_rows == N && info.n_feat_dims == 2 && info.feat_shape[0] == H &&
                   info.feat_shape[1] == W && info.n_classes == 3,
               "info: %lld rows, %d dims, %d classes", (long long)info.n_rows, info.n_feat_dims,
               info.n_classes);
        float xr[N * H * W];
        int32_t yr[N];
        EXPECT(h5_reader_read(rd, 0, N, xr, yr, &err) == 0, "read: %s", err.msg);
        EXPECT(memcmp(xr, x, sizeof x) == 0 && memcmp(yr, y, sizeof y) == 0, "read back differs");
        h5_reader_close(rd);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/train/relevant", H5P_DEFAULT);
    uint8_t rr[N * W];
    EXPECT(d >= 0 && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, rr) >= 0 &&
               memcmp(rr, rel, sizeof rel) == 0,
           "/train/relevant differs");
    H5Dclose(d);
    H5Fclose(f);
    /* the empty split opens too (0 rows) */
    rd = NULL;
    EXPECT(h5_reader_open(&rd, path, "test", &info, &err) == 0 && info.n_rows == 0,
           "empty split: %s", err.msg);
    if (rd) h5_reader_close(rd);
}

int main(void) {
    h5io_quiet();
    char dir[] = "/tmp/test_h5train.XXXXXX";
    AT_CHECK(mkdtemp(dir) != NULL);
    test_checkpoints(dir);
    test_dataset_write(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report("test_h5train");
}
