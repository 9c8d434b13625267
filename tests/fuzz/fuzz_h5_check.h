/* fuzz_h5_check.h — what the HDF5 fuzz targets (fuzz_h5.c, fuzz_h5_raw.c)
 * do with a file once it exists: run every loader of io/h5io.c on it and
 * check what they promise (h5io.h):
 *   - each call returns 0, or AT_EUSER/AT_EIO with a message that names the
 *     file (never AT_EINTERNAL, never a crash, an abort or a sanitizer
 *     report);
 *   - h5_model_load: on success a built model whose input and class counts
 *     match its info and whose weights are all finite; on failure the model
 *     zeroed;
 *   - h5_reader_open: on success consistent info (rows >= 0, 1 or 2 feature
 *     dims whose product is n_features >= 1, 1..H5IO_MAX_CLASSES classes);
 *     reads of rows inside the split succeed or fail cleanly, into buffers
 *     of exactly the requested size (ASan sees any overrun);
 *   - h5_dataset_mean: finite means, or an error; the wrong n_features is an
 *     error, never a read past the caller's buffer;
 *   - no HDF5 identifier is left open after any call (file, group, dataset,
 *     dataspace, datatype, attribute, property list).
 * Reads are only attempted when they are small (the harness must not spend
 * minutes reading a declared 10^12-row split of fill values). */
#ifndef ATTRIB_FUZZ_H5_CHECK_H
#define ATTRIB_FUZZ_H5_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "arch.h"
#include "engine.h"
#include "h5io.h"

static const char *const FUZZ_SPLITS[] = {
    "test", "train", "", "/test", "test/images", "nope", "architecture", "state_dict"};
enum { FUZZ_N_SPLITS = sizeof FUZZ_SPLITS / sizeof FUZZ_SPLITS[0] };

static void fuzz_fail(const char *what, const char *path, const char *detail) {
    fprintf(stderr, "fuzz_h5: %s (file %s)%s%s\n", what, path, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* Open HDF5 identifiers of the kinds our code creates. */
typedef struct {
    hsize_t n[7];
} fuzz_ids;

static fuzz_ids fuzz_count_ids(void) {
    static const H5I_type_t types[7] = {H5I_FILE,     H5I_GROUP, H5I_DATASET,    H5I_DATASPACE,
                                        H5I_DATATYPE, H5I_ATTR,  H5I_GENPROP_LST};
    fuzz_ids c;
    for (int i = 0; i < 7; i++) {
        c.n[i] = 0;
        H5Inmembers(types[i], &c.n[i]);
    }
    return c;
}

static void fuzz_check_ids(const fuzz_ids *before, const char *call, const char *path) {
    static const char *const names[7] = {"file",     "group",     "dataset",      "dataspace",
                                         "datatype", "attribute", "property list"};
    fuzz_ids now = fuzz_count_ids();
    for (int i = 0; i < 7; i++)
        if (now.n[i] != before->n[i]) {
            char d[160];
            snprintf(d, sizeof d, "%s: %llu %s identifier(s) before, %llu after", call,
                     (unsigned long long)before->n[i], names[i], (unsigned long long)now.n[i]);
            fuzz_fail("HDF5 identifier leak", path, d);
        }
}

/* FUZZ_H5_VERBOSE=1: say what each loader returned. */
static void fuzz_say(const char *call, int rc, const at_err *e) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_H5_VERBOSE") && strcmp(getenv("FUZZ_H5_VERBOSE"), "0") != 0;
    if (v) fprintf(stderr, "  %s -> %d%s%s\n", call, rc, rc ? ": " : "", rc ? e->msg : "");
}

/* rc/err of a failed call: a user or I/O error with a message naming path. */
static void fuzz_check_error(int rc, const at_err *e, const char *call, const char *path) {
    char d[AT_ERR_MSG + 64];
    snprintf(d, sizeof d, "%s returned %d: %s", call, rc, e->msg);
    if (rc != AT_EUSER && rc != AT_EIO) fuzz_fail("unexpected error code", path, d);
    if (e->code != rc) fuzz_fail("error record code differs from the return code", path, d);
    if (!e->msg[0]) fuzz_fail("error without a message", path, d);
    if (!strstr(e->msg, path)) fuzz_fail("error message does not name the file", path, d);
}

/* The largest |value| of tensor suffix of layer i ("weight", "bias", ...);
 * 0 when the layer has no such tensor. */
static double fuzz_tensor_max(const eng_model *m, int i, const char *suffix) {
    const eng_layer *L = &m->layers[i];
    size_t nl = strlen(L->name);
    for (int k = L->tensor0; k < L->tensor0 + L->n_tensors; k++) {
        const eng_tensor *t = &m->tensors[k];
        if (strncmp(t->name, L->name, nl) != 0 || t->name[nl] != '.' ||
            strcmp(t->name + nl + 1, suffix) != 0)
            continue;
        double mx = 0;
        for (size_t j = 0; j < t->numel; j++) {
            double v = fabs((double)m->params[t->off + j]);
            if (v > mx) mx = v;
        }
        return mx;
    }
    return 0;
}

/* An upper bound on |every value| of every layer's output in a forward pass
 * over inputs with |x| <= xmax, from the weights (interval arithmetic over
 * the layer list); *inter gets a bound on the intermediates inside layers
 * (squares in norms, attention scores). INFINITY when there is none (a
 * batch norm whose running_var + eps is not > 0). */
static double fuzz_forward_bound(const eng_model *m, double xmax, double *inter) {
    double *b = calloc((size_t)m->n_layers, sizeof *b), out = 0;
    *inter = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        double in = L->src[0] == ENG_SRC_INPUT ? xmax : b[L->src[0]];
        double last = L->in_shape[L->in_ndim - 1], y = in;
        switch (L->kind) {
        case ENG_LAYER_LINEAR:
            y = in * fuzz_tensor_max(m, i, "weight") * last + fuzz_tensor_max(m, i, "bias");
            break;
        case ENG_LAYER_CONV2D:
            y = in * fuzz_tensor_max(m, i, "weight") * L->g.C * L->g.KH * L->g.KW +
                fuzz_tensor_max(m, i, "bias");
            break;
        case ENG_LAYER_TANH:
        case ENG_LAYER_SIGMOID:
        case ENG_LAYER_SOFTMAX:
            y = 1;
            break;
        case ENG_LAYER_SOFTPLUS:
            y = in + 1;
            break;
        case ENG_LAYER_LOG_SOFTMAX:
            y = 2 * in + log(last) + 1;
            break;
        case ENG_LAYER_BATCHNORM1D:
        case ENG_LAYER_BATCHNORM2D: {
            /* per channel |w| / sqrt(var + eps), computed as the kernel would */
            const eng_tensor *t = NULL;
            size_t nl = strlen(L->name);
            for (int k = L->tensor0; k < L->tensor0 + L->n_tensors; k++)
                if (!strncmp(m->tensors[k].name, L->name, nl) &&
                    !strcmp(m->tensors[k].name + nl, ".running_var"))
                    t = &m->tensors[k];
            double w = L->affine ? fuzz_tensor_max(m, i, "weight") : 1, scale = 0;
            for (size_t c = 0; t && c < t->numel; c++) {
                double d = (double)m->params[t->off + c] + L->eps;
                if (!(d > 0)) {
                    scale = INFINITY;
                    break;
                }
                if (w / sqrt(d) > scale) scale = w / sqrt(d);
            }
            y = (in + fuzz_tensor_max(m, i, "running_mean")) * scale +
                fuzz_tensor_max(m, i, "bias");
            break;
        }
        case ENG_LAYER_LAYERNORM:
            y = sqrt(last) * (L->affine ? fuzz_tensor_max(m, i, "weight") : 1) +
                fuzz_tensor_max(m, i, "bias");
            if (in * in * last > *inter) *inter = in * in * last;
            break;
        case ENG_LAYER_EMBEDDING:
            y = fuzz_tensor_max(m, i, "weight");
            break;
        case ENG_LAYER_POSEMB:
            y = in + fuzz_tensor_max(m, i, "weight");
            break;
        case ENG_LAYER_ATTENTION: {
            double q = in * fuzz_tensor_max(m, i, "in_proj_weight") * last +
                       fuzz_tensor_max(m, i, "in_proj_bias");
            double hd = last / L->heads;
            if (q * q * sqrt(hd) > *inter) *inter = q * q * sqrt(hd);
            if (q > *inter) *inter = q;
            y = q * fuzz_tensor_max(m, i, "out_proj.weight") * last +
                fuzz_tensor_max(m, i, "out_proj.bias");
            break;
        }
        case ENG_LAYER_ADD:
            y = in + (L->src[1] == ENG_SRC_INPUT ? xmax : b[L->src[1]]);
            break;
        default: /* relu, gelu, silu, dropout, pools, flatten, seq_mean: |y| <= max |x| */
            break;
        }
        if (isnan(y)) y = INFINITY;
        b[i] = y;
        if (y > *inter) *inter = y;
    }
    out = b[m->n_layers - 1];
    free(b);
    return out;
}

/* A loaded model is usable: the check of inputs accepts valid ones (token
 * ids for a model whose first layer is an embedding) and refuses others,
 * and a forward pass over a few valid rows gives outputs within the bound
 * the weights allow (so finite whenever that bound is). */
static void fuzz_check_forward(const eng_model *m, const char *path) {
    enum { N = 3 };
    eng_memory mem;
    eng_plan_memory(m, N, ENG_F32, &mem);
    if (mem.total > ((size_t)64 << 20)) return; /* too slow for a fuzzer */
    size_t D = (size_t)m->in_features;
    float *x = malloc(N * D * sizeof *x);
    for (size_t k = 0; k < N * D; k++)
        x[k] = m->token_input ? (float)((k * 7 + k / D) % (size_t)m->vocab)
                              : -1.0f + 3.0f * (float)(k * 37 % 101) / 100.0f;
    at_err e = {0};
    if (eng_model_check_input(m, x, N, &e) != 0)
        fuzz_fail("eng_model_check_input refused valid inputs", path, e.msg);
    if (m->token_input) {
        static const float bad[] = {-1.0f, 0.5f, NAN, 1e30f};
        float keep = x[D + D / 2];
        for (int k = 0; k < 5; k++) {
            x[D + D / 2] = k < 4 ? bad[k] : (float)m->vocab;
            at_err_clear(&e);
            if (eng_model_check_input(m, x, N, &e) != AT_EUSER || !e.msg[0])
                fuzz_fail("eng_model_check_input accepted an invalid token id", path, NULL);
        }
        x[D + D / 2] = keep;
    }
    double inter, bound = fuzz_forward_bound(m, m->token_input ? m->vocab - 1 : 2.0, &inter);
    eng_workspace ws;
    eng_workspace_init(&ws, m, N, ENG_F32);
    const float *y = eng_model_forward(m, &ws, x, N);
    double ymax = 0;
    for (size_t k = 0; k < (size_t)N * (size_t)m->out_features; k++)
        if (!(fabs((double)y[k]) <= ymax)) ymax = fabs((double)y[k]);
    if (getenv("FUZZ_H5_VERBOSE") && strcmp(getenv("FUZZ_H5_VERBOSE"), "0") != 0)
        fprintf(stderr, "  forward: max |output| %g, bound %g (intermediates %g)%s\n", ymax,
                bound, inter, bound < 1e15 && inter < 1e30 ? "" : ": not checked");
    if (bound < 1e15 && inter < 1e30)
        for (size_t k = 0; k < (size_t)N * (size_t)m->out_features; k++)
            if (!isfinite(y[k]) || fabs((double)y[k]) > bound * 1.01 + 1e-4) {
                char d[160];
                snprintf(d, sizeof d, "output %zu is %g; the weights bound |outputs| by %g",
                         k, (double)y[k], bound);
                fuzz_fail("forward pass of a loaded model out of bounds", path, d);
            }
    eng_workspace_free(&ws);
    free(x);
}

/* A loaded model round-trips: its canonical architecture text parses back
 * to itself (arch.h's fixed point), and saving it and loading the copy
 * gives the same weights and the hash h5_model_hash promised. */
static void fuzz_check_roundtrip(const eng_model *m, const char *path) {
    char *text = arch_emit(m);
    eng_layer *specs = calloc(ENG_MAX_LAYERS, sizeof *specs);
    int n = 0;
    at_err e = {0};
    if (arch_parse_text(text, "emitted", 0, specs, ENG_MAX_LAYERS, &n, &e) != 0)
        fuzz_fail("the emitted architecture does not parse", path, e.msg);
    char *text2 = arch_emit_specs(specs, n, "");
    if (n != m->n_layers || strcmp(text, text2) != 0)
        fuzz_fail("emit(parse(emit(architecture))) differs", path, text);
    free(text2);
    free(specs);
    free(text);

    char copy[600], hash[65];
    snprintf(copy, sizeof copy, "%s.copy.h5", path);
    h5_model_info info, info2;
    h5_model_hash(m, hash);
    if (h5_model_save(copy, m, &info, NULL, 0, &e) != 0)
        fuzz_fail("cannot save a loaded model", path, e.msg);
    eng_model m2;
    if (h5_model_load(copy, &m2, &info2, &e) != 0)
        fuzz_fail("a saved model does not load", path, e.msg);
    remove(copy);
    if (strcmp(info.sha256, hash) || strcmp(info2.sha256, hash))
        fuzz_fail("saved model: content_sha256 differs from h5_model_hash", path, NULL);
    if (m2.n_params != m->n_params || m2.n_tensors != m->n_tensors ||
        memcmp(m2.params, m->params, m->n_params * sizeof *m->params) != 0)
        fuzz_fail("saved and reloaded model differs", path, NULL);
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m2.tensors[i].name, m->tensors[i].name) != 0)
            fuzz_fail("saved and reloaded model: tensor names differ", path, m->tensors[i].name);
    eng_model_free(&m2);
}

/* Successful loads since the start (fuzz_h5 reports the fraction). */
static long fuzz_models_loaded, fuzz_models_tried;

static void fuzz_check_model(const char *path) {
    eng_model m;
    h5_model_info info;
    at_err e = {0};
    fuzz_ids ids = fuzz_count_ids();
    int rc = h5_model_load(path, &m, &info, &e);
    fuzz_say("h5_model_load", rc, &e);
    fuzz_check_ids(&ids, "h5_model_load", path);
    fuzz_models_tried++;
    if (rc != 0) {
        fuzz_check_error(rc, &e, "h5_model_load", path);
        const unsigned char *b = (const unsigned char *)&m;
        for (size_t i = 0; i < sizeof m; i++)
            if (b[i]) fuzz_fail("model not zeroed after a failed load", path, e.msg);
        return;
    }
    fuzz_models_loaded++;
    int64_t D = 1;
    int same_shape = info.n_input_dims == m.in_ndim;
    for (int i = 0; i < info.n_input_dims; i++) {
        D *= info.input_shape[i];
        if (same_shape && info.input_shape[i] != m.in_shape[i]) same_shape = 0;
    }
    if (m.n_layers < 1 || !m.params || m.in_features != D || m.out_features != info.n_classes ||
        !same_shape || strlen(info.sha256) != 64 ||
        strspn(info.sha256, "0123456789abcdef") != 64)
        fuzz_fail("loaded model inconsistent with its info", path, NULL);
    for (size_t i = 0; i < m.n_params; i++)
        if (!isfinite(m.params[i])) fuzz_fail("loaded model has a non-finite weight", path, NULL);
    fuzz_check_forward(&m, path);
    fuzz_check_roundtrip(&m, path);
    fuzz_check_ids(&ids, "h5_model_load and save", path);
    eng_model_free(&m);
}

static void fuzz_check_reader(const char *path, const char *split, unsigned pick) {
    h5_reader *r = NULL;
    h5_dataset_info info;
    at_err e = {0};
    fuzz_ids ids = fuzz_count_ids();
    int rc = h5_reader_open(&r, path, split, &info, &e);
    fuzz_say(split, rc, &e);
    if (rc != 0) {
        fuzz_check_ids(&ids, "h5_reader_open", path);
        fuzz_check_error(rc, &e, "h5_reader_open", path);
        if (r) fuzz_fail("h5_reader_open failed but returned a reader", path, e.msg);
        return;
    }
    int64_t prod = 1;
    for (int i = 0; i < info.n_feat_dims; i++) prod *= info.feat_shape[i];
    if (!r || info.n_rows < 0 || info.n_feat_dims < 1 || info.n_feat_dims > 2 ||
        info.n_features < 1 || prod != info.n_features || info.n_classes < 1 ||
        info.n_classes > H5IO_MAX_CLASSES)
        fuzz_fail("h5_reader_open: inconsistent dataset info", path, NULL);
    /* a few rows, sized exactly */
    int64_t n = info.n_rows, D = info.n_features;
    if (n > 0 && D <= (1 << 20)) {
        int64_t r0 = (int64_t)(pick % 7) % n, r1 = r0 + 1 + (int64_t)(pick / 7 % 4);
        if (r1 > n) r1 = n;
        if ((r1 - r0) * D <= (1 << 20)) {
            float *x = malloc((size_t)((r1 - r0) * D) * sizeof *x);
            int32_t *y = malloc((size_t)(r1 - r0) * sizeof *y);
            at_err e2 = {0};
            rc = h5_reader_read(r, r0, r1, x, y, &e2);
            fuzz_say("h5_reader_read", rc, &e2);
            if (rc) fuzz_check_error(rc, &e2, "h5_reader_read", path);
            free(y);
            free(x);
        }
    }
    h5_reader_close(r);
    fuzz_check_ids(&ids, "h5_reader_open/read/close", path);

    /* the mean over the split, with the right and a wrong feature count */
    if (n <= (1 << 16) && D <= (1 << 16) && n * D <= (1 << 22)) {
        for (int wrong = 0; wrong < 2; wrong++) {
            int64_t nf = D + wrong;
            double *mean = malloc((size_t)nf * sizeof *mean);
            at_err e3 = {0};
            rc = h5_dataset_mean(path, split, mean, nf, &e3);
            fuzz_say(wrong ? "h5_dataset_mean (wrong D)" : "h5_dataset_mean", rc, &e3);
            fuzz_check_ids(&ids, "h5_dataset_mean", path);
            if (rc) {
                fuzz_check_error(rc, &e3, "h5_dataset_mean", path);
            } else {
                if (wrong) fuzz_fail("h5_dataset_mean accepted a wrong feature count", path, NULL);
                for (int64_t j = 0; j < nf; j++)
                    if (!isfinite(mean[j]))
                        fuzz_fail("h5_dataset_mean: non-finite mean", path, NULL);
            }
            free(mean);
        }
    }
}

static void fuzz_check_class_names(const char *path) {
    char *names[8];
    fuzz_ids ids = fuzz_count_ids();
    int n = h5_dataset_class_names(path, names, 8);
    fuzz_check_ids(&ids, "h5_dataset_class_names", path);
    if (n < 0 || n > 8) fuzz_fail("h5_dataset_class_names: count out of range", path, NULL);
    for (int i = 0; i < n; i++) free(names[i]);
}

/* Every loader on path; pick chooses the split and the rows read. */
static void fuzz_check_file(const char *path, unsigned pick) {
    static int quiet = 0;
    if (!quiet) {
        h5io_quiet();
        quiet = 1;
    }
    fuzz_check_model(path);
    fuzz_check_reader(path, FUZZ_SPLITS[pick % FUZZ_N_SPLITS], pick / FUZZ_N_SPLITS);
    fuzz_check_class_names(path);
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
        fuzz_fail("an HDF5 file or object is still open after the loaders", path, NULL);
}

/* A per-process scratch file in /dev/shm (or $TMPDIR, /tmp). */
static const char *fuzz_scratch_path(void) {
    static char path[512];
    if (!path[0]) {
        const char *dir = "/dev/shm";
        FILE *probe = NULL;
        char test[512];
        snprintf(test, sizeof test, "%s/attrib-fuzz-probe-%ld", dir, (long)getpid());
        if ((probe = fopen(test, "wb")) != NULL) {
            fclose(probe);
            remove(test);
        } else {
            dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        }
        snprintf(path, sizeof path, "%s/attrib-fuzz-%ld.h5", dir, (long)getpid());
    }
    return path;
}

#endif
