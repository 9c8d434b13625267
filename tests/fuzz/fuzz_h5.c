/* fuzz_h5.c — structure-aware libFuzzer target for the model and dataset
 * loaders of io/h5io.c (h5_model_load, h5_reader_open/read, h5_dataset_mean,
 * h5_dataset_class_names).
 *
 * HDF5 1.10.8 itself crashes on some malformed bytes, so this target never
 * hands HDF5 raw bytes: the input is a *recipe*, and the harness builds the
 * file it describes through the HDF5 API (in /dev/shm), then runs every
 * loader on it and checks what h5io.h promises (fuzz_h5_check.h). Every byte
 * string is a valid recipe; missing bytes read as 0.
 *
 * Recipe: byte 0 picks the split and the rows the reader reads; then up to
 * 48 operations, each an opcode byte and its arguments:
 *   0 dataset    path, type, rank, layout, fill, value mode, special value,
 *                its index, dims, (value bytes)
 *   1 group      path
 *   2 attribute  object, name, kind of value, values
 *   3 arch       an /architecture/layers table: row count, member types
 *                (kind as variable or fixed string, integer widths, a member
 *                left out), rows (a consistent chain or arbitrary numbers)
 *   4 weights    /state_dict tensors for the last table: types, values (NaN,
 *                Inf...), a tensor left out, misshapen or extra
 *   5 model      root attributes format, format_version, input_shape,
 *                n_classes, content_sha256 (the right hash of what op 4
 *                wrote, a wrong one, a short one or none)
 *   6 data attrs format, format_version, class_names (0 to 5,000 names)
 *   7 link       soft, hard or external link; 8 unlink
 * Dimensions are mostly 0..32, sometimes 784, 65536, 2^31, 2^32+1, 2^40,
 * 2^62, 2^63+1 (chunked, never written). Values: ramps, bytes of the input,
 * NaN, +-Inf, 1e39, -1, 2^31. FUZZ_H5_VERBOSE=1 prints each operation.
 * tests/fuzz/make_h5_seeds.py writes the seed recipes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                                    "source",    "description"};
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
    "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
enum { N_STRS = sizeof STRS / sizeof STRS[0] };

static const char *const KINDS[] = {
    "linear", "relu",   "linear",  "relu",     "conv2d",
    "",       "LINEAR", "linear ", "relu\x01", "a-kind-name-longer-than-thirty-two-bytes"};
enum { N_KINDS = sizeof KINDS / sizeof KINDS[0] };

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

#define MAX_ROWS 70

typedef struct {
    hid_t file, lcpl;
    int big; /* a dimension above 4096 was used */
    /* the last /architecture/layers table, as written */
    int n_layers;
    int32_t index[MAX_ROWS], in[MAX_ROWS], out[MAX_ROWS], bias[MAX_ROWS];
    char kind[MAX_ROWS][48];
    int64_t d0; /* the input width the table was built for */
    /* the weights op 4 wrote, for the hash (NULL = not written as floats) */
    float *w[MAX_ROWS], *b[MAX_ROWS];
    size_t nw[MAX_ROWS], nb[MAX_ROWS];
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

/* /architecture/layers. Memory rows always carry all five members; the file
 * type may leave one out, use other integer widths or a fixed-length kind. */
typedef struct {
    int32_t index;
    const char *kind;
    int32_t in_features, out_features, bias;
} vrow;
typedef struct {
    int32_t index;
    char kind[48];
    int32_t in_features, out_features, bias;
} frow;

static void op_arch(rd *r, builder *B) {
    unsigned nb = byte(r), var = byte(r), chain = byte(r), w0 = byte(r);
    int n = nb < 250 ? (int)(nb % 9) : (int)(nb - 250) * 13 + 1; /* 0..8, or 1..66 */
    if (n > 66) n = 66;
    B->n_layers = n;
    B->d0 = w0 % 4 == 0 ? 784 : (int64_t)(w0 % 32) + 1;
    int64_t width = B->d0;
    for (int i = 0; i < n; i++) {
        unsigned k = byte(r), o = byte(r);
        B->index[i] = (chain & 1) && k % 16 == 15 ? (int32_t)SPECIAL_INT[o % N_SPECIAL_INT] : i;
        int linear = chain & 2 ? k % 2 == 0 : 1;
        if (chain & 4) { /* arbitrary rows */
            snprintf(B->kind[i], sizeof B->kind[i], "%s", KINDS[k % N_KINDS]);
            B->in[i] = (int32_t)SPECIAL_INT[(k >> 4) % N_SPECIAL_INT];
            B->out[i] = (int32_t)SPECIAL_INT[o % N_SPECIAL_INT];
            B->bias[i] = (int32_t)(o % 3);
        } else { /* a consistent chain of linear and relu layers */
            snprintf(B->kind[i], sizeof B->kind[i], "%s", linear ? "linear" : "relu");
            B->in[i] = (int32_t)width;
            B->out[i] = linear ? (int32_t)(o % 16) + 1 : (int32_t)width;
            B->bias[i] = linear ? (int32_t)((o >> 4) & 1) : 0;
        }
        width = B->out[i];
    }
    /* file type */
    static const hid_t *const itypes[] = {&H5T_STD_I32LE_g, &H5T_STD_I32LE_g, &H5T_STD_I64LE_g,
                                          &H5T_STD_U8LE_g,  &H5T_STD_I16BE_g, &H5T_IEEE_F32LE_g};
    int fixed = var & 1, drop = (int)((var >> 1) % 8); /* member 0..4 left out, 5..7 none */
    size_t flen = (size_t)((var >> 4) % 40) + 1;
    hid_t it = *itypes[(var >> 4) % 6];
    hid_t kt;
    if (fixed) {
        kt = H5Tcopy(H5T_C_S1);
        H5Tset_size(kt, flen);
    } else {
        kt = vstr_type();
    }
    const char *names[5] = {"index", "kind", "in_features", "out_features", "bias"};
    size_t isz = H5Tget_size(it), off = 0, ksz = H5Tget_size(kt);
    hid_t ft = H5Tcreate(H5T_COMPOUND, 4 * isz + ksz);
    for (int m = 0; m < 5; m++) {
        if (m == drop) continue;
        hid_t mt = m == 1 ? kt : it;
        H5Tinsert(ft, names[m], off, mt);
        off += H5Tget_size(mt);
    }
    H5Tset_size(ft, off);
    /* memory type */
    hid_t mk, mt;
    void *rows;
    if (fixed) {
        mk = H5Tcopy(H5T_C_S1);
        H5Tset_size(mk, 48);
        mt = H5Tcreate(H5T_COMPOUND, sizeof(frow));
        H5Tinsert(mt, "index", HOFFSET(frow, index), H5T_NATIVE_INT32);
        H5Tinsert(mt, "kind", HOFFSET(frow, kind), mk);
        H5Tinsert(mt, "in_features", HOFFSET(frow, in_features), H5T_NATIVE_INT32);
        H5Tinsert(mt, "out_features", HOFFSET(frow, out_features), H5T_NATIVE_INT32);
        H5Tinsert(mt, "bias", HOFFSET(frow, bias), H5T_NATIVE_INT32);
        frow *fr = calloc((size_t)(n ? n : 1), sizeof *fr);
        for (int i = 0; i < n; i++) {
            fr[i] = (frow){B->index[i], {0}, B->in[i], B->out[i], B->bias[i]};
            memcpy(fr[i].kind, B->kind[i], strlen(B->kind[i]));
        }
        rows = fr;
    } else {
        mk = vstr_type();
        mt = H5Tcreate(H5T_COMPOUND, sizeof(vrow));
        H5Tinsert(mt, "index", HOFFSET(vrow, index), H5T_NATIVE_INT32);
        H5Tinsert(mt, "kind", HOFFSET(vrow, kind), mk);
        H5Tinsert(mt, "in_features", HOFFSET(vrow, in_features), H5T_NATIVE_INT32);
        H5Tinsert(mt, "out_features", HOFFSET(vrow, out_features), H5T_NATIVE_INT32);
        H5Tinsert(mt, "bias", HOFFSET(vrow, bias), H5T_NATIVE_INT32);
        vrow *vr = calloc((size_t)(n ? n : 1), sizeof *vr);
        for (int i = 0; i < n; i++)
            vr[i] = (vrow){B->index[i], (chain & 16) && i == 0 ? NULL : B->kind[i], B->in[i],
                           B->out[i], B->bias[i]};
        rows = vr;
    }
    hsize_t d[2] = {(hsize_t)n, 1};
    hid_t space = H5Screate_simple(chain & 8 ? 2 : 1, d, NULL);
    if (H5Lexists(B->file, "architecture", H5P_DEFAULT) > 0 &&
        H5Lexists(B->file, "architecture/layers", H5P_DEFAULT) > 0)
        H5Ldelete(B->file, "architecture/layers", H5P_DEFAULT);
    hid_t ds =
        H5Dcreate2(B->file, "architecture/layers", ft, space, B->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    SAY("arch %d rows, %s kind, drop %d, chain %u -> %s\n", n, fixed ? "fixed" : "vlen", drop,
        chain, ds < 0 ? "failed" : "ok");
    if (ds >= 0) {
        if (n) H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
        H5Dclose(ds);
    }
    free(rows);
    H5Sclose(space);
    H5Tclose(mt);
    H5Tclose(mk);
    H5Tclose(ft);
    H5Tclose(kt);
}

/* The parameter values op 4 writes: small numbers, one special at k. */
static float param_value(size_t i, unsigned salt) {
    return (float)((int)((i * 2654435761u + salt) % 2001) - 1000) / 4000.0f;
}

static void write_tensor(builder *B, rd *r, hid_t g, const char *name, int rank, hsize_t *dims,
                         float **keep, size_t *nkeep) {
    unsigned t = byte(r), special = byte(r), at = byte(r);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    if (t % 16 == 9) return;               /* left out */
    if (t % 16 == 10) dims[rank - 1] += 1; /* misshapen */
    size_t nf = 1;
    for (int i = 0; i < rank; i++) nf *= dims[i];
    if (nf > (1 << 20)) return;
    float *v = malloc((nf ? nf : 1) * sizeof *v);
    for (size_t i = 0; i < nf; i++) v[i] = param_value(i, t);
    if ((special & 3) == 0 && nf) v[at % nf] = (float)SPECIAL[(special >> 2) % N_SPECIAL];
    static const hid_t *const ftypes[] = {&H5T_IEEE_F32LE_g, &H5T_IEEE_F64LE_g, &H5T_IEEE_F32BE_g,
                                          &H5T_STD_I32LE_g};
    unsigned ti = t % 16 < 12 ? 0 : (t % 16) - 12; /* mostly float32 LE */
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, *ftypes[ti], space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
    }
    H5Sclose(space);
    if (nf == n && ti != 3) { /* kept for the hash */
        *keep = v;
        *nkeep = n;
    } else {
        free(v);
    }
    (void)B;
}

static void clear_weights(builder *B) {
    for (int i = 0; i < MAX_ROWS; i++) {
        free(B->w[i]);
        free(B->b[i]);
        B->w[i] = B->b[i] = NULL;
        B->nw[i] = B->nb[i] = 0;
    }
}

static void op_weights(rd *r, builder *B) {
    clear_weights(B);
    if (H5Lexists(B->file, "state_dict", H5P_DEFAULT) <= 0) {
        hid_t g = H5Gcreate2(B->file, "state_dict", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) return;
        H5Gclose(g);
    }
    hid_t g = H5Gopen2(B->file, "state_dict", H5P_DEFAULT);
    if (g < 0) return;
    SAY("weights for %d rows\n", B->n_layers);
    for (int i = 0; i < B->n_layers; i++) {
        if (strcmp(B->kind[i], "linear") != 0) continue;
        if (B->in[i] < 1 || B->out[i] < 1) continue;
        char name[64];
        hsize_t wd[2] = {(hsize_t)B->out[i], (hsize_t)B->in[i]}, bd[1] = {(hsize_t)B->out[i]};
        snprintf(name, sizeof name, "layers.%d.weight", i);
        if (H5Lexists(g, name, H5P_DEFAULT) > 0) H5Ldelete(g, name, H5P_DEFAULT);
        write_tensor(B, r, g, name, 2, wd, &B->w[i], &B->nw[i]);
        if (B->bias[i] == 1) {
            snprintf(name, sizeof name, "layers.%d.bias", i);
            if (H5Lexists(g, name, H5P_DEFAULT) > 0) H5Ldelete(g, name, H5P_DEFAULT);
            write_tensor(B, r, g, name, 1, bd, &B->b[i], &B->nb[i]);
        }
    }
    if (byte(r) % 8 == 7) { /* an extra tensor */
        hsize_t d = 3;
        hid_t s = H5Screate_simple(1, &d, NULL);
        hid_t ds = H5Dcreate2(g, "layers.99.weight", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(s);
    }
    H5Gclose(g);
}

/* content_sha256 of the table and weights as written (h5io.h's formula). */
static void model_hash(const builder *B, char out[65]) {
    at_sha256 s;
    at_sha256_init(&s);
    char line[160];
    for (int i = 0; i < B->n_layers; i++) {
        int len = snprintf(line, sizeof line, "%d %s %d %d %d\n", i, B->kind[i], B->in[i],
                           B->out[i], B->bias[i]);
        at_sha256_update(&s, line, (size_t)len);
    }
    for (int i = 0; i < B->n_layers; i++) {
        char name[64];
        if (B->w[i]) {
            snprintf(name, sizeof name, "layers.%d.weight", i);
            at_sha256_update(&s, name, strlen(name) + 1);
            at_sha256_update(&s, B->w[i], B->nw[i] * sizeof(float)); /* little endian host */
        }
        if (B->b[i]) {
            snprintf(name, sizeof name, "layers.%d.bias", i);
            at_sha256_update(&s, name, strlen(name) + 1);
            at_sha256_update(&s, B->b[i], B->nb[i] * sizeof(float));
        }
    }
    uint8_t dg[32];
    at_sha256_final(&s, dg);
    at_sha256_hex(dg, out);
}

static void op_model_attrs(rd *r, builder *B) {
    unsigned f = byte(r), a = byte(r), b = byte(r);
    hid_t root = B->file;
    SAY("model attributes flags %u\n", f);
    attr_str(root, "format", f & 1 ? STRS[a % N_STRS] : "attrib-model");
    int64_t v1 = f & 2 ? SPECIAL_INT[a % N_SPECIAL_INT] : 1;
    attr_i64v(root, "format_version", H5T_STD_I32LE, &v1, 1);
    int64_t shape[4];
    int ns = 1;
    if (f & 4) {
        ns = (int)(b % 5);
        for (int i = 0; i < ns; i++)
            shape[i] = SPECIAL_INT[(b / 5 + (unsigned)i * a) % N_SPECIAL_INT];
    } else if (B->d0 == 784 && (a & 1)) {
        ns = 2;
        shape[0] = shape[1] = 28;
    } else {
        shape[0] = B->d0;
    }
    attr_i64v(root, "input_shape", H5T_STD_I64LE, shape, ns);
    int64_t width = B->n_layers ? B->out[B->n_layers - 1] : 0;
    int64_t nc = f & 8 ? SPECIAL_INT[b % N_SPECIAL_INT] : width;
    attr_i64v(root, "n_classes", H5T_STD_I32LE, &nc, 1);
    char hex[65];
    switch ((f >> 4) % 4) {
    case 0:
        model_hash(B, hex);
        attr_str(root, "content_sha256", hex);
        break;
    case 1:
        attr_str(root, "content_sha256", STRS[6 + a % 4]);
        break;
    case 2:
        attr_str(root, "content_sha256", STRS[a % 6]);
        break;
    default:
        if (H5Aexists(root, "content_sha256") > 0) H5Adelete(root, "content_sha256");
        break;
    }
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (verbose < 0) {
        const char *v = getenv("FUZZ_H5_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    rd r = {data, size, 0};
    const char *path = fuzz_scratch_path();
    unsigned pick = byte(&r);
    builder B;
    memset(&B, 0, sizeof B);
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
    /* a declared 10^12-row split without class names would be scanned for
     * its largest label: correct, but far too slow for a fuzzer */
    if (B.big && H5Aexists(B.file, "class_names") <= 0) attr_strv(B.file, "class_names", 10, 0);
    clear_weights(&B);
    H5Pclose(B.lcpl);
    if (H5Fclose(B.file) < 0) {
        fprintf(stderr, "fuzz_h5: cannot close %s\n", path);
        abort();
    }
    fuzz_check_file(path, pick);
    remove(path);
    return 0;
}
