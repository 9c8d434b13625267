/* test_h5io.c — serial parts of io/h5io: model files (round trip, content
 * hash, corruption, missing/misshapen tensors), dataset files (reader
 * hyperslabs, mean, class names, error messages), the Fashion-MNIST
 * importer's checks and the logits file. Exits non-zero on any failure. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <zlib.h>

#include "h5io.h"

static int g_fail = 0;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            g_fail++;                                                         \
        }                                                                     \
    } while (0)

/* The error message contains want. */
#define EXPECT_MSG(err, want)                                                 \
    do {                                                                      \
        if (!strstr((err).msg, (want))) {                                     \
            fprintf(stderr, "FAIL %s:%d: error message\n  got:  %s\n  want: ...%s...\n", \
                    __FILE__, __LINE__, (err).msg, (want));                   \
            g_fail++;                                                         \
        }                                                                     \
    } while (0)

#define OUT "test_h5io_out"

/* ------------------------------------------------------------------ models */

static void build_model(eng_model *m) {
    /* input (3, 4) -> linear 6 (bias) -> relu -> linear 5 (bias) -> linear 3 */
    eng_layer_spec specs[4] = {
        {ENG_LAYER_LINEAR, 6, 1},
        {ENG_LAYER_RELU, 0, 0},
        {ENG_LAYER_LINEAR, 5, 1},
        {ENG_LAYER_LINEAR, 3, 0},
    };
    at_err err;
    at_err_clear(&err);
    if (eng_model_init(m, specs, 4, 12, &err) != 0) {
        fprintf(stderr, "FAIL eng_model_init: %s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)sin(0.37 * (double)i + 0.1) * 0.5f;
}

/* The content hash built independently from the header's description. */
static void reference_hash(const eng_model *m, char out[65]) {
    size_t cap = 4096 + m->n_params * 4 + 64 * 64, n = 0;
    unsigned char *buf = malloc(cap);
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        n += (size_t)sprintf((char *)buf + n, "%d %s %d %d %d\n", i,
                             eng_layer_kind_name(L->kind), L->in_features,
                             L->out_features, L->bias);
    }
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        if (L->kind != ENG_LAYER_LINEAR) continue;
        for (int t = 0; t < 1 + L->bias; t++) {
            char name[64];
            eng_param_name(i, t, name, sizeof name);
            memcpy(buf + n, name, strlen(name) + 1);
            n += strlen(name) + 1;
            size_t off = t == 0 ? L->w_off : L->b_off;
            size_t cnt = t == 0 ? (size_t)L->out_features * (size_t)L->in_features
                                : (size_t)L->out_features;
            for (size_t k = 0; k < cnt; k++) {
                uint32_t u;
                memcpy(&u, &m->params[off + k], 4);
                for (int b = 0; b < 4; b++) buf[n++] = (unsigned char)(u >> (8 * b));
            }
        }
    }
    at_sha256_buf_hex(buf, n, out);
    free(buf);
}

static int h5_count_open(void) {
    return (int)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

static void test_model(void) {
    eng_model m, m2;
    build_model(&m);
    char ref[65], h[65];
    reference_hash(&m, ref);
    h5_model_hash(&m, h);
    EXPECT(strcmp(ref, h) == 0);

    h5_model_info info;
    memset(&info, 0, sizeof info);
    info.n_input_dims = 2;
    info.input_shape[0] = 3;
    info.input_shape[1] = 4;
    h5_attr attrs[2] = {{"optimizer", "sgd momentum 0.9", 0.0}, {"lr", NULL, 0.05}};
    at_err err;
    at_err_clear(&err);
    const char *path = OUT "/models/sub/m.h5"; /* parents do not exist yet */
    EXPECT(h5_model_save(path, &m, &info, attrs, 2, &err) == 0);
    if (err.code) fprintf(stderr, "  save: %s\n", err.msg);
    EXPECT(strcmp(info.sha256, ref) == 0);
    EXPECT(info.n_classes == 3);
    EXPECT(access(OUT "/models/sub/m.h5.tmp", F_OK) != 0);

    h5_model_info li;
    memset(&li, 0, sizeof li);
    EXPECT(h5_model_load(path, &m2, &li, &err) == 0);
    if (err.code) fprintf(stderr, "  load: %s\n", err.msg);
    EXPECT(m2.n_layers == m.n_layers && m2.n_params == m.n_params);
    EXPECT(m2.in_features == 12 && m2.out_features == 3);
    for (int i = 0; i < m.n_layers && i < m2.n_layers; i++) {
        EXPECT(m2.layers[i].kind == m.layers[i].kind);
        EXPECT(m2.layers[i].in_features == m.layers[i].in_features);
        EXPECT(m2.layers[i].out_features == m.layers[i].out_features);
        EXPECT(m2.layers[i].bias == m.layers[i].bias);
    }
    EXPECT(m2.params && memcmp(m2.params, m.params, m.n_params * sizeof(float)) == 0);
    EXPECT(li.n_input_dims == 2 && li.input_shape[0] == 3 && li.input_shape[1] == 4);
    EXPECT(li.n_classes == 3);
    EXPECT(strcmp(li.sha256, ref) == 0);
    eng_model_free(&m2);

    /* provenance attributes and the table as h5py would see them */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double lr = 0;
    EXPECT(H5LTget_attribute_double(f, "/", "lr", &lr) >= 0 && lr == 0.05);
    hid_t a = H5Aopen(f, "optimizer", H5P_DEFAULT), t = H5Aget_type(a);
    EXPECT(H5Tis_variable_str(t) > 0 && H5Tget_cset(t) == H5T_CSET_UTF8);
    char *s = NULL;
    EXPECT(H5Aread(a, t, &s) >= 0 && s && strcmp(s, "sgd momentum 0.9") == 0);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    hid_t d = H5Dopen2(f, "/architecture/layers", H5P_DEFAULT);
    hid_t dt = H5Dget_type(d);
    EXPECT(H5Tget_class(dt) == H5T_COMPOUND && H5Tget_nmembers(dt) == 5);
    H5Tclose(dt);
    H5Dclose(d);
    H5Fclose(f);

    /* a changed weight: the hash check refuses the file */
    char *bad = OUT "/models/corrupt.h5";
    memset(&info, 0, sizeof info);
    EXPECT(h5_model_save(bad, &m, &info, NULL, 0, &err) == 0);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "/state_dict/layers.2.weight", H5P_DEFAULT);
    float w[5 * 6];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    w[7] += 1e-3f;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    H5Dclose(d);
    H5Fclose(f);
    eng_model tmp_m;
    memcpy(&tmp_m, &m, sizeof m);
    tmp_m.params = malloc(m.n_params * sizeof(float));
    memcpy(tmp_m.params, m.params, m.n_params * sizeof(float));
    tmp_m.params[m.layers[2].w_off + 7] += 1e-3f;
    char changed[65];
    h5_model_hash(&tmp_m, changed);
    free(tmp_m.params);
    at_err_clear(&err);
    EXPECT(h5_model_load(bad, &m2, NULL, &err) == AT_EUSER);
    char want[512];
    snprintf(want, sizeof want,
             "%s: content_sha256 mismatch: file says %s, weights hash to %s (the "
             "file was modified or is corrupt)",
             bad, ref, changed);
    EXPECT_MSG(err, want);
    EXPECT(m2.params == NULL);

    /* a missing tensor is named */
    char *miss = OUT "/models/missing.h5";
    EXPECT(h5_model_save(miss, &m, &info, NULL, 0, &err) == 0);
    f = H5Fopen(miss, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "/state_dict/layers.2.bias", H5P_DEFAULT);
    H5Fclose(f);
    at_err_clear(&err);
    EXPECT(h5_model_load(miss, &m2, NULL, &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/models/missing.h5: missing tensor /state_dict/layers.2.bias");

    /* a tensor of the wrong shape: name, expected and found shapes */
    char *shape = OUT "/models/shape.h5";
    EXPECT(h5_model_save(shape, &m, &info, NULL, 0, &err) == 0);
    f = H5Fopen(shape, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "/state_dict/layers.0.weight", H5P_DEFAULT);
    hsize_t tdims[2] = {12, 6};
    float zeros[72] = {0};
    H5LTmake_dataset_float(f, "/state_dict/layers.0.weight", 2, tdims, zeros);
    H5Fclose(f);
    at_err_clear(&err);
    EXPECT(h5_model_load(shape, &m2, NULL, &err) == AT_EUSER);
    EXPECT_MSG(err, "tensor /state_dict/layers.0.weight: expected float32 (6, 12)");
    EXPECT_MSG(err, "found float32 (12, 6)");

    /* an unexpected extra tensor */
    char *extra = OUT "/models/extra.h5";
    EXPECT(h5_model_save(extra, &m, &info, NULL, 0, &err) == 0);
    f = H5Fopen(extra, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t one = 1;
    H5LTmake_dataset_float(f, "/state_dict/layers.3.bias", 1, &one, zeros);
    H5Fclose(f);
    at_err_clear(&err);
    EXPECT(h5_model_load(extra, &m2, NULL, &err) == AT_EUSER);
    EXPECT_MSG(err, "unexpected tensor /state_dict/layers.3.bias");

    /* a missing file */
    at_err_clear(&err);
    EXPECT(h5_model_load(OUT "/models/nope.h5", &m2, NULL, &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/models/nope.h5: cannot open model file");

    eng_model_free(&m);
}

/* ---------------------------------------------------------------- datasets */

#define NR 9000 /* more than two 4096-row blocks */

static float pix(int64_t r, int64_t j) {
    return (float)((r * 7 + j * 13) % 101) / 100.0f + 1e-3f * (float)(r % 3);
}

/* train: images (NR, 3, 2) float32, labels uint8 (max 6), no class_names;
 * test: images (50, 6), labels int32; bad: images int8 (10). */
static void write_dataset(const char *path, int with_class_names) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    float *x = malloc(sizeof(float) * NR * 6);
    unsigned char *y8 = malloc(NR);
    int32_t y32[50];
    for (int64_t r = 0; r < NR; r++) {
        for (int j = 0; j < 6; j++) x[r * 6 + j] = pix(r, j);
        y8[r] = (unsigned char)(r % 7);
    }
    for (int r = 0; r < 50; r++) y32[r] = r % 4;
    const char *groups[3] = {"train", "test", "bad"};
    for (int i = 0; i < 3; i++)
        H5Gclose(H5Gcreate2(f, groups[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t d3[3] = {NR, 3, 2}, d1 = NR, d2[2] = {50, 6}, t1 = 50, b1 = 10;
    H5LTmake_dataset_float(f, "/train/images", 3, d3, x);
    H5LTmake_dataset(f, "/train/labels", 1, &d1, H5T_NATIVE_UCHAR, y8);
    H5LTmake_dataset_float(f, "/test/images", 2, d2, x);
    H5LTmake_dataset_int(f, "/test/labels", 1, &t1, y32);
    char junk[10] = {0};
    H5LTmake_dataset_char(f, "/bad/images", 1, &b1, junk);
    H5LTmake_dataset_int(f, "/bad/labels", 1, &b1, y32);
    if (with_class_names) {
        const char *names[5] = {"zero", "one", "two", "three", "four"};
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, H5T_VARIABLE);
        hsize_t n = 5;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t a = H5Acreate2(f, "class_names", st, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, st, names);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(st);
    }
    H5Fclose(f);
    free(y8);
    free(x);
}

static void test_dataset(void) {
    const char *path = OUT "/data/tiny.h5", *path2 = OUT "/data/tiny_names.h5";
    mkdir(OUT "/data", 0777);
    write_dataset(path, 0);
    write_dataset(path2, 1);
    at_err err;
    at_err_clear(&err);

    h5_reader *r = NULL;
    h5_dataset_info info;
    EXPECT(h5_reader_open(&r, path, "train", &info, &err) == 0);
    if (err.code) fprintf(stderr, "  open: %s\n", err.msg);
    EXPECT(info.n_rows == NR && info.n_feat_dims == 2);
    EXPECT(info.feat_shape[0] == 3 && info.feat_shape[1] == 2 && info.n_features == 6);
    EXPECT(info.n_classes == 7); /* max label + 1 (no class_names) */
    float x[12 * 6];
    int32_t y[12];
    EXPECT(h5_reader_read(r, 4095, 4107, x, y, &err) == 0);
    int ok = 1;
    for (int i = 0; i < 12; i++) {
        if (y[i] != (4095 + i) % 7) ok = 0;
        for (int j = 0; j < 6; j++)
            if (x[i * 6 + j] != pix(4095 + i, j)) ok = 0;
    }
    EXPECT(ok);
    EXPECT(h5_reader_read(r, NR - 1, NR, x, NULL, &err) == 0 && x[5] == pix(NR - 1, 5));
    EXPECT(h5_reader_read(r, 3, 3, x, y, &err) == 0);
    h5_reader_close(r);

    /* (N, D) images, class_names sets n_classes */
    EXPECT(h5_reader_open(&r, path2, "test", &info, &err) == 0);
    EXPECT(info.n_rows == 50 && info.n_feat_dims == 1 && info.n_features == 6);
    EXPECT(info.n_classes == 5);
    h5_reader_close(r);

    /* mean: float64 in row order */
    double mean[6], want[6] = {0};
    for (int64_t i = 0; i < NR; i++)
        for (int j = 0; j < 6; j++) want[j] += (double)pix(i, j);
    for (int j = 0; j < 6; j++) want[j] /= NR;
    EXPECT(h5_dataset_mean(path, "train", mean, 6, &err) == 0);
    for (int j = 0; j < 6; j++) EXPECT(mean[j] == want[j]);
    at_err_clear(&err);
    EXPECT(h5_dataset_mean(path, "train", mean, 5, &err) == AT_EUSER);
    EXPECT_MSG(err, "rows have 6 features (3, 2), expected 5");

    /* class names */
    char *names[8];
    EXPECT(h5_dataset_class_names(path, names, 8) == 0);
    int n = h5_dataset_class_names(path2, names, 8);
    EXPECT(n == 5);
    if (n == 5) {
        EXPECT(strcmp(names[0], "zero") == 0 && strcmp(names[4], "four") == 0);
        for (int i = 0; i < n; i++) free(names[i]);
    }

    /* errors */
    at_err_clear(&err);
    EXPECT(h5_reader_open(&r, "data/x.h5", "train", &info, &err) == AT_EUSER);
    EXPECT(r == NULL);
    EXPECT_MSG(err, "data/x.h5: cannot open dataset file (does it exist? create it "
                    "with `attrib import fashion-mnist --out data/x.h5`)");
    at_err_clear(&err);
    EXPECT(h5_reader_open(&r, path, "validation", &info, &err) == AT_EUSER);
    char msg[512];
    snprintf(msg, sizeof msg, "%s: no split 'validation' (splits in file: bad, test, train)",
             path);
    EXPECT_MSG(err, msg);
    at_err_clear(&err);
    EXPECT(h5_reader_open(&r, path, "bad", &info, &err) == AT_EUSER);
    snprintf(msg, sizeof msg, "%s: dataset /bad/images: expected float32 (N, H, W) or "
             "(N, D), found int8 (10)", path);
    EXPECT_MSG(err, msg);
    at_err_clear(&err);
    FILE *junk = fopen(OUT "/data/junk.h5", "w");
    fputs("not hdf5\n", junk);
    fclose(junk);
    EXPECT(h5_reader_open(&r, OUT "/data/junk.h5", "train", &info, &err) == AT_EUSER);
    EXPECT_MSG(err, "junk.h5: cannot open dataset file (it exists but is not a "
                    "readable HDF5 file)");
}

/* ---------------------------------------------------------------- importer */

static void write_gz(const char *path, const unsigned char *b, size_t n) {
    gzFile g = gzopen(path, "wb");
    gzwrite(g, b, (unsigned)n);
    gzclose(g);
}

static void test_import_errors(void) {
    at_err err;
    at_err_clear(&err);
    mkdir(OUT "/idx", 0777);
    /* labels magic where images are expected */
    unsigned char hdr[16] = {0, 0, 8, 1, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28};
    write_gz(OUT "/idx/train-images-idx3-ubyte.gz", hdr, sizeof hdr);
    EXPECT(h5_import_fashion_mnist(OUT "/idx", OUT "/idx/out.h5", &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/idx/train-images-idx3-ubyte.gz: magic number 2049 (0x00000801), "
                    "expected 2051");
    EXPECT(access(OUT "/idx/out.h5", F_OK) != 0 && access(OUT "/idx/out.h5.tmp", F_OK) != 0);
    /* right header, truncated pixels */
    hdr[3] = 3;
    unsigned char lab[8] = {0, 0, 8, 1, 0, 0, 0xea, 0x60};
    write_gz(OUT "/idx/train-images-idx3-ubyte.gz", hdr, sizeof hdr);
    unsigned char *labs = calloc(60008, 1);
    memcpy(labs, lab, 8);
    write_gz(OUT "/idx/train-labels-idx1-ubyte.gz", labs, 60008);
    free(labs);
    at_err_clear(&err);
    EXPECT(h5_import_fashion_mnist(OUT "/idx", OUT "/idx/out.h5", &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/idx/train-images-idx3-ubyte.gz: unexpected end of data after "
                    "item 0 of 60000");
    /* a missing file */
    at_err_clear(&err);
    EXPECT(h5_import_fashion_mnist(OUT "/nowhere", OUT "/idx/out.h5", &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/nowhere/train-images-idx3-ubyte.gz: cannot open");
}

/* ------------------------------------------------------------------ logits */

static void test_logits(void) {
    float logits[4 * 3];
    int32_t labels[4] = {2, 0, 1, 2};
    for (int i = 0; i < 12; i++) logits[i] = (float)i - 5.5f;
    at_err err;
    at_err_clear(&err);
    const char *path = OUT "/eval/logits.h5";
    EXPECT(h5_write_logits(path, logits, labels, 100, 4, 3, &err) == 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT(f >= 0);
    if (f < 0) return;
    float back[12];
    int64_t index[4];
    int32_t lb[4];
    EXPECT(H5LTread_dataset_float(f, "/logits", back) >= 0 &&
           memcmp(back, logits, sizeof back) == 0);
    EXPECT(H5LTread_dataset(f, "/index", H5T_NATIVE_INT64, index) >= 0 &&
           index[0] == 100 && index[3] == 103);
    EXPECT(H5LTread_dataset_int(f, "/labels", lb) >= 0 && lb[3] == 2);
    hid_t d = H5Dopen2(f, "/logits", H5P_DEFAULT);
    hid_t s = H5Dopen2(f, "/sample", H5P_DEFAULT), c = H5Dopen2(f, "/class", H5P_DEFAULT);
    EXPECT(H5DSis_scale(s) > 0 && H5DSis_scale(c) > 0);
    EXPECT(H5DSis_attached(d, s, 0) > 0 && H5DSis_attached(d, c, 1) > 0);
    H5Dclose(c);
    H5Dclose(s);
    H5Dclose(d);
    H5Fclose(f);
}

/* -------------------------------------------------------------------------- */

static void test_import_real(const char *dir) {
    at_err err;
    at_err_clear(&err);
    const char *path = OUT "/fmnist/fashion-mnist.h5";
    double t0 = at_now();
    int rc = h5_import_fashion_mnist(dir, path, &err);
    EXPECT(rc == 0);
    if (rc) {
        fprintf(stderr, "  import: %s\n", err.msg);
        return;
    }
    printf("imported Fashion-MNIST in %.2f s\n", at_now() - t0);
    h5_reader *r = NULL;
    h5_dataset_info info;
    EXPECT(h5_reader_open(&r, path, "test", &info, &err) == 0);
    EXPECT(info.n_rows == 10000 && info.n_feat_dims == 2 && info.feat_shape[0] == 28 &&
           info.n_classes == 10);
    float x[784];
    int32_t y;
    EXPECT(h5_reader_read(r, 0, 1, x, &y, &err) == 0);
    EXPECT(y == 9); /* the first test image is an ankle boot */
    float mx = 0;
    for (int j = 0; j < 784; j++) mx = x[j] > mx ? x[j] : mx;
    EXPECT(mx > 0.5f && mx <= 1.0f);
    h5_reader_close(r);
    EXPECT(h5_reader_open(&r, path, "train", &info, &err) == 0 && info.n_rows == 60000);
    h5_reader_close(r);
    char *names[16];
    int n = h5_dataset_class_names(path, names, 16);
    EXPECT(n == 10);
    if (n == 10) EXPECT(strcmp(names[0], "T-shirt/top") == 0 &&
                        strcmp(names[9], "Ankle boot") == 0);
    for (int i = 0; i < n; i++) free(names[i]);
}

int main(int argc, char **argv) {
    h5io_quiet();
    /* With a Fashion-MNIST directory, work in a subdirectory of our own so
     * that both ctest entries can run at the same time. */
    char src[4096] = {0};
    if (argc > 1) {
        if (!realpath(argv[1], src)) {
            fprintf(stderr, "FAIL: %s: no such directory\n", argv[1]);
            return 1;
        }
        mkdir("test_h5io_fmnist", 0777);
        if (chdir("test_h5io_fmnist") != 0) return 1;
    }
    mkdir(OUT, 0777);
    int before = h5_count_open();
    test_model();
    test_dataset();
    test_import_errors();
    test_logits();
    /* the real Fashion-MNIST import when asked for (it takes a few seconds) */
    if (argc > 1) test_import_real(src);
    int after = h5_count_open();
    if (after != before) {
        fprintf(stderr, "FAIL: %d HDF5 objects left open (before %d)\n", after, before);
        g_fail++;
    }
    if (g_fail) {
        fprintf(stderr, "test_h5io: %d failure(s)\n", g_fail);
        return 1;
    }
    printf("test_h5io: all passed\n");
    return 0;
}
