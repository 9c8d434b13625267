/* test_h5io.c — serial parts of io/h5io: model files (format 2 round trip
 * of a CNN and a transformer, content hash, version 1 refused, corruption,
 * missing/misshapen/unexpected tensors, damaged architectures), dataset files (reader
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

#include "arch.h"
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

/* A small CNN over (2, 6, 6) and a small transformer over 5 token ids:
 * between them every kind of parameter tensor (conv, batch norm with running
 * statistics, linear, embedding, positional embedding, layer norm,
 * attention in/out projections). */
static const char *CNN =
    "- {kind: conv2d, name: conv, out_channels: 4, kernel: 3, padding: 1}\n"
    "- {kind: batchnorm2d, name: bn}\n"
    "- {kind: relu}\n"
    "- {kind: conv2d, name: conv2, out_channels: 4, kernel: [3, 1], padding: [1, 0], "
    "bias: false}\n"
    "- {kind: add, name: res, inputs: [conv2, layers.2]}\n"
    "- {kind: maxpool2d, kernel: 2}\n"
    "- {kind: flatten}\n"
    "- {kind: linear, name: fc, out_features: 3}\n";
static const char *TRANSFORMER =
    "- {kind: embedding, name: tok, num_embeddings: 11, embedding_dim: 8}\n"
    "- {kind: pos_embedding, name: pos, max_len: 6}\n"
    "- {kind: layernorm, name: ln}\n"
    "- {kind: attention, name: attn, heads: 2, causal: true}\n"
    "- {kind: add, name: res, inputs: [attn, pos]}\n"
    "- {kind: seq_mean}\n"
    "- {kind: linear, name: head, out_features: 4}\n";

static void build_model(eng_model *m, const char *arch, const int *shape, int ndim) {
    eng_layer specs[16];
    int n = 0;
    at_err err;
    at_err_clear(&err);
    if (arch_parse_text(arch, "test", 0, specs, 16, &n, &err) ||
        eng_model_init(m, specs, n, shape, ndim, &err) != 0) {
        fprintf(stderr, "FAIL build_model: %s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)sin(0.37 * (double)i + 0.1) * 0.5f + 0.6f;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The content hash built independently from the format's description, out
 * of the file itself: the architecture attribute's bytes, then the
 * /state_dict datasets in byte order of their names. */
static void reference_hash(const char *path, char out[65]) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "architecture", H5P_DEFAULT), t = H5Aget_type(a);
    char *arch = NULL;
    H5Aread(a, t, &arch);
    hid_t g = H5Gopen2(f, "state_dict", H5P_DEFAULT);
    H5G_info_t gi;
    H5Gget_info(g, &gi);
    char **names = calloc(gi.nlinks, sizeof *names);
    size_t cap = strlen(arch), n = 0;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char nm[256];
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_DEC, i, nm, sizeof nm,
                           H5P_DEFAULT); /* any order: sorted below */
        names[i] = strdup(nm);
    }
    qsort(names, gi.nlinks, sizeof *names, name_cmp);
    unsigned char *buf = malloc(cap + 1);
    memcpy(buf, arch, strlen(arch));
    n = strlen(arch);
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT), sp = H5Dget_space(d);
        size_t cnt = (size_t)H5Sget_simple_extent_npoints(sp);
        buf = realloc(buf, n + strlen(names[i]) + 1 + 4 * cnt);
        memcpy(buf + n, names[i], strlen(names[i]) + 1);
        n += strlen(names[i]) + 1;
        float *x = malloc(cnt * sizeof *x);
        H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        for (size_t k = 0; k < cnt; k++) {
            uint32_t u;
            memcpy(&u, &x[k], 4);
            for (int b = 0; b < 4; b++) buf[n++] = (unsigned char)(u >> (8 * b));
        }
        free(x);
        H5Sclose(sp);
        H5Dclose(d);
        free(names[i]);
    }
    at_sha256_buf_hex(buf, n, out);
    free(buf);
    free(names);
    H5free_memory(arch);
    H5Gclose(g);
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
}

static int h5_count_open(void) {
    return (int)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

/* Save m to path, load it back, and check it is the same model. */
static void round_trip(const eng_model *m, const char *path) {
    h5_model_info info;
    memset(&info, 0, sizeof info);
    h5_attr attrs[2] = {{.name = "optimizer", .text = "sgd momentum 0.9"},
                        {.name = "lr", .number = 0.05}};
    at_err err;
    at_err_clear(&err);
    EXPECT(h5_model_save(path, m, &info, attrs, 2, &err) == 0);
    if (err.code) fprintf(stderr, "  save: %s\n", err.msg);
    char h[65], ref[65];
    h5_model_hash(m, h);
    reference_hash(path, ref);
    EXPECT(strcmp(info.sha256, h) == 0 && strcmp(ref, h) == 0);
    EXPECT(info.n_classes == m->out_features && info.n_input_dims == m->in_ndim);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    EXPECT(access(tmp, F_OK) != 0);

    eng_model m2;
    h5_model_info li;
    memset(&li, 0, sizeof li);
    EXPECT(h5_model_load(path, &m2, &li, &err) == 0);
    if (err.code) {
        fprintf(stderr, "  load: %s\n", err.msg);
        return;
    }
    EXPECT(m2.n_layers == m->n_layers && m2.n_params == m->n_params &&
           m2.n_tensors == m->n_tensors);
    EXPECT(m2.in_ndim == m->in_ndim && m2.out_features == m->out_features &&
           memcmp(m2.in_shape, m->in_shape, sizeof m->in_shape) == 0);
    for (int i = 0; i < m->n_layers && i < m2.n_layers; i++) {
        const eng_layer *a = &m->layers[i], *b = &m2.layers[i];
        EXPECT(a->kind == b->kind && !strcmp(a->name, b->name) && a->n_src == b->n_src &&
               a->src[0] == b->src[0] && a->src[1] == b->src[1] &&
               a->out_numel == b->out_numel && a->n_tensors == b->n_tensors);
    }
    for (int i = 0; i < m->n_tensors && i < m2.n_tensors; i++)
        EXPECT(!strcmp(m->tensors[i].name, m2.tensors[i].name) &&
               m->tensors[i].off == m2.tensors[i].off &&
               memcmp(m->tensors[i].shape, m2.tensors[i].shape, sizeof m->tensors[i].shape) ==
                   0);
    EXPECT(m2.params && memcmp(m2.params, m->params, m->n_params * sizeof(float)) == 0);
    EXPECT(li.n_input_dims == m->in_ndim && li.n_classes == m->out_features);
    for (int i = 0; i < m->in_ndim; i++) EXPECT(li.input_shape[i] == m->in_shape[i]);
    EXPECT(strcmp(li.sha256, h) == 0);
    char *t1 = arch_emit(m), *t2 = arch_emit(&m2);
    EXPECT(strcmp(t1, t2) == 0);

    /* what h5py sees: the attributes, the architecture text, PyTorch shapes */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    double lr = 0;
    long long ver = 0, nc = 0;
    EXPECT(H5LTget_attribute_double(f, "/", "lr", &lr) >= 0 && lr == 0.05);
    EXPECT(H5LTget_attribute_long_long(f, "/", "format_version", &ver) >= 0 && ver == 2);
    EXPECT(H5LTget_attribute_long_long(f, "/", "n_classes", &nc) >= 0 &&
           nc == m->out_features);
    hid_t a = H5Aopen(f, "architecture", H5P_DEFAULT), t = H5Aget_type(a);
    char *s = NULL;
    EXPECT(H5Tis_variable_str(t) > 0 && H5Tget_cset(t) == H5T_CSET_UTF8);
    EXPECT(H5Aread(a, t, &s) >= 0 && s && strcmp(s, t1) == 0);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    a = H5Aopen(f, "optimizer", H5P_DEFAULT);
    t = H5Aget_type(a);
    s = NULL;
    EXPECT(H5Aread(a, t, &s) >= 0 && s && strcmp(s, "sgd momentum 0.9") == 0);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    for (int i = 0; i < m->n_tensors; i++) {
        char dp[256];
        snprintf(dp, sizeof dp, "/state_dict/%s", m->tensors[i].name);
        int rank = -1;
        EXPECT(H5LTget_dataset_ndims(f, dp, &rank) >= 0 && rank == m->tensors[i].ndim);
        hsize_t dims[4] = {0};
        H5LTget_dataset_info(f, dp, dims, NULL, NULL);
        for (int k = 0; k < rank && k < 4; k++)
            EXPECT(dims[k] == (hsize_t)m->tensors[i].shape[k]);
    }
    H5Fclose(f);
    free(t1);
    free(t2);
    eng_model_free(&m2);
}

/* Copy of m's file at src to dst, then edit it with fn. */
typedef void (*edit_fn)(hid_t f);

static void edited(const char *src, const char *dst, edit_fn fn) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, k, out);
    fclose(in);
    fclose(out);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    fn(f);
    H5Fclose(f);
}

static void set_str_attr(hid_t f, const char *name, const char *v) {
    H5Adelete(f, name);
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void set_int_attr(hid_t f, const char *name, long long v) {
    H5Adelete(f, name);
    H5LTset_attribute_long_long(f, "/", name, &v, 1);
}

static void ed_weight(hid_t f) {
    hid_t d = H5Dopen2(f, "/state_dict/conv.weight", H5P_DEFAULT);
    float w[4 * 2 * 3 * 3];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    w[7] = nextafterf(w[7], 2.0f); /* one ulp */
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    H5Dclose(d);
}
static void ed_v1(hid_t f) { set_int_attr(f, "format_version", 1); }
static void ed_v3(hid_t f) { set_int_attr(f, "format_version", 3); }
static void ed_no_version(hid_t f) { H5Adelete(f, "format_version"); }
static void ed_shape(hid_t f) {
    H5Ldelete(f, "/state_dict/conv.weight", H5P_DEFAULT);
    hsize_t d[4] = {4, 2, 3, 2};
    float z[48] = {0};
    H5LTmake_dataset_float(f, "/state_dict/conv.weight", 4, d, z);
}
static void ed_rank(hid_t f) {
    H5Ldelete(f, "/state_dict/bn.running_var", H5P_DEFAULT);
    hsize_t d[2] = {4, 1};
    float z[4] = {1, 1, 1, 1};
    H5LTmake_dataset_float(f, "/state_dict/bn.running_var", 2, d, z);
}
static void ed_int(hid_t f) {
    H5Ldelete(f, "/state_dict/fc.bias", H5P_DEFAULT);
    hsize_t d = 3;
    int z[3] = {0};
    H5LTmake_dataset_int(f, "/state_dict/fc.bias", 1, &d, z);
}
static void ed_missing(hid_t f) { H5Ldelete(f, "/state_dict/bn.running_mean", H5P_DEFAULT); }
static void ed_extra(hid_t f) {
    hsize_t one = 1;
    float z = 0;
    H5LTmake_dataset_float(f, "/state_dict/bn.num_batches_tracked", 1, &one, &z);
}
static void ed_group(hid_t f) {
    H5Ldelete(f, "/state_dict/fc.bias", H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "/state_dict/fc.bias", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
}
static void ed_nan(hid_t f) {
    hid_t d = H5Dopen2(f, "/state_dict/conv.weight", H5P_DEFAULT);
    float w[72];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    w[1 * 18 + 0 * 9 + 2 * 3 + 1] = NAN; /* [1, 0, 2, 1] */
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w);
    H5Dclose(d);
}
static void ed_kind(hid_t f) {
    set_str_attr(f, "architecture", "- {kind: conv2d, name: conv, out_channels: 4, kernel: 3}\n"
                                    "- {kind: conv3d, name: bn}\n");
}
static void ed_arch_syntax(hid_t f) { set_str_attr(f, "architecture", "- {kind: relu\n"); }
static void ed_residual(hid_t f) {
    set_str_attr(f, "architecture", "- {kind: residual, body: [{kind: relu}]}\n");
}
static void ed_huge(hid_t f) {
    set_str_attr(f, "architecture", "- {kind: flatten}\n- {kind: linear, out_features: "
                                    "10000000}\n- {kind: linear, out_features: 3}\n");
}
static void ed_huge2(hid_t f) { /* 2^30 x 2^30 linear weights: 2^60 floats */
    set_str_attr(f, "architecture", "- {kind: flatten}\n"
                                    "- {kind: linear, out_features: 1073741824}\n"
                                    "- {kind: linear, out_features: 1073741824}\n");
}
static void ed_chain(hid_t f) {
    long long shape[1] = {72};
    H5Adelete(f, "input_shape");
    H5LTset_attribute_long_long(f, "/", "input_shape", shape, 1);
}
static void ed_bad_shape(hid_t f) {
    long long shape[2] = {2, 0};
    H5Adelete(f, "input_shape");
    H5LTset_attribute_long_long(f, "/", "input_shape", shape, 2);
}
static void ed_classes(hid_t f) { set_int_attr(f, "n_classes", 12); }
static void ed_no_arch(hid_t f) { H5Adelete(f, "architecture"); }
static void ed_arch_int(hid_t f) {
    H5Adelete(f, "architecture");
    int v = 3;
    H5LTset_attribute_int(f, "/", "architecture", &v, 1);
}

static void test_model(void) {
    eng_model cnn, tr;
    build_model(&cnn, CNN, (int[]){2, 6, 6}, 3);
    build_model(&tr, TRANSFORMER, (int[]){5}, 1);
    EXPECT(cnn.n_tensors == 9 && tr.n_tensors == 10);
    round_trip(&cnn, OUT "/models/sub/cnn.h5"); /* parents do not exist yet */
    round_trip(&tr, OUT "/models/tr.h5");

    /* the hash covers the architecture text: a different name, same weights */
    char h1[65], h2[65];
    h5_model_hash(&cnn, h1);
    snprintf(cnn.layers[7].name, sizeof cnn.layers[7].name, "fd");
    h5_model_hash(&cnn, h2);
    EXPECT(strcmp(h1, h2) != 0);
    snprintf(cnn.layers[7].name, sizeof cnn.layers[7].name, "fc");

    /* damaged files, each refused with a message naming file and cause */
    static const struct {
        const char *name;
        edit_fn fn;
        const char *want[2];
    } bad[] = {
        {"tampered", ed_weight, {"content_sha256 mismatch: file says"}},
        {"v1", ed_v1,
         {"/bad_v1.h5 was written by attrib < 0.2 (format_version 1); retrain it with "
          "`attrib train` or re-export it with tools/export_torch.py"}},
        {"v3", ed_v3, {"/bad_v3.h5: format_version 3, this attrib reads version 2"}},
        {"noversion", ed_no_version, {"root attribute format_version missing"}},
        {"shape", ed_shape,
         {"/bad_shape.h5: tensor /state_dict/conv.weight: expected float32 (4, 2, 3, 3) "
          "(layer 'conv' (conv2d)), found float32 (4, 2, 3, 2)"}},
        {"rank", ed_rank,
         {"tensor /state_dict/bn.running_var: expected float32 (4) (layer 'bn' "
          "(batchnorm2d)), found float32 (4, 1)"}},
        {"int", ed_int, {"tensor /state_dict/fc.bias: expected float32 (3)", "found int32 (3)"}},
        {"missing", ed_missing,
         {"/bad_missing.h5: missing tensor /state_dict/bn.running_mean (layer 'bn' "
          "(batchnorm2d); expected float32 (4))"}},
        {"extra", ed_extra,
         {"unexpected tensor /state_dict/bn.num_batches_tracked (the architecture has no "
          "such parameter)"}},
        {"group", ed_group, {"tensor /state_dict/fc.bias: expected float32 (3)",
                             "found a group or link"}},
        {"nan", ed_nan,
         {"tensor /state_dict/conv.weight: non-finite value nan at [1, 0, 2, 1]"}},
        {"kind", ed_kind,
         {"/bad_kind.h5: architecture:2: layers[1].kind: expected one of linear,",
          "got 'conv3d'"}},
        {"syntax", ed_arch_syntax, {"/bad_syntax.h5: architecture:2:", "YAML syntax error"}},
        {"residual", ed_residual, {"architecture:1: layers[0].kind:", "got 'residual'"}},
        {"huge", ed_huge,
         {"the architecture with input_shape (2, 6, 6) has 760000003 parameters; at most "
          "268435456 are supported"}},
        {"huge2", ed_huge2, {"has 1152921584063741952 parameters; at most 268435456"}},
        {"chain", ed_chain,
         {"/bad_chain.h5: the architecture with input_shape (72): layer 'conv'"}},
        {"badshape", ed_bad_shape, {"root attribute input_shape (2, 0) is not a valid shape"}},
        {"classes", ed_classes,
         {"root attribute n_classes is 12 but the model has 3 outputs"}},
        {"noarch", ed_no_arch, {"root attribute architecture missing or not a string"}},
        {"archint", ed_arch_int, {"root attribute architecture missing or not a string"}},
    };
    const char *src = OUT "/models/sub/cnn.h5";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, OUT "/models/bad_%s.h5", bad[i].name);
        edited(src, p, bad[i].fn);
        eng_model m2;
        at_err err;
        at_err_clear(&err);
        int before = h5_count_open();
        EXPECT(h5_model_load(p, &m2, NULL, &err) == AT_EUSER);
        EXPECT(h5_count_open() == before);
        EXPECT(strstr(err.msg, p) == err.msg); /* starts with the file */
        for (int k = 0; k < 2 && bad[i].want[k]; k++) EXPECT_MSG(err, bad[i].want[k]);
        EXPECT(m2.params == NULL && m2.n_layers == 0 && m2.layers == NULL);
    }
    eng_model m2;
    at_err err;
    at_err_clear(&err);
    EXPECT(h5_model_load(OUT "/models/nope.h5", &m2, NULL, &err) == AT_EUSER);
    EXPECT_MSG(err, OUT "/models/nope.h5: cannot open model file");
    eng_model_free(&cnn);
    eng_model_free(&tr);
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
                    "with `attrib import fashion-mnist --out data/x.h5` or `attrib import "
                    "synthetic-tokens --out data/x.h5`)");
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
