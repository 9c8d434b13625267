/* fuzz_h5.c — structure-aware libFuzzer target for the model and dataset
 * loaders of io/h5io.c (h5_model_load, h5_reader_open/read, h5_dataset_mean,
 * h5_dataset_class_names).
 *
 * HDF5 1.10.8 itself crashes on some malformed bytes, so this target never
 * hands HDF5 raw bytes: the input is a *recipe*, and the harness builds the
 * file it describes through the HDF5 API (in /dev/shm), then runs every
 * loader on it and checks what h5io.h promises (fuzz_h5_check.h: no crash,
 * refusals are AT_EUSER/AT_EIO naming the file, a loaded model runs forward
 * within the bounds its weights allow, saves and reloads to itself). Every
 * byte string is a valid recipe; missing bytes read as 0.
 *
 * Recipe: byte 0 picks the split and the rows the reader reads; then up to
 * 48 operations, each an opcode byte and its arguments:
 *   0 dataset    path, type, rank, layout, fill, value mode, special value,
 *                its index, dims, (value bytes)
 *   1 group      path
 *   2 attribute  object, name, kind of value, values
 *   3 arch       a model file, format version 2: the `architecture`
 *                attribute, a YAML layer list made to chain from an input
 *                shape (flat, image, token ids, sequence; every layer kind
 *                of engine.h, names, `input`/`inputs` references, defaults
 *                written or left out, flow or block style), with at most
 *                one damage (an unknown, foreign, missing, duplicate or
 *                out-of-range key, a wrong type, a duplicate or invalid
 *                name, a bad reference, `residual` or an unknown kind,
 *                shapes that do not chain, more than 2^28 parameters, more
 *                than 512 layers, cut text, inserted syntax, a replaced or
 *                > 4 MiB text; damage byte % 8 == 7), in one of several
 *                attribute encodings; then (unless told not to) a fresh
 *                /state_dict and the root attributes, right, so that the
 *                file loads (as ops 4 and 5 with all-zero arguments)
 *   4 weights    /state_dict tensors of the last architecture: PyTorch names
 *                and shapes, as float32 (LE, BE), float64, float16, long
 *                double or int32, contiguous, chunked+deflate or compact;
 *                per tensor left out, misshapen, transposed, scalar, a
 *                group, a soft link, a NaN/Inf/huge value; an extra tensor;
 *                /state_dict a dataset
 *   5 model      root attributes format, format_version (2, 1, others, as
 *                float or string), input_shape, n_classes, and what
 *                content_sha256 will be: right (computed at the end over
 *                the architecture text and the tensors as stored, the way
 *                the loader does), one digit wrong, upper case, junk, none
 *   6 data attrs format, format_version, class_names (0 to 5,000 names)
 *   7 link       soft, hard or external link; 8 unlink
 * Dimensions are mostly 0..32, sometimes 784, 65536, 2^31, 2^32+1, 2^40,
 * 2^62, 2^63+1 (chunked, never written). Values: ramps, bytes of the input,
 * NaN, +-Inf, 1e39, -1, 2^31. FUZZ_H5_VERBOSE=1 prints each operation and
 * the architecture; FUZZ_H5_KEEP=FILE keeps the last file built (seeds for
 * fuzz_h5_raw). At exit it prints how many model files loaded.
 * tests/fuzz/make_h5_seeds.py writes the seed recipes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hdf5.h>

#include "core.h"
#include "fuzz_h5_check.h"

/* ------------------------------------------------------------ the reader */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} rd;

static unsigned byte(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static int more(const rd *r) { return r->i < r->n; }

static int verbose = -1;
#define SAY(...)                                                                                   \
    do {                                                                                           \
        if (verbose) fprintf(stderr, __VA_ARGS__);                                                 \
    } while (0)

/* ------------------------------------------------------------- vocabulary */

static const char *const PATHS[] = {"test",
                                    "train",
                                    "test/images",
                                    "test/labels",
                                    "train/images",
                                    "train/labels",
                                    "architecture",
                                    "architecture/layers",
                                    "state_dict",
                                    "state_dict/layers.0.weight",
                                    "state_dict/layers.0.bias",
                                    "state_dict/layers.1.weight",
                                    "state_dict/layers.2.weight",
                                    "state_dict/layers.2.bias",
                                    "x",
                                    "test/x",
                                    "a/b/c",
                                    "test/images/x"};
enum { N_PATHS = sizeof PATHS / sizeof PATHS[0] };

static const char *const ATTRS[] = {"format",    "format_version", "input_shape",
                                    "n_classes", "content_sha256", "class_names",
                                    "source",    "description",    "architecture"};
enum { N_ATTRS = sizeof ATTRS / sizeof ATTRS[0] };

static const char *const STRS[] = {
    "attrib-model",
    "attrib-dataset",
    "",
    "x",
    "linear",
    "relu",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF",
    "0123456789abcdef",
    "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "- {kind: relu}\n",
    "- {kind: linear, out_features: 2}\n",
    "[{kind: flatten}, {kind: linear, out_features: 10}]",
    "{kind: relu}"};
enum { N_STRS = sizeof STRS / sizeof STRS[0] };

static const hsize_t BIG_DIMS[] = {64,
                                   100,
                                   784,
                                   1000,
                                   4096,
                                   65536,
                                   1u << 20,
                                   2147483647ULL,
                                   2147483648ULL,
                                   4294967297ULL,
                                   1ULL << 40,
                                   1ULL << 62,
                                   (1ULL << 63) + 1,
                                   3037000500ULL};
enum { N_BIG = sizeof BIG_DIMS / sizeof BIG_DIMS[0] };

static const double SPECIAL[] = {0,      1,     -1,       0.5,       255,          1e39,
                                 -1e39,  NAN,   INFINITY, -INFINITY, 2147483648.0, -2147483649.0,
                                 9.3e18, 1e-45, 3,        10,        784,          28,
                                 1024,   1025,  65,       2.5};
enum { N_SPECIAL = sizeof SPECIAL / sizeof SPECIAL[0] };

static const int64_t SPECIAL_INT[] = {0,
                                      1,
                                      2,
                                      10,
                                      784,
                                      28,
                                      256,
                                      -1,
                                      1024,
                                      1025,
                                      65,
                                      INT32_MAX,
                                      (int64_t)INT32_MAX + 1,
                                      INT64_MAX,
                                      INT64_MIN,
                                      3037000500LL,
                                      100000,
                                      2000000000};
enum { N_SPECIAL_INT = sizeof SPECIAL_INT / sizeof SPECIAL_INT[0] };

/* ---------------------------------------------------------- the builder */

#define GEN_MAX 600 /* layers op 3 writes at most (ENG_MAX_LAYERS is 512) */
#define T_MAX (4 * GEN_MAX)

typedef struct {
    int nd, d[3];
} gshape;

/* A tensor the last architecture implies: PyTorch's name and shape, and
 * its values as stored (NULL unless written as a float dataset of this
 * shape). */
typedef struct {
    char name[ENG_NAME_MAX + 32];
    int ndim;
    hsize_t shape[4];
    int var;    /* a batch norm running_var: written positive */
    float *val; /* (numel) */
} gtensor;

enum { HASH_NONE = 0, HASH_RIGHT, HASH_WRONG, HASH_UPPER, HASH_JUNK, HASH_ABSENT };

typedef struct {
    hid_t file, lcpl;
    int big;    /* a dimension above 4096 was used */
    char *arch; /* the last architecture text, as stored; NULL = none */
    int in_ndim;
    int64_t in_shape[3];
    int64_t n_classes; /* the output elements of the model it describes */
    int n_t;
    gtensor *t; /* (T_MAX) its tensors */
    int hash_mode; /* HASH_*: content_sha256, written last */
    unsigned hash_salt;
} builder;

static hsize_t dim(rd *r, builder *B) {
    unsigned v = byte(r);
    if (v < 224) return v % 33;
    hsize_t d = BIG_DIMS[(v - 224) % N_BIG];
    if (d > 4096) B->big = 1;
    return d;
}

typedef enum { TC_NUM = 1, TC_VSTR, TC_FSTR, TC_OTHER } tclass;

/* A file type chosen by v; caller closes. */
static hid_t make_type(unsigned v, tclass *tc) {
    hid_t t = -1;
    *tc = TC_NUM;
    switch (v % 22) {
    case 0:
    case 1:
    case 2:
        t = H5Tcopy(H5T_IEEE_F32LE);
        break;
    case 3:
        t = H5Tcopy(H5T_IEEE_F32BE);
        break;
    case 4:
        t = H5Tcopy(H5T_IEEE_F64LE);
        break;
    case 5:
        t = H5Tcopy(H5T_IEEE_F64BE);
        break;
    case 6: /* IEEE half precision, as h5py writes float16 */
        t = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(t, 15, 10, 5, 0, 10);
        H5Tset_size(t, 2);
        H5Tset_ebias(t, 15);
        break;
    case 7:
        t = H5Tcopy(H5T_NATIVE_LDOUBLE);
        break;
    case 8:
        t = H5Tcopy(H5T_STD_I8LE);
        break;
    case 9:
        t = H5Tcopy(H5T_STD_U8LE);
        break;
    case 10:
        t = H5Tcopy(H5T_STD_I16BE);
        break;
    case 11:
    case 12:
        t = H5Tcopy(H5T_STD_I32LE);
        break;
    case 13:
        t = H5Tcopy(H5T_STD_I32BE);
        break;
    case 14:
        t = H5Tcopy(H5T_STD_I64LE);
        break;
    case 15:
        t = H5Tcopy(H5T_STD_U64BE);
        break;
    case 16:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        *tc = TC_VSTR;
        break;
    case 17:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
        *tc = TC_FSTR;
        break;
    case 18:
        t = H5Tcreate(H5T_COMPOUND, 8);
        H5Tinsert(t, "a", 0, H5T_IEEE_F32LE);
        H5Tinsert(t, "b", 4, H5T_STD_I32LE);
        *tc = TC_OTHER;
        break;
    case 19: {
        t = H5Tenum_create(H5T_NATIVE_INT);
        int a = 0, b = 1;
        H5Tenum_insert(t, "A", &a);
        H5Tenum_insert(t, "B", &b);
        *tc = TC_OTHER;
        break;
    }
    case 20: {
        hsize_t two = 2;
        t = H5Tarray_create2(H5T_IEEE_F32LE, 1, &two);
        *tc = TC_OTHER;
        break;
    }
    default:
        t = H5Tcopy(H5T_STD_B8LE);
        *tc = TC_OTHER;
        break;
    }
    return t;
}

/* n doubles by mode: zeros, ramp, input bytes, labels, ramp + one special,
 * all one special. */
static double *make_values(rd *r, size_t n, unsigned mode, unsigned sp, unsigned at) {
    double *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        switch (mode % 6) {
        case 0:
            v[i] = 0;
            break;
        case 2:
            v[i] = byte(r) / 255.0;
            break;
        case 3:
            v[i] = (double)(i % 10);
            break;
        case 5:
            v[i] = SPECIAL[sp % N_SPECIAL];
            break;
        default:
            v[i] = (double)(i % 256) / 255.0;
            break;
        }
    }
    if (mode % 6 == 4 && n) v[at % n] = SPECIAL[sp % N_SPECIAL];
    return v;
}

static void op_dataset(rd *r, builder *B) {
    const char *path = PATHS[byte(r) % N_PATHS];
    tclass tc;
    hid_t type = make_type(byte(r), &tc);
    unsigned rk = byte(r) % 6, lay = byte(r), fill = byte(r), mode = byte(r);
    unsigned sp = byte(r), at = byte(r); /* the special value and where */
    hsize_t dims[4] = {0}, maxd[4], chunk[4];
    int rank = rk >= 1 && rk <= 4 ? (int)rk : 0;
    size_t nel = 1;
    int big = 0;
    for (int i = 0; i < rank; i++) {
        dims[i] = dim(r, B);
        if (dims[i] > 4096) big = 1;
        nel = dims[i] && nel > ((size_t)1 << 40) / dims[i] ? (size_t)1 << 41 : nel * dims[i];
        maxd[i] = (lay & 4) ? H5S_UNLIMITED : dims[i];
        unsigned c = (lay >> 3) % 8 + 1;
        chunk[i] = dims[i] && dims[i] < c ? dims[i] : c;
    }
    hid_t space = rk == 5 ? H5Screate(H5S_NULL)
                  : rank  ? H5Screate_simple(rank, dims, maxd)
                          : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int layout = lay % 4;
    if (big || (lay & 4)) layout = layout == 3 ? 3 : 1; /* huge or extendible: chunked */
    if (rank && (layout == 1 || layout == 3)) {
        H5Pset_chunk(dcpl, rank, chunk);
        if (layout == 3) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, 1);
        }
    } else if (layout == 2) {
        H5Pset_layout(dcpl, H5D_COMPACT);
    }
    if (tc == TC_NUM && (fill & 1)) {
        double f = SPECIAL[(fill >> 1) % N_SPECIAL];
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &f);
    }
    hid_t d = H5Dcreate2(B->file, path, type, space, B->lcpl, dcpl, H5P_DEFAULT);
    SAY("dataset %s class %d rank %d dims %llu %llu %llu %llu layout %d mode %u -> %s\n", path,
        (int)tc, rk == 5 ? -1 : rank, (unsigned long long)dims[0], (unsigned long long)dims[1],
        (unsigned long long)dims[2], (unsigned long long)dims[3], layout, mode % 6,
        d < 0 ? "failed" : "ok");
    if (d >= 0 && !big && rk != 5 && nel <= (1 << 16) && mode % 6 != 0) {
        if (tc == TC_NUM) {
            double *v = make_values(r, nel, mode, sp, at);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            free(v);
        } else if (tc == TC_VSTR) {
            const char **s = malloc((nel ? nel : 1) * sizeof *s);
            for (size_t i = 0; i < nel; i++) s[i] = STRS[(i + mode) % N_STRS];
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
            free(s);
        } else if (tc == TC_FSTR) {
            char *s = calloc(nel ? nel : 1, 8);
            for (size_t i = 0; i < nel; i++) memcpy(s + 8 * i, "0.5", 3);
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
            free(s);
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
}

static void op_group(rd *r, builder *B) {
    const char *path = PATHS[byte(r) % N_PATHS];
    hid_t g = H5Gcreate2(B->file, path, B->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    SAY("group %s -> %s\n", path, g < 0 ? "failed" : "ok");
    if (g >= 0) H5Gclose(g);
}

/* Write attribute name on obj (replacing one of that name). */
static void put_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return;
    if (buf) H5Awrite(a, type, buf);
    H5Aclose(a);
}

static hid_t vstr_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static void attr_str(hid_t obj, const char *name, const char *value) {
    hid_t t = vstr_type(), s = H5Screate(H5S_SCALAR);
    put_attr(obj, name, t, s, &value);
    H5Sclose(s);
    H5Tclose(t);
}

static void attr_i64v(hid_t obj, const char *name, hid_t ftype, const int64_t *v, int n) {
    hsize_t d = (hsize_t)n;
    hid_t s = n > 0 ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        if (n > 0) H5Awrite(a, H5T_NATIVE_INT64, v);
        H5Aclose(a);
    }
    H5Sclose(s);
}

static void attr_strv(hid_t obj, const char *name, int n, int fixed) {
    hsize_t d = (hsize_t)n;
    hid_t s = n > 0 ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
    char(*buf)[16] = calloc((size_t)(n > 0 ? n : 1), 16);
    const char **ptr = calloc((size_t)(n > 0 ? n : 1), sizeof *ptr);
    for (int i = 0; i < n; i++) {
        snprintf(buf[i], 16, "class %d", i % 100000);
        ptr[i] = buf[i];
    }
    hid_t t;
    if (fixed) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 16);
    } else {
        t = vstr_type();
    }
    put_attr(obj, name, t, s, n > 0 ? (fixed ? (const void *)buf : (const void *)ptr) : NULL);
    H5Tclose(t);
    H5Sclose(s);
    free(ptr);
    free(buf);
}

static void op_attribute(rd *r, builder *B) {
    unsigned o = byte(r);
    const char *objname = o % 4 == 0 ? PATHS[(o / 4) % N_PATHS] : "/";
    hid_t obj = H5Oopen(B->file, objname, H5P_DEFAULT);
    if (obj < 0) obj = H5Oopen(B->file, "/", H5P_DEFAULT);
    const char *name = ATTRS[byte(r) % N_ATTRS];
    unsigned kind = byte(r) % 9, a = byte(r), b = byte(r);
    SAY("attribute %s on %s kind %u\n", name, objname, kind);
    switch (kind) {
    case 0:
        attr_str(obj, name, STRS[a % N_STRS]);
        break;
    case 1: { /* fixed-length string of a bytes, not NUL-terminated */
        size_t len = a % 80 + 1;
        char *s = malloc(len);
        for (size_t i = 0; i < len; i++) s[i] = (char)('a' + (i + b) % 26);
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, len);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        put_attr(obj, name, t, sp, s);
        H5Sclose(sp);
        H5Tclose(t);
        free(s);
        break;
    }
    case 2:
    case 3: { /* integer vector, 0 (null space) to 7 values */
        int n = kind == 2 ? 1 : (int)(a % 8);
        int64_t v[8];
        for (int i = 0; i < 8; i++) v[i] = SPECIAL_INT[(b + (unsigned)i * byte(r)) % N_SPECIAL_INT];
        static const hid_t *const itypes[] = {&H5T_STD_I32LE_g, &H5T_STD_I64LE_g, &H5T_STD_U8LE_g,
                                              &H5T_STD_I16BE_g};
        attr_i64v(obj, name, *itypes[(a >> 3) % 4], v, n);
        break;
    }
    case 4: { /* float scalar or vector */
        double v[4];
        int n = (int)(a % 4) + 1;
        for (int i = 0; i < n; i++) v[i] = SPECIAL[(b + (unsigned)i) % N_SPECIAL];
        hsize_t d = (hsize_t)n;
        hid_t s = H5Screate_simple(1, &d, NULL);
        put_attr(obj, name, H5T_NATIVE_DOUBLE, s, v);
        H5Sclose(s);
        break;
    }
    case 5:
    case 6: { /* string arrays (class_names) */
        static const int counts[] = {0, 1, 2, 3, 10, 1024, 1025, 5000};
        attr_strv(obj, name, counts[a % 8], kind == 6);
        break;
    }
    case 7: { /* a compound scalar */
        hid_t t = H5Tcreate(H5T_COMPOUND, 8), s = H5Screate(H5S_SCALAR);
        H5Tinsert(t, "a", 0, H5T_NATIVE_INT32);
        H5Tinsert(t, "b", 4, H5T_NATIVE_INT32);
        int32_t v[2] = {(int32_t)a, (int32_t)b};
        put_attr(obj, name, t, s, v);
        H5Sclose(s);
        H5Tclose(t);
        break;
    }
    default: { /* 2-D integer attribute */
        hsize_t d[2] = {a % 3 + 1, b % 3 + 1};
        int64_t v[9] = {28, 28, 1, 2, 3, 4, 5, 6, 7};
        hid_t s = H5Screate_simple(2, d, NULL);
        put_attr(obj, name, H5T_NATIVE_INT64, s, v);
        H5Sclose(s);
        break;
    }
    }
    H5Oclose(obj);
}

/* ------------------------------------------------- op 3: architectures */

/* The kinds, as docs/jobs.md spells them (not the engine's table: a name
 * that drifted would make every file with it fail to load). */
static const char *const KIND_NAME[ENG_LAYER_KIND_END] = {
    [ENG_LAYER_LINEAR] = "linear",           [ENG_LAYER_RELU] = "relu",
    [ENG_LAYER_GELU] = "gelu",               [ENG_LAYER_GELU_TANH] = "gelu_tanh",
    [ENG_LAYER_TANH] = "tanh",               [ENG_LAYER_SIGMOID] = "sigmoid",
    [ENG_LAYER_SILU] = "silu",               [ENG_LAYER_SOFTPLUS] = "softplus",
    [ENG_LAYER_CONV2D] = "conv2d",           [ENG_LAYER_MAXPOOL2D] = "maxpool2d",
    [ENG_LAYER_AVGPOOL2D] = "avgpool2d",     [ENG_LAYER_GAP] = "global_avgpool",
    [ENG_LAYER_BATCHNORM1D] = "batchnorm1d", [ENG_LAYER_BATCHNORM2D] = "batchnorm2d",
    [ENG_LAYER_LAYERNORM] = "layernorm",     [ENG_LAYER_EMBEDDING] = "embedding",
    [ENG_LAYER_POSEMB] = "pos_embedding",    [ENG_LAYER_ATTENTION] = "attention",
    [ENG_LAYER_DROPOUT] = "dropout",         [ENG_LAYER_FLATTEN] = "flatten",
    [ENG_LAYER_SOFTMAX] = "softmax",         [ENG_LAYER_LOG_SOFTMAX] = "log_softmax",
    [ENG_LAYER_ADD] = "add",                 [ENG_LAYER_SEQ_MEAN] = "seq_mean",
};

/* Damage op 3 can do to the layer list (one per architecture). */
enum {
    D_NONE,
    D_UNKNOWN_KEY, /* a key no kind has */
    D_FOREIGN_KEY, /* a key of another kind, body/shortcut, input on add */
    D_MISSING,     /* a required key left out (kind, out_features, inputs...) */
    D_RANGE,       /* a value out of its range */
    D_TYPE,        /* a value of the wrong type */
    D_DUP_NAME,    /* an earlier layer's name */
    D_BAD_REF,     /* input naming a later layer, itself, nothing */
    D_KIND,        /* residual (job files only), unknown kinds */
    D_SHAPE,       /* parses, but the shapes do not chain */
    D_HUGE,        /* more parameters than H5IO_MAX_PARAMS */
    D_DUP_KEY,     /* a key given twice */
    D_NAME,        /* a reserved, invalid or too long name */
    D_TRUNC,       /* the text cut short */
    D_INSERT,      /* a fragment of YAML syntax inserted */
    D_TOP,         /* the whole text replaced: empty, a mapping, 2 documents, > 4 MiB */
    N_DMG
};
static const char *const DMG_NAME[N_DMG] = {
    "none",  "unknown key", "foreign key",   "missing key", "range", "type",
    "dup name", "bad ref",  "kind",          "shape",       "huge",  "dup key",
    "name",  "truncated",   "inserted",      "top"};

/* text styles (op 3's style byte) */
enum {
    ST_BLOCK = 1,     /* block mappings instead of one flow mapping a line */
    ST_OMIT = 2,      /* optional keys at their default left out */
    ST_NAMES = 4,     /* every layer named explicitly */
    ST_QUOTE = 8,     /* names double-quoted */
    ST_FLOWSEQ = 16,  /* the whole list as one flow sequence [...] */
    ST_COMMENT = 32,  /* a document marker, comments and blank lines */
    ST_KINDLAST = 64, /* kind written last */
    ST_INPUT = 128,   /* input: written even for the previous layer */
};

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0;
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap2);
    va_end(ap2);
    b->n += (size_t)k;
}

typedef struct {
    const char *key;
    char val[320];
} gkv;

/* One layer as it will be written. */
typedef struct {
    char name[320]; /* the name value as written; "" = none */
    int n;
    gkv kv[20]; /* kind first */
} gitem;

typedef struct {
    rd *r;
    builder *B;
    unsigned sty;
    int dmg, dmg_at, dmg_arg;
    int tokens;                    /* the input is token ids: layer 0 an embedding */
    gshape in;                     /* the model input */
    gshape *out;                   /* (GEN_MAX) each layer's output */
    char (*name)[ENG_NAME_MAX];    /* (GEN_MAX) each layer's name */
} gen;

static void kv_set(gitem *it, const char *key, const char *fmt, ...) {
    if (it->n >= (int)(sizeof it->kv / sizeof it->kv[0])) return;
    gkv *e = &it->kv[it->n++];
    e->key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->val, sizeof e->val, fmt, ap);
    va_end(ap);
}

static int kv_find(const gitem *it, const char *key) {
    for (int i = 0; i < it->n; i++)
        if (!strcmp(it->kv[i].key, key)) return i;
    return -1;
}

static void kv_drop(gitem *it, int i) {
    if (i < 0 || i >= it->n) return;
    memmove(&it->kv[i], &it->kv[i + 1], (size_t)(it->n - i - 1) * sizeof it->kv[0]);
    it->n--;
}

static const char *flag(unsigned v, int on) {
    static const char *const T[] = {"true", "True", "TRUE", "true"};
    static const char *const F[] = {"false", "False", "FALSE", "false"};
    return on ? T[v % 4] : F[v % 4];
}

static void pair_val(gitem *it, const char *key, int h, int w, unsigned as_list) {
    if (h == w && !as_list)
        kv_set(it, key, "%d", h);
    else
        kv_set(it, key, "[%d, %d]", h, w);
}

/* Output length of a window along one axis; 0 when it does not fit. */
static int win_out(int in, int k, int s, int p, int d) {
    int span = d * (k - 1) + 1;
    return in + 2 * p < span ? 0 : (in + 2 * p - span) / s + 1;
}

static int64_t gnumel(const gshape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++) n *= s->d[i];
    return n;
}

static void add_tensor(builder *B, const char *layer, const char *suffix, int var, int nd,
                       int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (B->n_t >= T_MAX) return;
    gtensor *t = &B->t[B->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", layer, suffix);
    t->ndim = nd;
    int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < nd; i++) t->shape[i] = (hsize_t)(d[i] > 0 ? d[i] : 0);
    t->var = var;
}

/* Kinds that can read x (an output of layer src, -1 = the model input). */
static int candidates(const gen *g, const gshape *x, int src, int *c) {
    int n = 0;
    /* relu first: missing recipe bytes read as 0 and make cheap layers */
    static const eng_layer_kind any[] = {
        ENG_LAYER_RELU,   ENG_LAYER_LINEAR,      ENG_LAYER_GELU,    ENG_LAYER_GELU_TANH,
        ENG_LAYER_TANH,   ENG_LAYER_SIGMOID,     ENG_LAYER_SILU,    ENG_LAYER_SOFTPLUS,
        ENG_LAYER_DROPOUT, ENG_LAYER_FLATTEN,    ENG_LAYER_SOFTMAX, ENG_LAYER_LOG_SOFTMAX,
        ENG_LAYER_LAYERNORM, ENG_LAYER_ADD,      ENG_LAYER_LINEAR};
    for (size_t i = 0; i < sizeof any / sizeof any[0]; i++) c[n++] = any[i];
    if (x->nd == 3) {
        c[n++] = ENG_LAYER_CONV2D;
        c[n++] = ENG_LAYER_CONV2D;
        c[n++] = ENG_LAYER_MAXPOOL2D;
        c[n++] = ENG_LAYER_AVGPOOL2D;
        c[n++] = ENG_LAYER_GAP;
        c[n++] = ENG_LAYER_BATCHNORM2D;
    }
    if (x->nd == 1 || x->nd == 2) c[n++] = ENG_LAYER_BATCHNORM1D;
    if (x->nd == 2) {
        c[n++] = ENG_LAYER_POSEMB;
        c[n++] = ENG_LAYER_ATTENTION;
        c[n++] = ENG_LAYER_ATTENTION;
        c[n++] = ENG_LAYER_SEQ_MEAN;
    }
    /* an embedding reads token ids, so only the model input */
    if (src == -1 && g->in.nd == 1) c[n++] = ENG_LAYER_EMBEDDING;
    return n;
}

static const char *ref_name(const gen *g, int j) { return j < 0 ? "input" : g->name[j]; }

/* A name needs quotes when YAML would read it as something else. */
static int needs_quotes(const char *s) {
    static const char *const W[] = {"y", "n", "yes", "no", "on", "off", "true", "false",
                                    "null", "Null", "NULL", "True", "False", "~"};
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return 1;
    for (size_t i = 0; i < sizeof W / sizeof W[0]; i++)
        if (!strcasecmp(s, W[i])) return 1;
    return 0;
}

/* Layer i: choose a kind that fits what it reads, its keys, its tensors. */
static void gen_layer(gen *g, int i, gitem *it, gshape *y) {
    rd *r = g->r;
    builder *B = g->B;
    unsigned k = byte(r), a = byte(r), b = byte(r);
    int dm = g->dmg && i == g->dmg_at ? g->dmg : D_NONE;
    memset(it, 0, sizeof *it);

    /* what it reads */
    int src = i - 1, explicit_src = 0;
    if ((k & 0xE0) == 0xE0 && i > 0) {
        src = (int)(a % (unsigned)(i + 1)) - 1;
        explicit_src = 1;
    }
    gshape x = src < 0 ? g->in : g->out[src];
    int c[32], nc = candidates(g, &x, src, c);
    eng_layer_kind kind = (eng_layer_kind)c[(k & 0x1f) % (unsigned)nc];
    if (g->tokens && i == 0) kind = ENG_LAYER_EMBEDDING;
    if (dm == D_SHAPE) { /* a kind that cannot read x, or one made not to fit it */
        static const eng_layer_kind SH[] = {
            ENG_LAYER_CONV2D,      ENG_LAYER_MAXPOOL2D, ENG_LAYER_AVGPOOL2D,
            ENG_LAYER_GAP,         ENG_LAYER_BATCHNORM2D, ENG_LAYER_BATCHNORM1D,
            ENG_LAYER_POSEMB,      ENG_LAYER_ATTENTION, ENG_LAYER_SEQ_MEAN,
            ENG_LAYER_EMBEDDING,   ENG_LAYER_ADD};
        kind = SH[b % (sizeof SH / sizeof SH[0])];
        int fits = ((kind == ENG_LAYER_GAP || kind == ENG_LAYER_BATCHNORM2D) && x.nd == 3) ||
                   (kind == ENG_LAYER_BATCHNORM1D && x.nd <= 2) ||
                   (kind == ENG_LAYER_SEQ_MEAN && x.nd == 2) ||
                   (kind == ENG_LAYER_EMBEDDING && i == 0 && x.nd == 1);
        if (fits) kind = x.nd == 2 ? ENG_LAYER_ATTENTION : ENG_LAYER_CONV2D;
    }
    if (dm == D_HUGE)
        kind = b % 3 == 0 && src == -1 && g->in.nd == 1 ? ENG_LAYER_EMBEDDING
               : b % 3 == 1 && x.nd == 3                ? ENG_LAYER_CONV2D
                                                        : ENG_LAYER_LINEAR;

    /* its name */
    char name[ENG_NAME_MAX];
    snprintf(name, sizeof name, "layers.%d", i);
    if (g->sty & ST_NAMES) {
        static const char *const STEM[] = {"layers.", "fc", "conv", "block.body.", "attn_",
                                           "x-",      "N",  "yes",  "1x",          "true",
                                           "b_",      "L.", "null", "on"};
        const char *stem = STEM[(b >> 4) % (sizeof STEM / sizeof STEM[0])];
        snprintf(name, sizeof name, "%s%d", stem, i);
    }
    int quote = (g->sty & ST_QUOTE) || needs_quotes(name);
    if (g->sty & ST_NAMES) snprintf(it->name, sizeof it->name, quote ? "\"%s\"" : "%s", name);
    memcpy(g->name[i], name, sizeof name);

    kv_set(it, "kind", "%s", KIND_NAME[kind]);
    *y = x;
    int lastd = x.d[x.nd - 1];
    unsigned omit = g->sty & ST_OMIT;
    switch (kind) {
    case ENG_LAYER_LINEAR: {
        int oc = 1 + (int)(a % 12), bias = !(b & 1);
        if (dm == D_HUGE) oc = (b & 4) ? (1 << 30) : (int)((1 << 28) / lastd + 1);
        kv_set(it, "out_features", "%d", oc);
        if (!omit || !bias) kv_set(it, "bias", "%s", flag(b >> 1, bias));
        y->d[y->nd - 1] = oc;
        add_tensor(B, name, "weight", 0, 2, oc, lastd, 0, 0);
        if (bias) add_tensor(B, name, "bias", 0, 1, oc, 0, 0, 0);
        break;
    }
    case ENG_LAYER_CONV2D: {
        if (x.nd != 3) { /* D_SHAPE */
            kv_set(it, "out_channels", "%d", 2);
            kv_set(it, "kernel", "1");
            break;
        }
        int oc = 1 + (int)(b % 6), kk[2], s[2], p[2], d[2], o[2];
        for (int ax = 0; ax < 2; ax++) {
            unsigned v = ax && (b & 0x40) ? a >> 1 : a;
            kk[ax] = 1 + (int)(v % 3);
            s[ax] = 1 + (int)((v >> 3) & 1);
            p[ax] = (int)((v >> 2) & 1);
            d[ax] = 1 + (int)((v >> 4) & (v >> 5) & 1);
            o[ax] = win_out(x.d[1 + ax], kk[ax], s[ax], p[ax], d[ax]);
            if (o[ax] < 1 || dm == D_SHAPE) {
                kk[ax] = dm == D_SHAPE ? x.d[1 + ax] + 3 : 1;
                s[ax] = d[ax] = 1;
                p[ax] = 0;
                o[ax] = x.d[1 + ax];
            }
        }
        if (dm == D_HUGE) oc = 1 << 30;
        kv_set(it, "out_channels", "%d", oc);
        pair_val(it, "kernel", kk[0], kk[1], b & 0x80);
        if (!omit || s[0] != 1 || s[1] != 1) pair_val(it, "stride", s[0], s[1], b & 0x80);
        if (!omit || p[0] || p[1]) pair_val(it, "padding", p[0], p[1], 0);
        if (!omit || d[0] != 1 || d[1] != 1) pair_val(it, "dilation", d[0], d[1], 0);
        int bias = !(b & 0x20);
        if (!omit || !bias) kv_set(it, "bias", "%s", flag(a >> 6, bias));
        *y = (gshape){3, {oc, o[0], o[1]}};
        add_tensor(B, name, "weight", 0, 4, oc, x.d[0], kk[0], kk[1]);
        if (bias) add_tensor(B, name, "bias", 0, 1, oc, 0, 0, 0);
        break;
    }
    case ENG_LAYER_MAXPOOL2D:
    case ENG_LAYER_AVGPOOL2D: {
        int avg = kind == ENG_LAYER_AVGPOOL2D;
        if (x.nd != 3) {
            kv_set(it, "kernel", "2");
            break;
        }
        int kk[2], s[2], p[2], d[2], o[2], given_s = (b >> 2) & 1;
        for (int ax = 0; ax < 2; ax++) {
            unsigned v = ax && (b & 0x40) ? a >> 1 : a;
            kk[ax] = 1 + (int)(v % 3);
            s[ax] = given_s ? 1 + (int)((v >> 2) % 3) : kk[ax];
            p[ax] = (v >> 4) & 1 ? kk[ax] / 2 : 0;
            d[ax] = !avg && ((v >> 5) & (b >> 3) & 1) ? 2 : 1;
            o[ax] = win_out(x.d[1 + ax], kk[ax], s[ax], p[ax], d[ax]);
            if (o[ax] < 1 || dm == D_SHAPE) {
                kk[ax] = dm == D_SHAPE ? x.d[1 + ax] + 2 : 1;
                s[ax] = d[ax] = 1;
                p[ax] = 0;
                o[ax] = x.d[1 + ax];
            }
        }
        pair_val(it, "kernel", kk[0], kk[1], b & 0x80);
        if (!omit || given_s) pair_val(it, "stride", s[0], s[1], 0);
        if (!omit || p[0] || p[1]) pair_val(it, "padding", p[0], p[1], b & 0x80);
        if (!avg && (!omit || d[0] != 1 || d[1] != 1)) pair_val(it, "dilation", d[0], d[1], 0);
        if (avg && (!omit || (b & 1))) kv_set(it, "count_include_pad", "%s", flag(a, !(b & 1)));
        *y = (gshape){3, {x.d[0], o[0], o[1]}};
        break;
    }
    case ENG_LAYER_GAP:
        *y = (gshape){1, {x.d[0], 0, 0}};
        break;
    case ENG_LAYER_BATCHNORM1D:
    case ENG_LAYER_BATCHNORM2D:
    case ENG_LAYER_LAYERNORM: {
        static const char *const EPS[] = {"1e-5", "0.00001", "1.0e-5", "1e-3", "0.1", "1E-5",
                                          "2.5e-6", "1e-5"};
        int affine = !(b & 1), C = kind == ENG_LAYER_LAYERNORM ? lastd : x.d[0];
        if (!omit || (a & 8)) kv_set(it, "eps", "%s", EPS[a % 8]);
        if (!omit || !affine) kv_set(it, "affine", "%s", flag(b >> 1, affine));
        if (affine) {
            add_tensor(B, name, "weight", 0, 1, C, 0, 0, 0);
            add_tensor(B, name, "bias", 0, 1, C, 0, 0, 0);
        }
        if (kind != ENG_LAYER_LAYERNORM) {
            add_tensor(B, name, "running_mean", 0, 1, C, 0, 0, 0);
            add_tensor(B, name, "running_var", 1, 1, C, 0, 0, 0);
        }
        break;
    }
    case ENG_LAYER_EMBEDDING: {
        int V = 2 + (int)(a % 20), E = 1 + (int)(b % 12);
        if (dm == D_HUGE) V = 1 << 30;
        kv_set(it, "num_embeddings", "%d", V);
        kv_set(it, "embedding_dim", "%d", E);
        if (dm == D_SHAPE && i > 0) { /* reads the previous layer, not the ids */
            explicit_src = 1;
            src = i - 1;
        }
        *y = (gshape){2, {x.d[0], E, 0}};
        add_tensor(B, name, "weight", 0, 2, V, E, 0, 0);
        break;
    }
    case ENG_LAYER_POSEMB: {
        int T = x.nd == 2 ? x.d[0] : 1, len = T + (int)(a % 3);
        if (dm == D_SHAPE) len = T - 1 > 0 ? T - 1 : 0;
        kv_set(it, "max_len", "%d", len);
        add_tensor(B, name, "weight", 0, 2, len, lastd, 0, 0);
        break;
    }
    case ENG_LAYER_ATTENTION: {
        int E = lastd, h = 1, nd = 0, divs[16];
        for (int d = 1; d <= E && d <= 64 && nd < 15; d++)
            if (E % d == 0) divs[nd++] = d;
        if (E > 64) divs[nd++] = E;
        h = divs[a % (unsigned)nd];
        if (dm == D_SHAPE) h = E + 1;
        int bias = !(b & 2);
        kv_set(it, "heads", "%d", h);
        if (!omit || (b & 1)) kv_set(it, "causal", "%s", flag(a >> 4, b & 1));
        if (!omit || !bias) kv_set(it, "bias", "%s", flag(a >> 2, bias));
        add_tensor(B, name, "in_proj_weight", 0, 2, 3 * (int64_t)E, E, 0, 0);
        if (bias) add_tensor(B, name, "in_proj_bias", 0, 1, 3 * (int64_t)E, 0, 0, 0);
        add_tensor(B, name, "out_proj.weight", 0, 2, E, E, 0, 0);
        if (bias) add_tensor(B, name, "out_proj.bias", 0, 1, E, 0, 0, 0);
        break;
    }
    case ENG_LAYER_DROPOUT: {
        static const char *const P[] = {"0", "0.1", "0.25", "0.5", "0.9", "0.0", ".5", "5e-1"};
        if (!omit || a % 8 != 3) kv_set(it, "p", "%s", P[a % 8]);
        break;
    }
    case ENG_LAYER_FLATTEN:
        *y = (gshape){1, {(int)gnumel(&x), 0, 0}};
        break;
    case ENG_LAYER_SEQ_MEAN:
        *y = (gshape){1, {lastd, 0, 0}};
        break;
    case ENG_LAYER_ADD: {
        /* the other input: an earlier output of the same shape (or, for
         * D_SHAPE, of another one) */
        int pick = -2, seen = 0;
        for (int j = -1; j < i; j++) {
            gshape o = j < 0 ? g->in : g->out[j];
            int same = o.nd == x.nd && !memcmp(o.d, x.d, (size_t)x.nd * sizeof(int));
            if (same == (dm != D_SHAPE) && j != src && (unsigned)seen++ % 4 == a % 4) pick = j;
        }
        if (pick == -2) pick = src;
        if (b & 1)
            kv_set(it, "inputs", "[%s, %s]", ref_name(g, src), ref_name(g, pick));
        else
            kv_set(it, "inputs", "[%s, %s]", ref_name(g, pick), ref_name(g, src));
        break;
    }
    default: /* pointwise */
        break;
    }
    if (kind != ENG_LAYER_ADD && (explicit_src || (g->sty & ST_INPUT)))
        kv_set(it, "input", "%s", ref_name(g, src));

    /* damage */
    int req = -1;
    for (int e = 1; e < it->n && req < 0; e++)
        if (!strcmp(it->kv[e].key, "out_features") || !strcmp(it->kv[e].key, "out_channels") ||
            !strcmp(it->kv[e].key, "kernel") || !strcmp(it->kv[e].key, "num_embeddings") ||
            !strcmp(it->kv[e].key, "max_len") || !strcmp(it->kv[e].key, "heads") ||
            !strcmp(it->kv[e].key, "inputs"))
            req = e;
    unsigned v = (unsigned)g->dmg_arg;
    int target = it->n > 1 ? 1 + (int)(v % (unsigned)(it->n - 1)) : -1;
    switch (dm) {
    case D_UNKNOWN_KEY: {
        static const char *const K[] = {"strides", "outfeatures", "Kind", "weight", "",
                                        "in_features", "activation", "x y"};
        kv_set(it, K[v % 8], "%d", 2);
        break;
    }
    case D_FOREIGN_KEY: {
        static const char *const K[] = {"heads", "kernel", "body", "shortcut", "eps", "p",
                                        "out_channels", "input", "inputs"};
        const char *key = K[v % 9];
        if (!strcmp(key, "input") && kind != ENG_LAYER_ADD) key = "inputs";
        if (kv_find(it, key) >= 0) key = "count_include_pad";
        if (kv_find(it, key) >= 0) key = "max_len";
        kv_set(it, key, "%s", !strcmp(key, "inputs") ? "[input, input]"
                              : !strcmp(key, "body") ? "[{kind: relu}]"
                              : !strcmp(key, "input") ? "input" : "1");
        break;
    }
    case D_MISSING:
        kv_drop(it, req >= 0 && !(v & 8) ? req : 0);
        break;
    case D_RANGE: {
        static const char *const INT[] = {"0", "-1", "2147483648", "1073741825",
                                          "99999999999999999999999", "-0", "1048577", "00"};
        static const char *const NUM[] = {"0", "-1e-5", "1e999", "1", "-0.1", "2", "1.5", "-0"};
        if (target < 0) {
            kv_set(it, "out_features", "0");
            break;
        }
        gkv *e = &it->kv[target];
        if (!strcmp(e->key, "eps") || !strcmp(e->key, "p"))
            snprintf(e->val, sizeof e->val, "%s", NUM[(v >> 3) % 8]);
        else if (!strcmp(e->key, "bias") || !strcmp(e->key, "affine") ||
                 !strcmp(e->key, "causal") || !strcmp(e->key, "count_include_pad"))
            snprintf(e->val, sizeof e->val, "%s", (v >> 3) & 1 ? "yes" : "1");
        else if (!strcmp(e->key, "input") || !strcmp(e->key, "inputs"))
            snprintf(e->val, sizeof e->val, "%s", "[input]");
        else if ((v >> 3) % 3 == 0)
            snprintf(e->val, sizeof e->val, "[%s, 1]", INT[(v >> 5) % 8]);
        else
            snprintf(e->val, sizeof e->val, "%s", INT[(v >> 5) % 8]);
        break;
    }
    case D_TYPE: {
        static const char *const T[] = {"[1, 2, 3]", "{a: 1}", "\"3\"", "three", "3.5", "~",
                                        "",          "0x10",   "1e3",   "[]",    "!!int 3",
                                        "'2'",       "[[1, 1], 1]", "+"};
        gkv *e = &it->kv[target >= 0 && (v & 1) ? target : 0];
        snprintf(e->val, sizeof e->val, "%s", T[(v >> 1) % 14]);
        break;
    }
    case D_DUP_NAME:
        if (i > 0)
            snprintf(it->name, sizeof it->name, "\"%s\"", g->name[v % (unsigned)i]);
        else
            snprintf(it->name, sizeof it->name, "layers.1");
        break;
    case D_BAD_REF: {
        char later[ENG_NAME_MAX + 16];
        snprintf(later, sizeof later, "layers.%d", i + 1 + (int)(v % 3));
        const char *refs[] = {later, name, "nope", "Input", "\"\"", "layers.-1", "input "};
        const char *ref = refs[(v >> 2) % 7];
        int e = kv_find(it, kind == ENG_LAYER_ADD ? "inputs" : "input");
        if (e >= 0) kv_drop(it, e);
        if (kind == ENG_LAYER_ADD) {
            if (v & 2)
                kv_set(it, "inputs", "[%s, %s, %s]", ref_name(g, src), ref_name(g, src), ref);
            else
                kv_set(it, "inputs", "[%s, %s]", ref_name(g, src), ref);
        } else {
            kv_set(it, "input", "%s", ref);
        }
        break;
    }
    case D_KIND: {
        static const char *const K[] = {"residual", "Linear", "conv3d", "",         "[linear]",
                                        "~",        "linear ", "\"relu\"", "relu\\t", "batchnorm"};
        snprintf(it->kv[0].val, sizeof it->kv[0].val, "%s", K[v % 10]);
        if (v % 10 == 0 && (v & 16)) kv_set(it, "body", "[{kind: relu}]");
        break;
    }
    case D_DUP_KEY:
        if (it->n > 0) kv_set(it, it->kv[target > 0 ? target : 0].key, "%s",
                              it->kv[target > 0 ? target : 0].val);
        break;
    case D_NAME: {
        static const char *const N[] = {"input", "\"a b\"", "\"\"", "LONG", "\"caf\xc3\xa9\"",
                                        "\"x/y\"", "[fc]", "~"};
        const char *nm = N[v % 8];
        if (!strcmp(nm, "LONG")) {
            memset(it->name, 'n', 127 + (v >> 3) % 3);
            it->name[127 + (v >> 3) % 3] = '\0';
        } else {
            snprintf(it->name, sizeof it->name, "%s", nm);
        }
        break;
    }
    default:
        break;
    }
}

/* Append layer it to the text, in the style's form. */
static void emit_item(sbuf *t, const gitem *it, unsigned sty, int first) {
    int flowseq = sty & ST_FLOWSEQ, block = (sty & ST_BLOCK) && !flowseq;
    int n = it->n;
    /* the order: kind first (or last), then name, then the rest */
    const gkv *kv[24];
    int m = 0;
    for (int e = 1; e < n; e++) kv[m++] = &it->kv[e];
    const gkv *kindkv = n > 0 && !strcmp(it->kv[0].key, "kind") ? &it->kv[0] : NULL;
    if (!kindkv && n > 0) kv[m++] = &it->kv[0];
    if (flowseq) sb_add(t, "%s{", first ? "" : ", ");
    else if (block) sb_add(t, "- ");
    else sb_add(t, "- {");
    int k = 0;
#define SEP() (k++ ? (block ? "\n  " : ", ") : "")
    if (kindkv && !(sty & ST_KINDLAST)) sb_add(t, "%skind: %s", SEP(), kindkv->val);
    if (it->name[0]) sb_add(t, "%sname: %s", SEP(), it->name);
    for (int e = 0; e < m; e++) sb_add(t, "%s%s: %s", SEP(), kv[e]->key, kv[e]->val);
    if (kindkv && (sty & ST_KINDLAST)) sb_add(t, "%skind: %s", SEP(), kindkv->val);
#undef SEP
    if (flowseq) sb_add(t, "}");
    else if (block) sb_add(t, "\n");
    else sb_add(t, "}\n");
    if ((sty & ST_COMMENT) && !flowseq) sb_add(t, "%s", block ? "  # a layer\n\n" : "\n");
}

/* Text-level damage: cut, insert syntax, or replace the whole text. */
static void damage_text(sbuf *t, int dmg, unsigned v, unsigned w) {
    if (dmg == D_TRUNC && t->n) {
        t->n = (size_t)(v * 257u + w) % t->n;
        t->s[t->n] = '\0';
    } else if (dmg == D_INSERT) {
        static const char *const F[] = {"{", "}", "]", "[", "\t", ":", "- ", "&a ", "*a",
                                        "!!binary ", "\n  - x", "'", "\"", "\xff", "#",
                                        ",", "? ", "|\n", "%YAML 1.1\n", "\n---\n", "\\",
                                        "\r", "\x01", ("{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"
                                                       "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{")};
        const char *f = F[w % (sizeof F / sizeof F[0])];
        size_t at = t->n ? (size_t)(v * 131u + w) % (t->n + 1) : 0, fl = strlen(f);
        char *s = malloc(t->n + fl + 1);
        memcpy(s, t->s, at);
        memcpy(s + at, f, fl);
        memcpy(s + at + fl, t->s + at, t->n - at + 1);
        free(t->s);
        t->s = s;
        t->n += fl;
        t->cap = t->n + 1;
    } else if (dmg == D_TOP) {
        static const char *const R[] = {"",
                                        "null",
                                        "{}",
                                        "[]",
                                        "- 1",
                                        "kind: linear\nout_features: 2\n",
                                        "- {kind: relu}\n---\n- {kind: relu}\n",
                                        "[{kind: relu}, {kind: tanh}]",
                                        "- &a {kind: relu}\n- *a\n",
                                        "- - {kind: relu}\n",
                                        "BIG",
                                        "- {kind: relu}\n...\n",
                                        "\xef\xbb\xbf- {kind: relu}\n",
                                        ("- {kind: relu, name: layers.0}\n"
                                         "- {kind: relu, name: layers.0}\n")};
        const char *rep = R[v % (sizeof R / sizeof R[0])];
        if (!strcmp(rep, "BIG")) { /* the text past ARCH_TEXT_MAX (4 MiB) */
            size_t pad = ((size_t)4 << 20) + 1 - (w & 1) * 64;
            t->s = realloc(t->s, t->n + pad + 8);
            memset(t->s + t->n, w & 2 ? ' ' : '\n', pad);
            t->n += pad;
            t->s[t->n] = '\0';
            t->cap = t->n + 1;
        } else {
            t->n = 0;
            sb_add(t, "%s", rep);
        }
    }
}

static void free_tensors(builder *B) {
    for (int i = 0; i < B->n_t; i++) {
        free(B->t[i].val);
        B->t[i].val = NULL;
    }
    B->n_t = 0;
}

static hid_t vstr_type_cset(int utf8) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    return t;
}

/* The `architecture` root attribute from B->arch, in the encoding enc
 * picks: mostly a variable-length UTF-8 string as attrib and h5py write. */
static void write_arch_attr(builder *B, unsigned enc) {
    hid_t root = B->file;
    if (H5Aexists(root, "architecture") > 0) H5Adelete(root, "architecture");
    const char *s = B->arch;
    hid_t t = -1, sp = -1;
    switch (enc % 16 < 12 ? 0 : enc % 16 - 11) {
    case 0: /* variable-length UTF-8 */
    case 1: /* variable-length ASCII */
        t = vstr_type_cset(enc % 16 < 12);
        sp = H5Screate(H5S_SCALAR);
        put_attr(root, "architecture", t, sp, &s);
        break;
    case 2:   /* fixed length, NUL-terminated or NUL-padded */
    case 3: {
        size_t len = strlen(s) + (enc % 16 == 14 ? 0 : 1 + (enc >> 4) % 3);
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, len ? len : 1);
        H5Tset_strpad(t, enc % 16 == 14 ? H5T_STR_NULLPAD : H5T_STR_NULLTERM);
        sp = H5Screate(H5S_SCALAR);
        char *buf = calloc(len + 1, 1);
        memcpy(buf, s, strlen(s) < len ? strlen(s) : len);
        put_attr(root, "architecture", t, sp, buf);
        free(buf);
        break;
    }
    default: /* 15: not one string */
        switch ((enc >> 4) % 4) {
        case 0: { /* two strings: the loader reads the first */
            const char *two[2] = {s, "- {kind: relu}\n"};
            hsize_t d = 2;
            t = vstr_type_cset(1);
            sp = H5Screate_simple(1, &d, NULL);
            put_attr(root, "architecture", t, sp, two);
            break;
        }
        case 1: { /* an integer */
            int64_t one = 1;
            attr_i64v(root, "architecture", H5T_STD_I64LE, &one, 1);
            break;
        }
        case 2: /* a group, as version 1 files have */
            if (H5Lexists(root, "architecture", H5P_DEFAULT) <= 0) {
                hid_t g = H5Gcreate2(root, "architecture", H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT);
                if (g >= 0) H5Gclose(g);
            }
            break;
        default: /* none */
            break;
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
}

static void write_weights(builder *B, rd *r, unsigned f, unsigned salt);
static void write_model_attrs(builder *B, unsigned f, unsigned a, unsigned b);

/* op 3: a layer list. Bytes: input family and dims, layer count, text
 * style, damage (kind, layer), attribute encoding, completion; then three
 * bytes per layer. A zero byte means the plain choice (flat input, no
 * damage, a UTF-8 string, complete). Unless told otherwise it also writes
 * a fresh /state_dict and the root attributes that make the file load, so
 * most recipes reach the engine. */
static void op_arch(rd *r, builder *B) {
    unsigned fam = byte(r), db = byte(r), nlb = byte(r), sty = byte(r), dmg = byte(r),
             dat = byte(r), enc = byte(r), cmp = byte(r);
    gen g;
    memset(&g, 0, sizeof g);
    g.r = r;
    g.B = B;
    g.sty = sty;
    g.dmg = dmg % 8 != 7 ? D_NONE : 1 + (int)((dmg >> 3) % (N_DMG - 1));
    g.dmg_arg = (int)(dat >> 2) | (int)(dmg & 0x80);
    switch (fam % 8) {
    case 0:
    case 1:
        g.in = (gshape){1, {1 + (int)(db % 16), 0, 0}};
        break;
    case 2:
    case 3: {
        int h = 1 + (int)((db >> 2) % 8);
        g.in = (gshape){3, {1 + (int)(db % 3), h, fam & 0x80 ? h : 1 + (int)(db >> 5)}};
        break;
    }
    case 4:
        g.in = (gshape){1, {1 + (int)(db % 8), 0, 0}};
        g.tokens = 1;
        break;
    case 5:
        g.in = (gshape){2, {1 + (int)(db % 6), 1 + (int)((db >> 3) % 8), 0}};
        break;
    case 6:
        g.in = (gshape){2, {1 + (int)(db % 4), 1 + (int)((db >> 2) % 8), 0}};
        break;
    default: {
        static const gshape SPECIAL_IN[4] = {
            {3, {1, 28, 28}}, {1, {784, 0, 0}}, {2, {28, 28, 0}}, {3, {3, 32, 32}}};
        g.in = SPECIAL_IN[(fam >> 3) % 4];
        break;
    }
    }
    static const int MANY[16] = {16, 24, 32, 48, 64, 100, 200, 300,
                                 400, 511, 512, 513, 520, 600, 1, 2};
    int nl = nlb < 240 ? 1 + (int)(nlb % 24) : MANY[nlb - 240];
    g.dmg_at = (int)(dat % (unsigned)nl);
    g.out = calloc(GEN_MAX, sizeof *g.out);
    g.name = calloc(GEN_MAX, sizeof *g.name);
    free_tensors(B);
    free(B->arch);
    B->in_ndim = g.in.nd;
    for (int i = 0; i < 3; i++) B->in_shape[i] = g.in.d[i];

    sbuf t = {0};
    sb_add(&t, "%s", (sty & ST_COMMENT) ? "%YAML 1.2\n---\n# layers\n" : "");
    if (sty & ST_FLOWSEQ) sb_add(&t, "[");
    gitem *it = malloc(sizeof *it);
    for (int i = 0; i < nl; i++) {
        gen_layer(&g, i, it, &g.out[i]);
        emit_item(&t, it, sty, i == 0);
    }
    free(it);
    if (sty & ST_FLOWSEQ) sb_add(&t, "]\n");
    if (g.dmg >= D_TRUNC) damage_text(&t, g.dmg, dat, dmg);
    B->arch = t.s;
    B->n_classes = gnumel(&g.out[nl - 1]);
    SAY("arch: %d layers, input %d-D, style %u, damage %s at layer %d, encoding %u:\n%.2000s\n",
        nl, g.in.nd, sty, DMG_NAME[g.dmg], g.dmg_at, enc, B->arch);
    free(g.out);
    free(g.name);
    write_arch_attr(B, enc);
    if (cmp % 4 != 3) {
        write_weights(B, NULL, 2, cmp); /* a fresh /state_dict */
        write_model_attrs(B, 0, 0, 0);
    }
}

/* ---------------------------------------------- op 4: the state dict */

/* The parameter values op 4 writes: small numbers. */
static float param_value(size_t i, unsigned salt) {
    return (float)((int)((i * 2654435761u + salt * 40503u) % 2001) - 1000) / 4000.0f;
}

/* One tensor of the architecture; t picks the damage (0: none). Keeps the
 * values as stored when it is a float dataset of the right shape. */
static void write_tensor(builder *B, hid_t g, gtensor *T, unsigned t, unsigned salt,
                         unsigned layout) {
    free(T->val);
    T->val = NULL;
    if (H5Lexists(g, T->name, H5P_DEFAULT) > 0) H5Ldelete(g, T->name, H5P_DEFAULT);
    unsigned what = t % 40;
    if (what == 24) return; /* left out */
    if (what == 30) {       /* a group */
        hid_t gg = H5Gcreate2(g, T->name, B->lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (gg >= 0) H5Gclose(gg);
        return;
    }
    if (what == 31) { /* a soft link: dangling, or to the first tensor */
        H5Lcreate_soft(t & 64 ? "/state_dict/nowhere" : B->t[0].name, g, T->name, B->lcpl,
                       H5P_DEFAULT);
        return;
    }
    int rank = T->ndim;
    hsize_t dims[5];
    memcpy(dims, T->shape, sizeof T->shape);
    if (what == 25) dims[rank - 1] += 1; /* misshapen */
    if (what == 26) {                    /* a leading dim of 1 */
        memmove(dims + 1, dims, (size_t)rank * sizeof *dims);
        dims[0] = 1;
        rank++;
    }
    if (what == 32 && rank == 2) { /* transposed */
        hsize_t d = dims[0];
        dims[0] = dims[1];
        dims[1] = d;
    }
    size_t nf = 1;
    for (int i = 0; i < rank; i++) nf *= dims[i];
    if (nf > (1 << 20)) return; /* too large to write: reads as missing */
    float *v = malloc((nf ? nf : 1) * sizeof *v);
    for (size_t i = 0; i < nf; i++) {
        v[i] = param_value(i, salt);
        if (T->var && (salt & 0xf0) != 0xf0) v[i] = 0.5f + fabsf(v[i]);
    }
    if (what == 28 && nf) v[(t >> 6) % nf] = (float)SPECIAL[(salt + t) % N_SPECIAL];
    if (what == 29)
        for (size_t i = 0; i < nf; i++) v[i] *= 1e20f;
    hid_t ftype;
    switch (what) {
    case 20: ftype = H5Tcopy(H5T_IEEE_F64LE); break;
    case 21: ftype = H5Tcopy(H5T_IEEE_F32BE); break;
    case 22: /* IEEE half precision */
        ftype = H5Tcopy(H5T_IEEE_F32LE);
        H5Tset_fields(ftype, 15, 10, 5, 0, 10);
        H5Tset_size(ftype, 2);
        H5Tset_ebias(ftype, 15);
        break;
    case 23: ftype = H5Tcopy(H5T_STD_I32LE); break;
    case 33: ftype = H5Tcopy(H5T_NATIVE_LDOUBLE); break;
    default: ftype = H5Tcopy(H5T_IEEE_F32LE); break;
    }
    hid_t space = what == 27 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (layout == 1 && what != 27) {
        hsize_t chunk[5];
        for (int i = 0; i < rank; i++) chunk[i] = dims[i] ? (dims[i] + 1) / 2 : 1;
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 1);
    } else if (layout == 2 && nf * 4 < 32000) {
        H5Pset_layout(dcpl, H5D_COMPACT);
    }
    hid_t d = H5Dcreate2(g, T->name, ftype, space, B->lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        int right = rank == T->ndim && what != 27 && what != 23;
        for (int i = 0; right && i < rank; i++) right = dims[i] == T->shape[i];
        /* as stored: read back through HDF5's conversion, as the loader does */
        if (right && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
            T->val = v;
            v = NULL;
        }
        H5Dclose(d);
    }
    free(v);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(ftype);
}

/* The tensors of the last architecture into /state_dict. r NULL: all of
 * them right; else f and one byte per tensor choose damage. */
static void write_weights(builder *B, rd *r, unsigned f, unsigned salt) {
    if ((f & 2) && H5Lexists(B->file, "state_dict", H5P_DEFAULT) > 0)
        H5Ldelete(B->file, "state_dict", H5P_DEFAULT);
    if ((f >> 4) % 8 == 6 && (salt & 1)) { /* /state_dict a dataset, not a group */
        int64_t one = 1;
        hsize_t d = 1;
        hid_t s = H5Screate_simple(1, &d, NULL);
        hid_t ds = H5Dcreate2(B->file, "state_dict", H5T_STD_I64LE, s, B->lcpl, H5P_DEFAULT,
                              H5P_DEFAULT);
        if (ds >= 0) {
            H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &one);
            H5Dclose(ds);
        }
        H5Sclose(s);
        SAY("state_dict as a dataset\n");
        return;
    }
    if (H5Lexists(B->file, "state_dict", H5P_DEFAULT) <= 0) {
        hid_t g = H5Gcreate2(B->file, "state_dict", B->lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return;
        H5Gclose(g);
    }
    hid_t g = H5Gopen2(B->file, "state_dict", H5P_DEFAULT);
    if (g < 0) return;
    unsigned layout = (f >> 2) % 4 == 3 ? 1 : (f >> 2) % 4 == 2 ? 2 : 0;
    SAY("weights: %d tensors, flags %u, salt %u\n", B->n_t, f, salt);
    for (int i = 0; i < B->n_t; i++)
        write_tensor(B, g, &B->t[i], r && (f & 1) ? byte(r) : 0, salt + (unsigned)i, layout);
    if ((f >> 4) % 8 == 7) { /* an extra tensor */
        static const char *const X[] = {"layers.99.weight", "num_batches_tracked", "a/b",
                                        "layers.0.weight_orig"};
        const char *name = X[salt % 4];
        char nb[ENG_NAME_MAX + 64];
        if (salt % 4 == 1 && B->n_t) { /* what PyTorch's batch norm also saves */
            snprintf(nb, sizeof nb, "%s", B->t[0].name);
            char *dot = strrchr(nb, '.');
            if (dot) snprintf(dot, sizeof nb - (size_t)(dot - nb), ".num_batches_tracked");
            name = nb;
        }
        hsize_t d = 3;
        hid_t s = H5Screate_simple(1, &d, NULL);
        if (H5Lexists(g, name, H5P_DEFAULT) <= 0) {
            hid_t ds = H5Dcreate2(g, name, H5T_IEEE_F32LE, s, B->lcpl, H5P_DEFAULT,
                                  H5P_DEFAULT);
            if (ds >= 0) H5Dclose(ds);
        }
        H5Sclose(s);
    }
    H5Gclose(g);
}

static void op_weights(rd *r, builder *B) {
    unsigned f = byte(r), salt = byte(r);
    write_weights(B, r, f, salt);
}

/* ------------------------------------------- op 5: the root attributes */

/* format, format_version, input_shape, n_classes for the last
 * architecture, and what content_sha256 will be (written last, over what
 * the file then holds). All-zero arguments: everything right. */
static void write_model_attrs(builder *B, unsigned f, unsigned a, unsigned b) {
    hid_t root = B->file;
    SAY("model attributes %u %u %u\n", f, a, b);
    switch (f % 8) {
    case 6:
        if (H5Aexists(root, "format") > 0) H5Adelete(root, "format");
        break;
    case 7:
        attr_str(root, "format", STRS[a % N_STRS]);
        break;
    default:
        attr_str(root, "format", "attrib-model");
        break;
    }
    int64_t ver = 2;
    switch ((f >> 3) % 8) {
    case 4:
        attr_i64v(root, "format_version", H5T_STD_I64LE, &ver, 1);
        break;
    case 5:
        ver = 1;
        attr_i64v(root, "format_version", H5T_STD_I32LE, &ver, 1);
        break;
    case 6:
        ver = SPECIAL_INT[a % N_SPECIAL_INT];
        attr_i64v(root, "format_version", H5T_STD_I32LE, &ver, 1);
        break;
    case 7:
        if (a & 1) {
            attr_str(root, "format_version", "2");
        } else {
            double two = 2.0;
            hid_t s = H5Screate(H5S_SCALAR);
            put_attr(root, "format_version", H5T_IEEE_F64LE, s, &two);
            H5Sclose(s);
        }
        break;
    default:
        attr_i64v(root, "format_version", H5T_STD_I32LE, &ver, 1);
        break;
    }
    int64_t shape[5];
    int ns = B->in_ndim;
    memcpy(shape, B->in_shape, sizeof B->in_shape);
    switch (b % 8) {
    case 5: /* flattened */
        ns = 1;
        shape[0] = B->in_shape[0] * (B->in_ndim > 1 ? B->in_shape[1] : 1) *
                   (B->in_ndim > 2 ? B->in_shape[2] : 1);
        break;
    case 6:
        if (H5Aexists(root, "input_shape") > 0) H5Adelete(root, "input_shape");
        ns = -1;
        break;
    case 7:
        ns = (int)(a % 5);
        for (int i = 0; i < ns; i++) shape[i] = SPECIAL_INT[(a / 5 + (unsigned)i * b) % N_SPECIAL_INT];
        break;
    default:
        break;
    }
    if (ns >= 0) attr_i64v(root, "input_shape", b & 8 ? H5T_STD_I32LE : H5T_STD_I64LE, shape, ns);
    int64_t nc = B->n_classes;
    switch ((b >> 4) % 8) {
    case 6:
        nc = SPECIAL_INT[a % N_SPECIAL_INT];
        attr_i64v(root, "n_classes", H5T_STD_I64LE, &nc, 1);
        break;
    case 7: {
        double x = (double)nc + 0.25;
        hid_t s = H5Screate(H5S_SCALAR);
        put_attr(root, "n_classes", H5T_IEEE_F64LE, s, &x);
        H5Sclose(s);
        break;
    }
    default:
        attr_i64v(root, "n_classes", H5T_STD_I64LE, &nc, 1);
        break;
    }
    switch ((f >> 6) % 4) {
    case 2:
        B->hash_mode = a & 1 ? HASH_WRONG : HASH_UPPER;
        break;
    case 3:
        B->hash_mode = a & 1 ? HASH_JUNK : HASH_ABSENT;
        break;
    default:
        B->hash_mode = HASH_RIGHT;
        break;
    }
    B->hash_salt = a;
}

static void op_model_attrs(rd *r, builder *B) {
    unsigned f = byte(r), a = byte(r), b = byte(r);
    write_model_attrs(B, f, a, b);
}

static int tensor_cmp(const void *x, const void *y) {
    return strcmp((*(const gtensor *const *)x)->name, (*(const gtensor *const *)y)->name);
}

/* content_sha256 as docs/format.md defines it: the architecture text as
 * stored, then each tensor in ascending byte order of its name: the name,
 * a NUL, its float32 bytes (little endian; this host is). */
static void model_hash(const builder *B, char out[65]) {
    at_sha256 s;
    at_sha256_init(&s);
    if (B->arch) at_sha256_update(&s, B->arch, strlen(B->arch));
    const gtensor **order = malloc(((size_t)B->n_t + 1) * sizeof *order);
    int n = 0;
    for (int i = 0; i < B->n_t; i++)
        if (B->t[i].val) order[n++] = &B->t[i];
    qsort(order, (size_t)n, sizeof *order, tensor_cmp);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int k = 0; k < order[i]->ndim; k++) numel *= order[i]->shape[k];
        at_sha256_update(&s, order[i]->name, strlen(order[i]->name) + 1);
        at_sha256_update(&s, order[i]->val, numel * sizeof(float));
    }
    free(order);
    uint8_t dg[32];
    at_sha256_final(&s, dg);
    at_sha256_hex(dg, out);
}

/* The last thing written: content_sha256 over what the file holds now. */
static void finish_hash(builder *B) {
    char hex[65];
    switch (B->hash_mode) {
    case HASH_NONE:
        return;
    case HASH_ABSENT:
        if (H5Aexists(B->file, "content_sha256") > 0) H5Adelete(B->file, "content_sha256");
        return;
    case HASH_JUNK:
        attr_str(B->file, "content_sha256", STRS[6 + B->hash_salt % 4]);
        return;
    default:
        break;
    }
    model_hash(B, hex);
    if (B->hash_mode == HASH_WRONG) hex[B->hash_salt % 64] = hex[B->hash_salt % 64] == '0' ? '1' : '0';
    if (B->hash_mode == HASH_UPPER)
        for (int i = 0; i < 64; i++)
            if (hex[i] >= 'a') hex[i] = (char)(hex[i] - 'a' + 'A');
    SAY("content_sha256 %s (mode %d)\n", hex, B->hash_mode);
    attr_str(B->file, "content_sha256", hex);
}

static void op_data_attrs(rd *r, builder *B) {
    unsigned f = byte(r);
    static const int counts[] = {10, 10, 10, 0, 1, 2, 1024, 1025, 5000, 3};
    SAY("dataset attributes flags %u\n", f);
    attr_str(B->file, "format", "attrib-dataset");
    int64_t one = 1;
    attr_i64v(B->file, "format_version", H5T_STD_I32LE, &one, 1);
    if (f % 11 != 10) attr_strv(B->file, "class_names", counts[f % 10], (f >> 4) & 1);
}

static void op_link(rd *r, builder *B) {
    unsigned k = byte(r);
    const char *a = PATHS[byte(r) % N_PATHS], *b = PATHS[byte(r) % N_PATHS];
    herr_t st = -1;
    switch (k % 4) {
    case 0:
        st = H5Lcreate_soft(b, B->file, a, B->lcpl, H5P_DEFAULT);
        break;
    case 1:
        st = H5Lcreate_hard(B->file, b, B->file, a, B->lcpl, H5P_DEFAULT);
        break;
    case 2:
        st = H5Lcreate_external("/nonexistent/attrib-fuzz.h5", "/x", B->file, a, B->lcpl,
                                H5P_DEFAULT);
        break;
    default:
        st = H5Lcreate_soft(a, B->file, a, B->lcpl, H5P_DEFAULT);
        break; /* a loop */
    }
    SAY("link %u %s -> %s: %s\n", k % 4, a, b, st < 0 ? "failed" : "ok");
}

static void op_unlink(rd *r, builder *B) {
    const char *a = PATHS[byte(r) % N_PATHS];
    herr_t st = H5Ldelete(B->file, a, H5P_DEFAULT);
    SAY("unlink %s: %s\n", a, st < 0 ? "failed" : "ok");
}

static void print_stats(void) {
    fprintf(stderr, "fuzz_h5: %ld of %ld model files loaded (%.1f%%)\n", fuzz_models_loaded,
            fuzz_models_tried, fuzz_models_tried ? 100.0 * fuzz_models_loaded / fuzz_models_tried : 0.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (verbose < 0) {
        const char *v = getenv("FUZZ_H5_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        atexit(print_stats);
    }
    rd r = {data, size, 0};
    const char *path = fuzz_scratch_path();
    unsigned pick = byte(&r);
    builder B;
    memset(&B, 0, sizeof B);
    B.t = calloc(T_MAX, sizeof *B.t);
    B.file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (B.file < 0) {
        fprintf(stderr, "fuzz_h5: cannot create %s\n", path);
        abort();
    }
    B.lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(B.lcpl, 1);
    for (int ops = 0; ops < 48 && more(&r); ops++) {
        switch (byte(&r) % 9) {
        case 0:
            op_dataset(&r, &B);
            break;
        case 1:
            op_group(&r, &B);
            break;
        case 2:
            op_attribute(&r, &B);
            break;
        case 3:
            op_arch(&r, &B);
            break;
        case 4:
            op_weights(&r, &B);
            break;
        case 5:
            op_model_attrs(&r, &B);
            break;
        case 6:
            op_data_attrs(&r, &B);
            break;
        case 7:
            op_link(&r, &B);
            break;
        default:
            op_unlink(&r, &B);
            break;
        }
    }
    finish_hash(&B);
    /* a declared 10^12-row split without class names would be scanned for
     * its largest label: correct, but far too slow for a fuzzer */
    if (B.big && H5Aexists(B.file, "class_names") <= 0) attr_strv(B.file, "class_names", 10, 0);
    free_tensors(&B);
    free(B.t);
    free(B.arch);
    H5Pclose(B.lcpl);
    if (H5Fclose(B.file) < 0) {
        fprintf(stderr, "fuzz_h5: cannot close %s\n", path);
        abort();
    }
    fuzz_check_file(path, pick);
    const char *keep = getenv("FUZZ_H5_KEEP");
    if (keep && *keep) { /* a copy: /dev/shm is another file system */
        FILE *in = fopen(path, "rb"), *out = fopen(keep, "wb");
        char buf[65536];
        for (size_t k; in && out && (k = fread(buf, 1, sizeof buf, in)) > 0;)
            fwrite(buf, 1, k, out);
        if (in) fclose(in);
        if (out) fclose(out);
    }
    remove(path);
    return 0;
}
