/* h5io.c — see h5io.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5io.h"
#include "h5util.h"

#include "arch.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <zlib.h>

/* ================================================================ helpers */

void h5io_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }


/* Short texts returned by value, usable inline in printf arguments. */
typedef struct {
    char s[160];
} h5text;
typedef struct {
    char s[112];
} h5shape;
typedef struct {
    char s[40];
} h5type;

/* "(10, 28, 28)"; "()" for a scalar. */
static h5shape shape_text(int rank, const hsize_t *dims) {
    h5shape t;
    size_t k = 0;
    t.s[k++] = '(';
    for (int i = 0; i < rank && k < sizeof t.s - 24; i++)
        k += (size_t)snprintf(t.s + k, sizeof t.s - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)dims[i]);
    snprintf(t.s + k, sizeof t.s - k, ")");
    return t;
}

static h5shape shape_text_i64(int rank, const int64_t *dims) {
    hsize_t d[H5IO_MAX_DIMS];
    AT_CHECK(rank <= H5IO_MAX_DIMS);
    for (int i = 0; i < rank; i++) d[i] = (hsize_t)dims[i];
    return shape_text(rank, d);
}

/* "float32", "int8", "uint8", "string", ... */
static h5type type_text(hid_t type) {
    h5type t;
    size_t bits = H5Tget_size(type) * 8;
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(t.s, sizeof t.s, "%sint%zu",
                 H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT: snprintf(t.s, sizeof t.s, "float%zu", bits); break;
    case H5T_STRING: snprintf(t.s, sizeof t.s, "string"); break;
    case H5T_COMPOUND: snprintf(t.s, sizeof t.s, "compound"); break;
    case H5T_ENUM: snprintf(t.s, sizeof t.s, "enum"); break;
    case H5T_ARRAY: snprintf(t.s, sizeof t.s, "array"); break;
    case H5T_VLEN: snprintf(t.s, sizeof t.s, "vlen"); break;
    default:
        snprintf(t.s, sizeof t.s, "HDF5 type class %d", (int)H5Tget_class(type));
        break;
    }
    return t;
}

/* Type and shape of a dataset: "float32 (10, 28, 28)". */
static h5text dset_text(hid_t dset) {
    h5text t;
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    hsize_t dims[H5S_MAX_RANK];
    int rank = H5Sget_simple_extent_dims(space, dims, NULL);
    snprintf(t.s, sizeof t.s, "%s %s", type_text(type).s,
             shape_text(rank < 0 ? 0 : rank, dims).s);
    h5u_close(&space);
    h5u_close(&type);
    return t;
}


static int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}


/* Why HDF5 could not open an existing path, for messages: a directory, an
 * empty file, no HDF5 signature (at 0 or a user-block offset 512, 1024,
 * ...), or a signature but a file HDF5 cannot read (cut short, damaged). */
static h5text unopenable_reason(const char *path) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    h5text t;
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0) {
        snprintf(t.s, sizeof t.s, "%s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        snprintf(t.s, sizeof t.s, "it is a directory");
    } else if (st.st_size == 0) {
        snprintf(t.s, sizeof t.s, "it is empty (0 bytes)");
    } else if (!(f = fopen(path, "rb"))) {
        snprintf(t.s, sizeof t.s, "%s", strerror(errno));
    } else {
        int found = 0;
        for (long off = 0; !found && off + 8 <= (long)st.st_size;
             off = off ? 2 * off : 512) {
            unsigned char b[8];
            found = fseek(f, off, SEEK_SET) == 0 && fread(b, 1, 8, f) == 8 &&
                    memcmp(b, sig, 8) == 0;
        }
        snprintf(t.s, sizeof t.s, "%s", found
                 ? "it has an HDF5 signature, so it is probably truncated or corrupt"
                 : "no HDF5 signature");
    }
    if (f) fclose(f);
    return t;
}


static int fsync_fd_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* fsync tmp, rename it to path, fsync the directory. Returns 0 or AT_EIO. */
static int commit_tmp(const char *tmp, const char *path, at_err *err) {
    if (fsync_fd_path(tmp, O_RDONLY) != 0)
        return at_err_set(err, AT_EIO, "%s: cannot fsync %s: %s", path, tmp,
                          strerror(errno));
    if (rename(tmp, path) != 0)
        return at_err_set(err, AT_EIO, "%s: cannot rename %s to it: %s", path, tmp,
                          strerror(errno));
    char *dir = at_strdup(path, "commit_tmp");
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    /* Some file systems refuse to fsync a directory; the rename is done. */
    fsync_fd_path(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
    return 0;
}




/* ---- attributes -------------------------------------------------------- */








/* Names of the groups directly under loc, sorted, joined with ", ". */
typedef struct {
    char text[512];
    size_t len;
} name_list;

static herr_t list_groups_cb(hid_t loc, const char *name, const H5L_info_t *info,
                             void *data) {
    (void)info;
    name_list *l = data;
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    if (o < 0) return 0;
    if (H5Iget_type(o) == H5I_GROUP && l->len < sizeof l->text - 1)
        l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s%s",
                                   l->len ? ", " : "", name);
    H5Oclose(o);
    return 0;
}

/* ============================================================== datasets */

struct h5_reader {
    char *path, *split;
    hid_t file, images, labels;
    int img_rank;
    hsize_t img_dims[3];
    h5_dataset_info info;
};

static int open_dataset_file(const char *path, hid_t *file, at_err *err) {
    *file = path_exists(path) ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (*file >= 0) return 0;
    if (!path_exists(path))
        return at_err_set(err, AT_EUSER,
                          "%s: cannot open dataset file (does it exist? create it "
                          "with `attrib import fashion-mnist --out %s` or `attrib "
                          "import synthetic-tokens --out %s`)",
                          path, path, path);
    return at_err_set(err, AT_EUSER,
                      "%s: cannot open dataset file (it exists but is not a readable "
                      "HDF5 file): %s",
                      path, unopenable_reason(path).s);
}

/* Scan labels for max + 1; a negative label is an error. */
static int scan_n_classes(h5_reader *r, int *n_classes, at_err *err) {
    const int64_t block = 65536;
    int64_t n = r->info.n_rows;
    int32_t *lab = at_malloc((size_t)(n < block ? (n ? n : 1) : block) * sizeof *lab,
                             "labels block");
    int32_t mx = -1;
    int rc = 0;
    for (int64_t r0 = 0; r0 < n && rc == 0; r0 += block) {
        int64_t r1 = r0 + block < n ? r0 + block : n;
        hsize_t start = (hsize_t)r0, count = (hsize_t)(r1 - r0);
        hid_t fs = H5Dget_space(r->labels), ms = H5Screate_simple(1, &count, NULL);
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
        if (H5Dread(r->labels, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, lab) < 0)
            rc = at_err_set(err, AT_EIO, "%s: dataset /%s/labels: cannot read rows "
                            "[%lld, %lld)", r->path, r->split, (long long)r0,
                            (long long)r1);
        for (int64_t i = 0; rc == 0 && i < r1 - r0; i++) {
            if (lab[i] < 0)
                rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/labels: row %lld has "
                                "label %d (expected a class index >= 0)", r->path,
                                r->split, (long long)(r0 + i), (int)lab[i]);
            if (lab[i] > mx) mx = lab[i];
        }
        h5u_close(&ms);
        h5u_close(&fs);
    }
    free(lab);
    *n_classes = mx + 1;
    return rc;
}

int h5_reader_open(h5_reader **out, const char *path, const char *split,
                   h5_dataset_info *info, at_err *err) {
    AT_CHECK(out && path && split);
    *out = NULL;
    h5_reader *r = at_calloc(1, sizeof *r, "h5_reader");
    r->path = at_strdup(path, "h5_reader path");
    r->split = at_strdup(split, "h5_reader split");
    r->file = r->images = r->labels = -1;
    hid_t type = -1, space = -1;
    int rc = open_dataset_file(path, &r->file, err);
    if (rc) goto fail;

    if (split[0] == '\0' || strchr(split, '/') ||
        H5Lexists(r->file, split, H5P_DEFAULT) <= 0) {
        name_list l = {{0}, 0};
        H5Literate(r->file, H5_INDEX_NAME, H5_ITER_INC, NULL, list_groups_cb, &l);
        rc = at_err_set(err, AT_EUSER, "%s: no split '%s' (%s%s)", path, split,
                        l.len ? "splits in file: " : "no splits in file",
                        l.text);
        goto fail;
    }

    char name[1024];
    snprintf(name, sizeof name, "/%s/images", split);
    /* Work units read blocks of rows much smaller than a chunk (1,024 rows
     * of Fashion-MNIST are 3.2 MB, HDF5's default cache holds 1 MB): give
     * the images a cache that keeps a few chunks, so consecutive blocks do
     * not decompress the same chunk again. */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 12421, (size_t)64 << 20, 1.0);
    if (H5Lexists(r->file, name, H5P_DEFAULT) > 0)
        r->images = H5Dopen2(r->file, name, dapl);
    H5Pclose(dapl);
    if (r->images < 0) {
        rc = at_err_set(err, AT_EUSER, "%s: no dataset %s (expected float32 (N, H, W) "
                        "or (N, D) images in split '%s')", path, name, split);
        goto fail;
    }
    type = H5Dget_type(r->images);
    space = H5Dget_space(r->images);
    r->img_rank = H5Sget_simple_extent_ndims(space);
    if (!h5u_number_type_ok(type, H5T_FLOAT) || r->img_rank < 2 || r->img_rank > 3) {
        rc = at_err_set(err, AT_EUSER, "%s: dataset %s: expected float32 (N, H, W) or "
                        "(N, D), found %s", path, name, dset_text(r->images).s);
        goto fail;
    }
    H5Sget_simple_extent_dims(space, r->img_dims, NULL);
    h5u_close(&space);
    h5u_close(&type);
    /* 1..H5IO_MAX_FEATURES features per row (no zero-size axis, no product
     * that overflows), at most INT64_MAX rows */
    uint64_t nf = 1;
    for (int i = 1; i < r->img_rank; i++) {
        nf = r->img_dims[i] <= H5IO_MAX_FEATURES ? nf * r->img_dims[i] : H5IO_MAX_FEATURES + 1;
        if (nf > H5IO_MAX_FEATURES) nf = H5IO_MAX_FEATURES + 1; /* both factors < 2^31 */
    }
    if (nf < 1 || nf > H5IO_MAX_FEATURES || r->img_dims[0] > (hsize_t)INT64_MAX) {
        rc = at_err_set(err, AT_EUSER, "%s: dataset %s: expected float32 (N, H, W) or (N, D) "
                        "with 1 to %lld features per row, found %s", path, name,
                        (long long)H5IO_MAX_FEATURES, dset_text(r->images).s);
        goto fail;
    }

    h5_dataset_info *di = &r->info;
    di->n_rows = (int64_t)r->img_dims[0];
    di->n_feat_dims = r->img_rank - 1;
    di->n_features = (int64_t)nf;
    for (int i = 1; i < r->img_rank; i++) di->feat_shape[i - 1] = (int64_t)r->img_dims[i];

    snprintf(name, sizeof name, "/%s/labels", split);
    if (H5Lexists(r->file, name, H5P_DEFAULT) <= 0 ||
        (r->labels = H5Dopen2(r->file, name, H5P_DEFAULT)) < 0) {
        rc = at_err_set(err, AT_EUSER, "%s: no dataset %s (expected int32 (N) labels "
                        "in split '%s')", path, name, split);
        goto fail;
    }
    type = H5Dget_type(r->labels);
    space = H5Dget_space(r->labels);
    hsize_t ldims[H5S_MAX_RANK];
    int lrank = H5Sget_simple_extent_dims(space, ldims, NULL);
    if (!h5u_number_type_ok(type, H5T_INTEGER) || lrank != 1 ||
        ldims[0] != r->img_dims[0]) {
        rc = at_err_set(err, AT_EUSER, "%s: dataset %s: expected int32 (%llu) (one "
                        "label per row of /%s/images), found %s", path, name,
                        (unsigned long long)r->img_dims[0], split,
                        dset_text(r->labels).s);
        goto fail;
    }
    h5u_close(&space);
    h5u_close(&type);

    hid_t root = r->file;
    if (H5Aexists(root, "class_names") > 0) {
        hid_t a = H5Aopen(root, "class_names", H5P_DEFAULT);
        hid_t as = H5Aget_space(a);
        di->n_classes = (int)H5Sget_simple_extent_npoints(as);
        h5u_close(&as);
        h5u_close(&a);
    } else {
        rc = scan_n_classes(r, &di->n_classes, err);
        if (rc) goto fail;
    }
    if (di->n_classes < 1 || di->n_classes > H5IO_MAX_CLASSES) {
        rc = at_err_set(err, AT_EUSER, "%s: split '%s' has %d classes (expected 1 to "
                        "%d)", path, split, di->n_classes, H5IO_MAX_CLASSES);
        goto fail;
    }
    if (info) *info = *di;
    *out = r;
    return 0;
fail:
    h5u_close(&space);
    h5u_close(&type);
    h5_reader_close(r);
    return rc;
}

int h5_reader_read(h5_reader *r, int64_t r0, int64_t r1, float *x,
                   int32_t *labels, at_err *err) {
    AT_CHECK(r && 0 <= r0 && r0 <= r1 && r1 <= r->info.n_rows);
    if (r0 == r1) return 0;
    int rc = 0;
    hsize_t start[3] = {(hsize_t)r0, 0, 0};
    hsize_t count[3] = {(hsize_t)(r1 - r0), 0, 0};
    for (int i = 1; i < r->img_rank; i++) count[i] = r->img_dims[i];
    hid_t fs = -1, ms = -1;
    if (x) {
        fs = H5Dget_space(r->images);
        ms = H5Screate_simple(r->img_rank, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(r->images, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x) < 0)
            rc = at_err_set(err, AT_EIO, "%s: dataset /%s/images: cannot read rows "
                            "[%lld, %lld)", r->path, r->split, (long long)r0,
                            (long long)r1);
        h5u_close(&ms);
        h5u_close(&fs);
    }
    if (labels && rc == 0) {
        fs = H5Dget_space(r->labels);
        ms = H5Screate_simple(1, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(r->labels, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, labels) < 0)
            rc = at_err_set(err, AT_EIO, "%s: dataset /%s/labels: cannot read rows "
                            "[%lld, %lld)", r->path, r->split, (long long)r0,
                            (long long)r1);
        h5u_close(&ms);
        h5u_close(&fs);
    }
    return rc;
}

void h5_reader_close(h5_reader *r) {
    if (!r) return;
    h5u_close(&r->labels);
    h5u_close(&r->images);
    h5u_close(&r->file);
    free(r->split);
    free(r->path);
    free(r);
}

int h5_dataset_mean(const char *path, const char *split, double *mean,
                    int64_t n_features, at_err *err) {
    AT_CHECK(mean && n_features >= 1);
    h5_reader *r = NULL;
    h5_dataset_info info;
    int rc = h5_reader_open(&r, path, split, &info, err);
    if (rc) return rc;
    if (info.n_features != n_features) {
        rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images: rows have %lld "
                        "features %s, expected %lld", path, split,
                        (long long)info.n_features,
                        shape_text_i64(info.n_feat_dims, info.feat_shape).s,
                        (long long)n_features);
        h5_reader_close(r);
        return rc;
    }
    if (info.n_rows == 0) {
        rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images has no rows (the mean "
                        "needs at least one)", path, split);
        h5_reader_close(r);
        return rc;
    }
    /* blocks of up to 4,096 rows and 64 MiB (the sum is in row order either way) */
    size_t D = (size_t)n_features;
    int64_t block = (int64_t)(((size_t)64 << 20) / (D * sizeof(float)));
    block = block < 1 ? 1 : block > 4096 ? 4096 : block;
    float *x = at_malloc((size_t)block * D * sizeof *x, "mean block");
    for (size_t j = 0; j < D; j++) mean[j] = 0.0;
    for (int64_t r0 = 0; r0 < info.n_rows && rc == 0; r0 += block) {
        int64_t r1 = r0 + block < info.n_rows ? r0 + block : info.n_rows;
        rc = h5_reader_read(r, r0, r1, x, NULL, err);
        for (int64_t i = 0; rc == 0 && i < r1 - r0; i++) {
            const float *row = x + (size_t)i * D;
            for (size_t j = 0; j < D; j++) {
                if (!isfinite(row[j])) {
                    rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images: row %lld "
                                    "has a non-finite value (%s) at feature %zu; a mean "
                                    "baseline needs finite values", path, split,
                                    (long long)(r0 + i),
                                    isnan(row[j]) ? "NaN" : row[j] > 0 ? "Inf" : "-Inf", j);
                    break;
                }
                mean[j] += (double)row[j];
            }
        }
    }
    for (size_t j = 0; j < D; j++) mean[j] /= (double)info.n_rows;
    free(x);
    h5_reader_close(r);
    return rc;
}

int h5_dataset_reference_rows(const char *path, const char *split, int64_t n,
                              int64_t n_features, float **out, int64_t *n_out,
                              at_err *err) {
    AT_CHECK(n >= 1 && n_features >= 1 && out && n_out);
    *out = NULL;
    *n_out = 0;
    h5_reader *r = NULL;
    h5_dataset_info info;
    int rc = h5_reader_open(&r, path, split, &info, err);
    if (rc) return rc;
    if (info.n_features != n_features)
        rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images: rows have %lld features %s, "
                        "expected %lld (reference rows)", path, split,
                        (long long)info.n_features,
                        shape_text_i64(info.n_feat_dims, info.feat_shape).s,
                        (long long)n_features);
    else if (info.n_rows == 0)
        rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images has no rows (reference rows "
                        "need at least one)", path, split);
    if (rc) {
        h5_reader_close(r);
        return rc;
    }
    int64_t m = info.n_rows < n ? info.n_rows : n;
    size_t D = (size_t)n_features;
    float *x = at_malloc((size_t)m * D * sizeof *x, "reference rows");
    /* rows ascend: read blocks of up to REF_BLOCK rows (a chunk of a
     * dataset written by attrib import) and pick the wanted rows from
     * each, instead of decompressing a chunk per row */
    enum { REF_BLOCK = 1024 };
    int64_t blk = (int64_t)((64u << 20) / (D * sizeof(float)));
    blk = blk < 1 ? 1 : blk > REF_BLOCK ? REF_BLOCK : blk;
    float *buf = at_malloc((size_t)blk * D * sizeof *buf, "reference block");
    int64_t b0 = -1, b1 = -1;
    for (int64_t k = 0; k < m && rc == 0; k++) {
        int64_t row = m == info.n_rows ? k : (int64_t)((double)k * info.n_rows / m);
        if (row >= b1) {
            b0 = row;
            b1 = row + blk < info.n_rows ? row + blk : info.n_rows;
            if ((rc = h5_reader_read(r, b0, b1, buf, NULL, err))) break;
        }
        memcpy(x + (size_t)k * D, buf + (size_t)(row - b0) * D, D * sizeof *x);
        for (size_t j = 0; rc == 0 && j < D; j++)
            if (!isfinite(x[(size_t)k * D + j]))
                rc = at_err_set(err, AT_EUSER, "%s: dataset /%s/images: row %lld has a "
                                "non-finite value at feature %zu; reference rows must be "
                                "finite", path, split, (long long)row, j);
    }
    free(buf);
    h5_reader_close(r);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    *n_out = m;
    return 0;
}

int h5_dataset_read_groups(const char *path, const char *name, int64_t n_features,
                           int32_t *group, int *n_groups, at_err *err) {
    AT_CHECK(path && name && group && n_groups && n_features >= 1);
    hid_t f = path_exists(path) ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) return at_err_set(err, AT_EUSER, "%s: cannot open the data file", path);
    int rc = 0;
    hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    hid_t t = d >= 0 ? H5Dget_type(d) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (d < 0)
        rc = at_err_set(err, AT_EUSER, "%s: feature_mask: no dataset %s", path, name);
    else if (H5Tget_class(t) != H5T_INTEGER)
        rc = at_err_set(err, AT_EUSER, "%s: feature_mask: dataset %s is not of an integer "
                        "type (expected group numbers 0..P-1)", path, name);
    else if (n != (hssize_t)n_features)
        rc = at_err_set(err, AT_EUSER, "%s: feature_mask: dataset %s has %lld elements, "
                        "expected %lld (one group number per feature of a row)", path, name,
                        (long long)n, (long long)n_features);
    else if (H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, group) < 0)
        rc = at_err_set(err, AT_EUSER, "%s: feature_mask: cannot read dataset %s", path, name);
    int32_t hi = -1;
    for (int64_t i = 0; rc == 0 && i < n_features; i++) {
        if (group[i] < 0 || group[i] >= n_features) {
            rc = at_err_set(err, AT_EUSER, "%s: feature_mask: %s[%lld] = %d; expected a group "
                            "number in 0..%lld", path, name, (long long)i, group[i],
                            (long long)n_features - 1);
            break;
        }
        if (group[i] > hi) hi = group[i];
    }
    if (rc == 0) {
        uint8_t *seen = at_calloc((size_t)hi + 1, 1, "group check");
        for (int64_t i = 0; i < n_features; i++) seen[group[i]] = 1;
        for (int32_t g = 0; g <= hi && rc == 0; g++)
            if (!seen[g])
                rc = at_err_set(err, AT_EUSER, "%s: feature_mask: %s has no feature in group "
                                "%d (groups must be numbered 0..P-1 without gaps; max %d)",
                                path, name, g, hi);
        free(seen);
        *n_groups = hi + 1;
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return rc;
}

int h5_dataset_class_names(const char *path, char **names, int cap) {
    AT_CHECK(path && names && cap >= 0);
    hid_t f = path_exists(path) ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) return 0;
    int n = h5u_attr_read_strs(f, "class_names", names, cap);
    h5u_close(&f);
    return n < 0 ? 0 : n;
}

/* ========================================================= Fashion-MNIST */

static const char *const fmnist_classes[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

/* An open idx file (gzip): header checked, positioned at the data. */
typedef struct {
    char path[1024];
    gzFile gz;
    uint32_t n;
} idx_file;

static int read_be32(idx_file *f, uint32_t *v, const char *what, at_err *err) {
    unsigned char b[4];
    int got = gzread(f->gz, b, 4);
    if (got != 4)
        return at_err_set(err, AT_EUSER, "%s: truncated header (cannot read the %s)",
                          f->path, what);
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

/* Open dir/name and check magic (2051 images: n, 28, 28; 2049 labels: n). */
static int idx_open(idx_file *f, const char *dir, const char *name,
                    uint32_t magic, uint32_t expect_n, at_err *err) {
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    f->gz = gzopen(f->path, "rb");
    if (!f->gz)
        return at_err_set(err, AT_EUSER, "%s: cannot open (%s; on Debian install the "
                          "package dataset-fashion-mnist)", f->path,
                          errno ? strerror(errno) : "gzopen failed");
    uint32_t m = 0, n = 0;
    int rc = read_be32(f, &m, "magic number", err);
    if (rc) return rc;
    if (m != magic)
        return at_err_set(err, AT_EUSER, "%s: magic number %u (0x%08x), expected %u "
                          "(idx %s file, big-endian)", f->path, m, m, magic,
                          magic == 2051 ? "uint8 images (n, rows, cols)"
                                        : "uint8 labels (n)");
    rc = read_be32(f, &n, "item count", err);
    if (rc) return rc;
    if (n != expect_n)
        return at_err_set(err, AT_EUSER, "%s: header says %u items, expected %u",
                          f->path, n, expect_n);
    f->n = n;
    if (magic == 2051) {
        uint32_t h = 0, w = 0;
        if ((rc = read_be32(f, &h, "row count", err)) ||
            (rc = read_be32(f, &w, "column count", err)))
            return rc;
        if (h != 28 || w != 28)
            return at_err_set(err, AT_EUSER, "%s: images are %ux%u, expected 28x28",
                              f->path, h, w);
    }
    return 0;
}

static int idx_read(idx_file *f, unsigned char *buf, size_t n, size_t done_items,
                    at_err *err) {
    size_t got = 0;
    while (got < n) {
        unsigned chunk = (unsigned)(n - got > (1u << 30) ? (1u << 30) : n - got);
        int k = gzread(f->gz, buf + got, chunk);
        if (k <= 0) {
            int zerr = 0;
            const char *msg = gzerror(f->gz, &zerr);
            return at_err_set(err, AT_EUSER, "%s: unexpected end of data after item "
                              "%zu of %u (%s)", f->path, done_items, f->n,
                              k < 0 ? msg : "file too short");
        }
        got += (size_t)k;
    }
    return 0;
}

static int idx_close(idx_file *f, int check_end, at_err *err) {
    int rc = 0;
    if (!f->gz) return 0;
    if (check_end) {
        unsigned char extra;
        if (gzread(f->gz, &extra, 1) == 1)
            rc = at_err_set(err, AT_EUSER, "%s: unexpected data after the %u items "
                            "the header announces", f->path, f->n);
    }
    gzclose(f->gz);
    f->gz = NULL;
    return rc;
}

/* Chunked, shuffle+deflate dataset in loc. Returns the id or -1. */
static hid_t create_filtered(hid_t loc, const char *name, hid_t type, int rank,
                             const hsize_t *dims, const hsize_t *chunk, int level) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (level > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)level);
    }
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    h5u_close(&dcpl);
    h5u_close(&space);
    return d;
}

/* One split: images (N, 28, 28) float32 = pixel / 255, labels (N) int32. */
static int import_split(hid_t file, const char *out, const char *split,
                        const char *dir, const char *img_name, const char *lab_name,
                        uint32_t n, at_err *err) {
    idx_file fi = {{0}, NULL, 0}, fl = {{0}, NULL, 0};
    hid_t g = -1, di = -1, dl = -1, fs = -1, ms = -1;
    unsigned char *pix = NULL, *lab = NULL;
    float *x = NULL;
    int32_t *y = NULL;
    int rc = idx_open(&fi, dir, img_name, 2051, n, err);
    if (rc == 0) rc = idx_open(&fl, dir, lab_name, 2049, n, err);
    if (rc) goto done;

    /* labels first: small, and checked before any image is converted */
    lab = at_malloc(n, "idx labels");
    y = at_malloc((size_t)n * sizeof *y, "labels");
    if ((rc = idx_read(&fl, lab, n, 0, err)) || (rc = idx_close(&fl, 1, err)))
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        if (lab[i] > 9) {
            rc = at_err_set(err, AT_EUSER, "%s: label %u at item %u (expected 0..9)",
                            fl.path, lab[i], i);
            goto done;
        }
        y[i] = lab[i];
    }

    g = H5Gcreate2(file, split, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {n, 28, 28}, chunk[3] = {n < 1024 ? n : 1024, 28, 28};
    hsize_t lchunk = n < 16384 ? n : 16384;
    di = g < 0 ? -1 : create_filtered(g, "images", H5T_NATIVE_FLOAT, 3, dims, chunk, 4);
    dl = g < 0 ? -1 : create_filtered(g, "labels", H5T_NATIVE_INT32, 1, dims, &lchunk, 4);
    if (di < 0 || dl < 0 ||
        H5Dwrite(dl, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot create /%s/images and /%s/labels",
                        out, split, split);
        goto done;
    }

    const uint32_t block = 1024;
    pix = at_malloc((size_t)block * 784, "idx pixels");
    x = at_malloc((size_t)block * 784 * sizeof *x, "pixels");
    fs = H5Dget_space(di);
    for (uint32_t r0 = 0; r0 < n; r0 += block) {
        uint32_t m = n - r0 < block ? n - r0 : block;
        if ((rc = idx_read(&fi, pix, (size_t)m * 784, r0, err))) goto done;
        for (size_t k = 0; k < (size_t)m * 784; k++) x[k] = (float)pix[k] / 255.0f;
        hsize_t start[3] = {r0, 0, 0}, count[3] = {m, 28, 28};
        ms = H5Screate_simple(3, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(di, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x) < 0) {
            rc = at_err_set(err, AT_EIO, "%s: dataset /%s/images: cannot write rows "
                            "[%u, %u)", out, split, r0, r0 + m);
            goto done;
        }
        h5u_close(&ms);
    }
    rc = idx_close(&fi, 1, err);
    if (rc == 0 && (h5u_attr_str(di, "description",
                                   "pixel intensity / 255, float32 in [0, 1]") < 0 ||
                    h5u_attr_str(dl, "description", "class index 0..9") < 0))
        rc = at_err_set(err, AT_EIO, "%s: cannot write /%s attributes", out, split);
done:
    idx_close(&fi, 0, err);
    idx_close(&fl, 0, err);
    h5u_close(&ms);
    h5u_close(&fs);
    h5u_close(&dl);
    h5u_close(&di);
    h5u_close(&g);
    free(x);
    free(pix);
    free(y);
    free(lab);
    return rc;
}

int h5_import_fashion_mnist(const char *src_dir, const char *out_path,
                            at_err *err) {
    AT_CHECK(src_dir && out_path);
    char *tmp;
    hid_t f = h5u_create_tmp(out_path, &tmp, err);
    if (f < 0) {
        free(tmp);
        return err->code;
    }
    int rc = import_split(f, out_path, "train", src_dir, "train-images-idx3-ubyte.gz",
                      "train-labels-idx1-ubyte.gz", 60000, err);
    if (rc == 0)
        rc = import_split(f, out_path, "test", src_dir, "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz", 10000, err);
    if (rc == 0) {
        char source[1200];
        snprintf(source, sizeof source,
                 "Fashion-MNIST (Debian dataset-fashion-mnist, %s)", src_dir);
        int32_t version = 1;
        hid_t st = h5u_str_type();
        if (h5u_attr_str(f, "format", "attrib-dataset") < 0 ||
            h5u_attr_scalar(f, "format_version", H5T_NATIVE_INT32, &version) < 0 ||
            h5u_attr_str(f, "source", source) < 0 ||
            h5u_attr_vec(f, "class_names", st, 10, fmnist_classes) < 0)
            rc = at_err_set(err, AT_EIO, "%s: cannot write root attributes", out_path);
        h5u_close(&st);
    }
    int crc = h5u_close_written(&f, out_path, err);
    if (rc == 0) rc = crc;
    if (rc == 0) rc = commit_tmp(tmp, out_path, err);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

/* ================================================================ models */

#define ARCH_TEXT_MAX (4 << 20) /* bytes of the architecture attribute */

static void sha_update_f32_le(at_sha256 *s, const float *x, size_t n) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe == 1) {
        at_sha256_update(s, x, n * sizeof *x);
        return;
    }
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++) buf[k++] = (unsigned char)(u >> (8 * b));
        if (k == sizeof buf) {
            at_sha256_update(s, buf, k);
            k = 0;
        }
    }
    at_sha256_update(s, buf, k);
}

static int tensor_name_cmp(const void *a, const void *b) {
    const eng_tensor *x = *(const eng_tensor *const *)a, *y = *(const eng_tensor *const *)b;
    return strcmp(x->name, y->name); /* compares as unsigned char: byte order */
}

/* content_sha256: the architecture text as stored, then every tensor in
 * ascending byte order of its name: the name, a NUL, its float32 bytes
 * (little endian). */
static void model_hash(const char *arch, const eng_model *m, char out[65]) {
    at_sha256 s;
    at_sha256_init(&s);
    at_sha256_update(&s, arch, strlen(arch));
    const eng_tensor **order = at_calloc((size_t)m->n_tensors + 1, sizeof *order,
                                         "model hash order");
    for (int i = 0; i < m->n_tensors; i++) order[i] = &m->tensors[i];
    qsort(order, (size_t)m->n_tensors, sizeof *order, tensor_name_cmp);
    for (int i = 0; i < m->n_tensors; i++) {
        at_sha256_update(&s, order[i]->name, strlen(order[i]->name) + 1);
        sha_update_f32_le(&s, m->params + order[i]->off, order[i]->numel);
    }
    free(order);
    uint8_t digest[32];
    at_sha256_final(&s, digest);
    at_sha256_hex(digest, out);
}

void h5_model_hash(const eng_model *m, char out[65]) {
    AT_CHECK(m && out);
    char *arch = arch_emit(m);
    model_hash(arch, m, out);
    free(arch);
}

/* "(16, 1, 3, 3)" of a tensor. */
static h5shape tensor_shape_text(const eng_tensor *t) {
    return shape_text_i64(t->ndim, t->shape);
}

/* "layer 'conv1' (conv2d)" of a tensor. */
static h5text tensor_owner(const eng_model *m, const eng_tensor *t) {
    h5text s;
    const eng_layer *L = &m->layers[t->layer];
    snprintf(s.s, sizeof s.s, "layer '%s' (%s)", L->name, eng_layer_kind_name(L->kind));
    return s;
}

static const char *const reserved_model_attrs[] = {
    "format", "format_version", "architecture", "input_shape", "n_classes", "content_sha256",
};

int h5_model_save(const char *path, const eng_model *m, h5_model_info *info,
                  const h5_attr *attrs, int n_attrs, at_err *err) {
    AT_CHECK(path && m && info && (attrs || n_attrs == 0) && m->n_layers >= 1);
    AT_CHECK(m->in_ndim >= 1 && m->in_ndim <= ENG_MAX_DIMS);
    char *arch = arch_emit(m);
    memset(info, 0, sizeof *info);
    info->n_input_dims = m->in_ndim;
    for (int i = 0; i < m->in_ndim; i++) info->input_shape[i] = m->in_shape[i];
    info->n_classes = m->out_features;
    model_hash(arch, m, info->sha256);

    char *tmp;
    int rc = 0;
    hid_t f = h5u_create_tmp(path, &tmp, err);
    hid_t space = -1, d = -1, g = -1;
    if (f < 0) {
        rc = err->code;
        goto done;
    }
    int32_t version = 2;
    int64_t n_classes = m->out_features;
    if (h5u_attr_str(f, "format", "attrib-model") < 0 ||
        h5u_attr_scalar(f, "format_version", H5T_NATIVE_INT32, &version) < 0 ||
        h5u_attr_str(f, "architecture", arch) < 0 ||
        h5u_attr_vec(f, "input_shape", H5T_NATIVE_INT64, info->n_input_dims,
                       info->input_shape) < 0 ||
        h5u_attr_scalar(f, "n_classes", H5T_NATIVE_INT64, &n_classes) < 0 ||
        h5u_attr_str(f, "content_sha256", info->sha256) < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot write root attributes", path);
        goto done;
    }
    for (int i = 0; i < n_attrs; i++) {
        for (size_t k = 0; k < sizeof reserved_model_attrs / sizeof *reserved_model_attrs;
             k++)
            AT_CHECK(strcmp(attrs[i].name, reserved_model_attrs[k]) != 0);
        int st = attrs[i].text     ? h5u_attr_str(f, attrs[i].name, attrs[i].text)
                 : attrs[i].values ? h5u_attr_vec(f, attrs[i].name, H5T_NATIVE_DOUBLE,
                                                    attrs[i].n_values, attrs[i].values)
                                   : h5u_attr_scalar(f, attrs[i].name, H5T_NATIVE_DOUBLE,
                                                       &attrs[i].number);
        if (st < 0) {
            rc = at_err_set(err, AT_EIO, "%s: cannot write attribute '%s'", path,
                            attrs[i].name);
            goto done;
        }
    }

    /* /state_dict: one dataset per tensor, PyTorch's name and shape */
    g = H5Gcreate2(f, "state_dict", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot create /state_dict", path);
        goto done;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const eng_tensor *t = &m->tensors[i];
        AT_CHECK(t->name[0] && !strchr(t->name, '/') && t->ndim >= 1 && t->ndim <= 4);
        hsize_t dims[4];
        for (int k = 0; k < t->ndim; k++) dims[k] = (hsize_t)t->shape[k];
        space = H5Screate_simple(t->ndim, dims, NULL);
        d = H5Dcreate2(g, t->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                              m->params + t->off) < 0) {
            rc = at_err_set(err, AT_EIO, "%s: cannot write /state_dict/%s", path, t->name);
            goto done;
        }
        h5u_close(&d);
        h5u_close(&space);
    }
done:
    h5u_close(&d);
    h5u_close(&space);
    h5u_close(&g);
    if (f >= 0) {
        int crc = h5u_close_written(&f, path, err);
        if (rc == 0) rc = crc;
        if (rc == 0) rc = commit_tmp(tmp, path, err);
    }
    if (rc) unlink(tmp);
    free(tmp);
    free(arch);
    return rc;
}

/* Find the first link name in /state_dict that the model does not expect. */
typedef struct {
    const eng_model *m;
    char unexpected[256];
} sd_check;

static herr_t state_dict_cb(hid_t loc, const char *name, const H5L_info_t *info,
                            void *data) {
    (void)loc;
    (void)info;
    sd_check *c = data;
    for (int i = 0; i < c->m->n_tensors; i++)
        if (strcmp(c->m->tensors[i].name, name) == 0) return 0;
    snprintf(c->unexpected, sizeof c->unexpected, "%s", name);
    return 1; /* stop */
}

/* NaN or Inf in a weight would turn every score into NaN: refuse the file,
 * naming the first such element by its index in the tensor. */
static int check_finite_tensor(const char *path, const eng_tensor *t, const float *x,
                               at_err *err) {
    for (size_t i = 0; i < t->numel; i++) {
        if (isfinite(x[i])) continue;
        char at[96];
        size_t k = 0, rest = i;
        int64_t idx[4];
        for (int d = t->ndim - 1; d >= 0; d--) {
            idx[d] = (int64_t)(rest % (size_t)t->shape[d]);
            rest /= (size_t)t->shape[d];
        }
        at[k++] = '[';
        for (int d = 0; d < t->ndim; d++)
            k += (size_t)snprintf(at + k, sizeof at - k, "%s%lld", d ? ", " : "",
                                  (long long)idx[d]);
        snprintf(at + k, sizeof at - k, "]");
        return at_err_set(err, AT_EUSER, "%s: tensor /state_dict/%s: non-finite value "
                          "%s at %s (expected finite float32 weights)", path, t->name,
                          isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf", at);
    }
    return 0;
}

/* Read every tensor of m from /state_dict by name, checking presence, type,
 * shape and that every value is finite; then refuse anything else there. */
static int read_state_dict(hid_t f, const char *path, eng_model *m, at_err *err) {
    if (H5Lexists(f, "state_dict", H5P_DEFAULT) <= 0)
        return at_err_set(err, AT_EUSER, "%s: no group /state_dict (not an attrib "
                          "model file?)", path);
    hid_t g = H5Gopen2(f, "state_dict", H5P_DEFAULT);
    if (g < 0) return at_err_set(err, AT_EUSER, "%s: /state_dict is not a group", path);
    int rc = 0;
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        const eng_tensor *t = &m->tensors[i];
        if (H5Lexists(g, t->name, H5P_DEFAULT) <= 0) {
            rc = at_err_set(err, AT_EUSER, "%s: missing tensor /state_dict/%s (%s; expected "
                            "float32 %s)", path, t->name, tensor_owner(m, t).s,
                            tensor_shape_text(t).s);
            break;
        }
        H5O_info_t oi;
        int is_dset = H5Oget_info_by_name(g, t->name, &oi, H5P_DEFAULT) >= 0 &&
                      oi.type == H5O_TYPE_DATASET;
        hid_t d = is_dset ? H5Dopen2(g, t->name, H5P_DEFAULT) : -1;
        hid_t type = d < 0 ? -1 : H5Dget_type(d);
        hid_t space = d < 0 ? -1 : H5Dget_space(d);
        hsize_t dims[H5S_MAX_RANK];
        int rank = space < 0 ? -1 : H5Sget_simple_extent_dims(space, dims, NULL);
        int ok = d >= 0 && h5u_number_type_ok(type, H5T_FLOAT) && rank == t->ndim;
        for (int j = 0; ok && j < rank; j++) ok = dims[j] == (hsize_t)t->shape[j];
        if (!ok)
            rc = at_err_set(err, AT_EUSER, "%s: tensor /state_dict/%s: expected float32 %s "
                            "(%s), found %s", path, t->name, tensor_shape_text(t).s,
                            tensor_owner(m, t).s, d < 0 ? "a group or link" : dset_text(d).s);
        else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                         m->params + t->off) < 0)
            rc = at_err_set(err, AT_EIO, "%s: cannot read tensor /state_dict/%s", path,
                            t->name);
        else
            rc = check_finite_tensor(path, t, m->params + t->off, err);
        h5u_close(&space);
        h5u_close(&type);
        h5u_close(&d);
    }
    if (rc == 0) {
        sd_check c = {m, {0}};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, state_dict_cb, &c);
        if (c.unexpected[0])
            rc = at_err_set(err, AT_EUSER, "%s: unexpected tensor /state_dict/%s (the "
                            "architecture has no such parameter)", path, c.unexpected);
    }
    h5u_close(&g);
    return rc;
}

int h5_model_load(const char *path, eng_model *m, h5_model_info *info,
                  at_err *err) {
    AT_CHECK(path && m);
    memset(m, 0, sizeof *m);
    h5_model_info mi;
    memset(&mi, 0, sizeof mi);
    int built = 0, rc = 0, n_layers = 0;
    char *s = NULL, *arch = NULL, *source = NULL;
    eng_layer *specs = NULL;
    hid_t f = path_exists(path) ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) {
        if (path_exists(path))
            return at_err_set(err, AT_EUSER, "%s: cannot open model file (it exists but "
                              "is not a readable HDF5 file): %s", path,
                              unopenable_reason(path).s);
        return at_err_set(err, AT_EUSER, "%s: cannot open model file (does it exist? "
                          "train one with `attrib train`)", path);
    }
    /* root attributes */
    int got = h5u_attr_read_str(f, "format", &s);
    if (got == 1 && strcmp(s, "attrib-model") != 0) {
        rc = at_err_set(err, AT_EUSER, "%s: attribute format is '%s', expected "
                        "'attrib-model'", path, s);
        goto done;
    }
    int64_t v[H5IO_MAX_DIMS];
    if (h5u_attr_read_i64s(f, "format_version", v, 1) != 1) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute format_version missing or not "
                        "an integer (not an attrib model file?)", path);
        goto done;
    }
    if (v[0] == 1) {
        rc = at_err_set(err, AT_EUSER, "%s was written by attrib < 0.2 (format_version 1); "
                        "retrain it with `attrib train` or re-export it with "
                        "tools/export_torch.py", path);
        goto done;
    }
    if (v[0] != 2) {
        rc = at_err_set(err, AT_EUSER, "%s: format_version %lld, this attrib reads "
                        "version 2", path, (long long)v[0]);
        goto done;
    }
    if (h5u_attr_read_str(f, "architecture", &arch) != 1) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute architecture missing or not a "
                        "string (not an attrib model file?)", path);
        goto done;
    }
    if (strlen(arch) > ARCH_TEXT_MAX) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute architecture is %zu bytes, "
                        "at most %d", path, strlen(arch), ARCH_TEXT_MAX);
        goto done;
    }
    mi.n_input_dims = h5u_attr_read_i64s(f, "input_shape", mi.input_shape, H5IO_MAX_DIMS);
    if (mi.n_input_dims < 1 || mi.n_input_dims > ENG_MAX_DIMS) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute input_shape missing or not a "
                        "list of 1 to %d integers", path, ENG_MAX_DIMS);
        goto done;
    }
    int in_shape[ENG_MAX_DIMS];
    int64_t D = 1;
    for (int i = 0; i < mi.n_input_dims; i++) {
        if (mi.input_shape[i] < 1 || mi.input_shape[i] > INT32_MAX) D = -1;
        if (D > 0) D *= mi.input_shape[i];
        if (D > INT32_MAX) D = -1;
        in_shape[i] = (int)mi.input_shape[i];
    }
    if (D < 1) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute input_shape %s is not a "
                        "valid shape", path,
                        shape_text_i64(mi.n_input_dims, mi.input_shape).s);
        goto done;
    }
    if (h5u_attr_read_i64s(f, "n_classes", v, 1) != 1 || v[0] < 1 || v[0] > INT32_MAX) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute n_classes missing or not an "
                        "integer >= 1", path);
        goto done;
    }
    mi.n_classes = (int)v[0];
    free(s);
    s = NULL;
    if (h5u_attr_read_str(f, "content_sha256", &s) != 1 || strlen(s) != 64) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute content_sha256 missing or "
                        "not a 64-digit hex string", path);
        goto done;
    }

    /* architecture -> model */
    size_t sl = strlen(path) + 32;
    source = at_malloc(sl, "model source");
    snprintf(source, sl, "%s: architecture", path);
    specs = at_calloc(ENG_MAX_LAYERS, sizeof *specs, "model specs");
    rc = arch_parse_text(arch, source, 0, specs, ENG_MAX_LAYERS, &n_layers, err);
    if (rc) goto done;
    /* shapes and the parameter count, before the parameters are allocated */
    at_err e2;
    at_err_clear(&e2);
    if (eng_model_build(m, specs, n_layers, in_shape, mi.n_input_dims, &e2) != 0) {
        rc = at_err_set(err, e2.code ? e2.code : AT_EUSER, "%s: the architecture with "
                        "input_shape %s: %s", path,
                        shape_text_i64(mi.n_input_dims, mi.input_shape).s, e2.msg);
        goto done;
    }
    if ((int64_t)m->n_params > H5IO_MAX_PARAMS) {
        rc = at_err_set(err, AT_EUSER, "%s: the architecture with input_shape %s has %lld "
                        "parameters; at most %lld are supported", path,
                        shape_text_i64(mi.n_input_dims, mi.input_shape).s,
                        (long long)m->n_params, (long long)H5IO_MAX_PARAMS);
        eng_model_free(m);
        goto done;
    }
    eng_model_alloc_params(m);
    built = 1;
    if (m->out_features != mi.n_classes) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute n_classes is %d but the model "
                        "has %d outputs", path, mi.n_classes, m->out_features);
        goto done;
    }
    rc = read_state_dict(f, path, m, err);
    if (rc) goto done;

    model_hash(arch, m, mi.sha256);
    if (strcmp(mi.sha256, s) != 0) {
        rc = at_err_set(err, AT_EUSER, "%s: content_sha256 mismatch: file says %s, "
                        "the architecture and weights hash to %s (the file was modified "
                        "or is corrupt)", path, s, mi.sha256);
        goto done;
    }
    if (info) *info = mi;
done:
    free(specs);
    free(source);
    free(arch);
    free(s);
    h5u_close(&f);
    if (rc && built) eng_model_free(m);
    if (rc) memset(m, 0, sizeof *m);
    return rc;
}

/* ======================================================= results (MPI) */

struct h5_results {
    char *path;
    MPI_Comm comm;
    int rank;
    hid_t file, dxpl, lcpl;
};

static hid_t h5io_native(h5io_type t) {
    switch (t) {
    case H5IO_F32: return H5T_NATIVE_FLOAT;
    case H5IO_F64: return H5T_NATIVE_DOUBLE;
    case H5IO_I32: return H5T_NATIVE_INT32;
    case H5IO_I64: return H5T_NATIVE_INT64;
    }
    AT_CHECK(!"unknown h5io_type");
    return -1;
}

/* All ranks agree on the outcome: the worst code wins; a rank that did not
 * fail itself reports that another one did. */
static int agree(h5_results *r, int rc, at_err *err) {
    int worst = 0;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, r->comm);
    if (worst != 0 && rc == 0)
        at_err_set(err, worst, "%s: another rank failed (see its error message)",
                   r->path);
    return worst;
}

int h5_results_create(h5_results **out, const char *path, MPI_Comm comm,
                      at_err *err) {
    AT_CHECK(out && path);
    h5_results *r = at_calloc(1, sizeof *r, "h5_results");
    r->path = at_strdup(path, "h5_results path");
    MPI_Comm_dup(comm, &r->comm); /* our agreements never mix with the caller's */
    MPI_Comm_rank(r->comm, &r->rank);
    r->file = r->dxpl = r->lcpl = -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    int rc = 0;
    if (H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0)
        rc = at_err_set(err, AT_EINTERNAL, "%s: cannot set the MPI-IO file driver", path);
    else if ((r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot create the results file (does its "
                        "directory exist and is it writable?)", path);
    h5u_close(&fapl);
    r->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(r->dxpl, H5FD_MPIO_COLLECTIVE);
    r->lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(r->lcpl, 1);
    rc = agree(r, rc, err);
    if (rc) {
        /* H5Fclose is collective; the ranks that opened it close it together
         * (H5Fcreate succeeds or fails on all ranks alike). */
        h5u_close(&r->file);
        h5u_close(&r->lcpl);
        h5u_close(&r->dxpl);
        MPI_Comm_free(&r->comm);
        free(r->path);
        free(r);
        *out = NULL;
        return rc;
    }
    *out = r;
    return 0;
}

/* Open obj ("/" or a path), creating it as a group (and parents) when it does
 * not exist. */
static hid_t open_or_create_obj(h5_results *r, const char *obj) {
    if (strcmp(obj, "/") == 0) return H5Oopen(r->file, "/", H5P_DEFAULT);
    if (H5LTpath_valid(r->file, obj, 1) > 0) return H5Oopen(r->file, obj, H5P_DEFAULT);
    hid_t g = H5Gcreate2(r->file, obj, r->lcpl, H5P_DEFAULT, H5P_DEFAULT);
    return g;
}

static int scale_name_ok(const char *name) {
    return name && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0;
}

int h5_results_scale(h5_results *r, const char *name, h5io_type type, int64_t n,
                     const void *values, const char *description, at_err *err) {
    AT_CHECK(r && scale_name_ok(name) && n >= 0 && (values || n == 0));
    hid_t mt = h5io_native(type);
    hsize_t dims = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dims, NULL), mspace = -1, d = -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    int rc = 0;
    if (H5LTpath_valid(r->file, name, 0) > 0) {
        rc = at_err_set(err, AT_EINTERNAL, "%s: /%s already exists", r->path, name);
        goto done;
    }
    d = H5Dcreate2(r->file, name, mt, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || H5DSset_scale(d, name) < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot create dimension scale /%s", r->path,
                        name);
        goto done;
    }
    if (description && h5u_attr_str(d, "description", description) < 0) {
        rc = at_err_set(err, AT_EIO, "%s: /%s: cannot write attribute description",
                        r->path, name);
        goto done;
    }
    /* rank 0 writes all values, the others select nothing (collective) */
    mspace = H5Screate_simple(1, dims ? &dims : (hsize_t[]){1}, NULL);
    if (r->rank != 0 || n == 0) {
        H5Sselect_none(space);
        H5Sselect_none(mspace);
    }
    /* (a zero-size dataset has nothing to write; H5Dwrite would fail) */
    if (n > 0 && H5Dwrite(d, mt, mspace, space, r->dxpl, values) < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot write dimension scale /%s", r->path,
                        name);
done:
    h5u_close(&dcpl);
    h5u_close(&mspace);
    h5u_close(&space);
    h5u_close(&d);
    return agree(r, rc, err);
}

int h5_results_dataset(h5_results *r, const char *path, h5io_type type,
                       int ndims, const int64_t *dims,
                       const char *const *dim_scales, int64_t chunk_rows,
                       int compression, const char *description, at_err *err) {
    return h5_results_dataset_chunked(r, path, type, ndims, dims, dim_scales, chunk_rows, NULL,
                                      compression, description, err);
}

int h5_results_dataset_chunked(h5_results *r, const char *path, h5io_type type, int ndims,
                               const int64_t *dims, const char *const *dim_scales,
                               int64_t chunk_rows, const int64_t *chunk_dims, int compression,
                               const char *description, at_err *err) {
    AT_CHECK(r && path && path[0] && ndims >= 1 && ndims <= H5IO_MAX_DIMS && dims);
    AT_CHECK(compression >= 0 && compression <= 9);
    hid_t mt = h5io_native(type);
    hsize_t hd[H5IO_MAX_DIMS], chunk[H5IO_MAX_DIMS];
    int empty = 0;
    size_t row_bytes = H5Tget_size(mt);
    for (int i = 0; i < ndims; i++) {
        AT_CHECK(dims[i] >= 0);
        hd[i] = (hsize_t)dims[i];
        chunk[i] = hd[i];
        if (dims[i] == 0) empty = 1;
        if (i > 0) row_bytes *= (size_t)dims[i];
    }
    hid_t space = H5Screate_simple(ndims, hd, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1, scale = -1;
    int rc = 0;
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    if (type == H5IO_F32) {
        float nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan);
    } else if (type == H5IO_F64) {
        double nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan);
    }
    /* An empty dataset cannot be chunked with fixed dims: keep it contiguous. */
    if (!empty) {
        int64_t c = chunk_rows < 1 ? 1 : chunk_rows;
        if (c > dims[0]) c = dims[0];
        /* HDF5 chunks must stay below 4 GiB; keep them under 1 GiB. */
        while (c > 1 && (size_t)c * row_bytes > ((size_t)1 << 30)) c /= 2;
        chunk[0] = (hsize_t)c;
        for (int i = 1; chunk_dims && i < ndims; i++)
            if (chunk_dims[i] >= 1 && chunk_dims[i] < dims[i]) chunk[i] = (hsize_t)chunk_dims[i];
        H5Pset_chunk(dcpl, ndims, chunk);
        if (compression > 0) {
            H5Pset_shuffle(dcpl);
            H5Pset_deflate(dcpl, (unsigned)compression);
        }
    }
    if (H5LTpath_valid(r->file, path, 0) > 0) {
        rc = at_err_set(err, AT_EINTERNAL, "%s: dataset %s already exists", r->path,
                        path);
        goto done;
    }
    /* check the scales before creating anything */
    for (int i = 0; dim_scales && i < ndims && rc == 0; i++) {
        if (!dim_scales[i]) continue;
        if (H5LTpath_valid(r->file, dim_scales[i], 1) <= 0 ||
            (scale = H5Dopen2(r->file, dim_scales[i], H5P_DEFAULT)) < 0) {
            rc = at_err_set(err, AT_EINTERNAL, "%s: dataset %s axis %d: no dimension "
                            "scale /%s (create it with h5_results_scale first)",
                            r->path, path, i, dim_scales[i]);
            break;
        }
        hid_t ss = H5Dget_space(scale);
        hssize_t len = H5Sget_simple_extent_npoints(ss);
        h5u_close(&ss);
        if (len != dims[i])
            rc = at_err_set(err, AT_EINTERNAL, "%s: dataset %s axis %d: scale /%s has "
                            "%lld values, the axis has %lld", r->path, path, i,
                            dim_scales[i], (long long)len, (long long)dims[i]);
        h5u_close(&scale);
    }
    if (rc) goto done;
    d = H5Dcreate2(r->file, path, mt, space, r->lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot create dataset %s %s %s", r->path, path,
                        type_text(mt).s, shape_text(ndims, hd).s);
        goto done;
    }
    if (description && h5u_attr_str(d, "description", description) < 0) {
        rc = at_err_set(err, AT_EIO, "%s: dataset %s: cannot write attribute "
                        "description", r->path, path);
        goto done;
    }
    for (int i = 0; dim_scales && i < ndims; i++) {
        if (!dim_scales[i]) continue;
        scale = H5Dopen2(r->file, dim_scales[i], H5P_DEFAULT);
        if (scale < 0 || H5DSattach_scale(d, scale, (unsigned)i) < 0) {
            rc = at_err_set(err, AT_EIO, "%s: dataset %s axis %d: cannot attach "
                            "dimension scale /%s", r->path, path, i, dim_scales[i]);
            goto done;
        }
        h5u_close(&scale);
    }
done:
    h5u_close(&scale);
    h5u_close(&d);
    h5u_close(&dcpl);
    h5u_close(&space);
    return agree(r, rc, err);
}

typedef struct {
    int64_t row0, nrows;
    size_t boff; /* byte offset of the range's rows in the caller's buffer */
} row_range;

static int range_cmp(const void *a, const void *b) {
    const row_range *x = a, *y = b;
    return (x->row0 > y->row0) - (x->row0 < y->row0);
}

int h5_results_write_rows(h5_results *r, const char *path, int n_ranges,
                          const int64_t *row0, const int64_t *nrows,
                          const void *buf, at_err *err) {
    AT_CHECK(r && path && n_ranges >= 0);
    AT_CHECK(n_ranges == 0 || (row0 && nrows && buf));
    int rc = 0;
    hid_t d = -1, ftype = -1, fs = -1, ms = -1;
    row_range *rg = NULL;
    unsigned char *sorted = NULL;
    const void *wbuf = buf;
    hsize_t dims[H5S_MAX_RANK];
    int ndims = 0;
    size_t row_bytes = 0, row_elems = 1;
    int64_t total = 0;

    if (H5LTpath_valid(r->file, path, 1) <= 0 ||
        (d = H5Dopen2(r->file, path, H5P_DEFAULT)) < 0) {
        rc = at_err_set(err, AT_EINTERNAL, "%s: no dataset %s (create it with "
                        "h5_results_dataset first)", r->path, path);
        goto write;
    }
    ftype = H5Dget_type(d);
    fs = H5Dget_space(d);
    ndims = H5Sget_simple_extent_dims(fs, dims, NULL);
    AT_CHECK(ndims >= 1);
    for (int i = 1; i < ndims; i++) row_elems *= (size_t)dims[i];
    row_bytes = row_elems * H5Tget_size(ftype);

    /* The file selection is visited in increasing row order whatever the
     * order of the ranges, so sort them and reorder buf if needed; adjacent
     * ranges merge. */
    rg = at_malloc((size_t)(n_ranges ? n_ranges : 1) * sizeof *rg, "row ranges");
    int nr = 0, in_order = 1;
    size_t off = 0;
    for (int k = 0; k < n_ranges; k++) {
        AT_CHECK(row0[k] >= 0 && nrows[k] >= 0 &&
                 row0[k] + nrows[k] <= (int64_t)dims[0]);
        if (nrows[k] > 0) {
            rg[nr++] = (row_range){row0[k], nrows[k], off};
            if (nr > 1 && rg[nr - 1].row0 < rg[nr - 2].row0) in_order = 0;
        }
        off += (size_t)nrows[k] * row_bytes;
        total += nrows[k];
    }
    if (!in_order) {
        qsort(rg, (size_t)nr, sizeof *rg, range_cmp);
        sorted = at_malloc(off ? off : 1, "sorted rows");
        size_t o = 0;
        for (int k = 0; k < nr; k++) {
            size_t len = (size_t)rg[k].nrows * row_bytes;
            memcpy(sorted + o, (const unsigned char *)buf + rg[k].boff, len);
            rg[k].boff = o;
            o += len;
        }
        wbuf = sorted;
    }
    int merged = 0;
    for (int k = 0; k < nr; k++) {
        if (merged > 0) {
            AT_CHECK(rg[k].row0 >= rg[merged - 1].row0 + rg[merged - 1].nrows);
            if (rg[k].row0 == rg[merged - 1].row0 + rg[merged - 1].nrows) {
                rg[merged - 1].nrows += rg[k].nrows;
                continue;
            }
        }
        rg[merged++] = rg[k];
    }
    if (merged == 0) {
        H5Sselect_none(fs);
    } else {
        for (int k = 0; k < merged && rc == 0; k++) {
            hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
            start[0] = (hsize_t)rg[k].row0;
            count[0] = (hsize_t)rg[k].nrows;
            for (int i = 1; i < ndims; i++) count[i] = dims[i];
            if (H5Sselect_hyperslab(fs, k ? H5S_SELECT_OR : H5S_SELECT_SET, start, NULL,
                                    count, NULL) < 0)
                rc = at_err_set(err, AT_EINTERNAL, "%s: dataset %s: cannot select rows "
                                "[%lld, %lld)", r->path, path, (long long)rg[k].row0,
                                (long long)(rg[k].row0 + rg[k].nrows));
        }
    }
    hsize_t nel = (hsize_t)total * row_elems;
    ms = H5Screate_simple(1, nel ? &nel : (hsize_t[]){1}, NULL);
    if (nel == 0) H5Sselect_none(ms);

write:
    /* Nobody enters the collective write unless everybody can. */
    rc = agree(r, rc, err);
    /* every rank sees the same dims: a zero-size dataset is skipped by all */
    if (rc == 0 && H5Sget_simple_extent_npoints(fs) > 0 &&
        H5Dwrite(d, ftype, ms, fs, r->dxpl, wbuf) < 0)
        rc = at_err_set(err, AT_EIO, "%s: dataset %s: collective write of %lld rows "
                        "failed", r->path, path, (long long)total);
    free(sorted);
    free(rg);
    h5u_close(&ms);
    h5u_close(&fs);
    h5u_close(&ftype);
    h5u_close(&d);
    return agree(r, rc, err);
}

static int results_attr(h5_results *r, const char *obj, const char *name, hid_t type,
                        int n, const void *value, at_err *err) {
    AT_CHECK(r && obj && name);
    int rc = 0;
    hid_t o = open_or_create_obj(r, obj);
    if (o < 0) {
        rc = at_err_set(err, AT_EIO, "%s: cannot open or create %s", r->path, obj);
    } else {
        int st;
        if (n < 0)
            st = h5u_attr_scalar(o, name, type, value);
        else
            st = h5u_attr_vec(o, name, type, n, value);
        if (st < 0)
            rc = at_err_set(err, AT_EIO, "%s: %s: cannot write attribute %s", r->path,
                            obj, name);
    }
    h5u_close(&o);
    return agree(r, rc, err);
}

int h5_results_attr_str(h5_results *r, const char *obj, const char *name,
                        const char *value, at_err *err) {
    AT_CHECK(value);
    hid_t t = h5u_str_type();
    int rc = results_attr(r, obj, name, t, -1, &value, err);
    h5u_close(&t);
    return rc;
}

int h5_results_attr_f64(h5_results *r, const char *obj, const char *name,
                        double value, at_err *err) {
    return results_attr(r, obj, name, H5T_NATIVE_DOUBLE, -1, &value, err);
}

int h5_results_attr_i64(h5_results *r, const char *obj, const char *name,
                        int64_t value, at_err *err) {
    return results_attr(r, obj, name, H5T_NATIVE_INT64, -1, &value, err);
}

int h5_results_attr_f64v(h5_results *r, const char *obj, const char *name,
                         const double *values, int n, at_err *err) {
    AT_CHECK(n >= 0 && (values || n == 0));
    return results_attr(r, obj, name, H5T_NATIVE_DOUBLE, n, values, err);
}

int h5_results_close(h5_results *r, at_err *err) {
    if (!r) return 0;
    int rc = 0;
    h5u_close(&r->lcpl);
    h5u_close(&r->dxpl);
    if (r->file >= 0) rc = h5u_close_written(&r->file, r->path, err);
    rc = agree(r, rc, err);
    MPI_Comm_free(&r->comm);
    free(r->path);
    free(r);
    return rc;
}

/* ========================================================== logits file */

/* A contiguous 1-D or 2-D dataset in a serial file, written whole. */
static hid_t write_plain(hid_t f, const char *name, hid_t type, int rank,
                         const hsize_t *dims, const void *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    if (d >= 0 && n > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        h5u_close(&d);
    h5u_close(&space);
    return d;
}

int h5_write_logits(const char *path, const float *logits, const int32_t *labels,
                    int64_t row0, int64_t n, int n_classes, at_err *err) {
    AT_CHECK(path && (logits || n == 0) && row0 >= 0 && n >= 0 && n_classes >= 1);
    int rc = 0;
    char *tmp;
    hid_t f = h5u_create_tmp(path, &tmp, err);
    int64_t *index = at_malloc((size_t)(n ? n : 1) * sizeof *index, "logits index");
    int32_t *cls = at_malloc((size_t)n_classes * sizeof *cls, "logits classes");
    for (int64_t i = 0; i < n; i++) index[i] = row0 + i;
    for (int c = 0; c < n_classes; c++) cls[c] = c;
    hsize_t dn = (hsize_t)n, dc = (hsize_t)n_classes, dl[2] = {dn, dc};
    hid_t ds_sample = -1, ds_class = -1, d_logits = -1, d_labels = -1, d_index = -1;
    if (f < 0) {
        rc = err->code;
        goto done;
    }
    ds_sample = write_plain(f, "sample", H5T_NATIVE_INT64, 1, &dn, index);
    ds_class = write_plain(f, "class", H5T_NATIVE_INT32, 1, &dc, cls);
    d_logits = write_plain(f, "logits", H5T_NATIVE_FLOAT, 2, dl, logits);
    d_index = write_plain(f, "index", H5T_NATIVE_INT64, 1, &dn, index);
    if (labels) d_labels = write_plain(f, "labels", H5T_NATIVE_INT32, 1, &dn, labels);
    if (ds_sample < 0 || ds_class < 0 || d_logits < 0 || d_index < 0 ||
        (labels && d_labels < 0) || H5DSset_scale(ds_sample, "sample") < 0 ||
        H5DSset_scale(ds_class, "class") < 0 ||
        H5DSattach_scale(d_logits, ds_sample, 0) < 0 ||
        H5DSattach_scale(d_logits, ds_class, 1) < 0 ||
        H5DSattach_scale(d_index, ds_sample, 0) < 0 ||
        (labels && H5DSattach_scale(d_labels, ds_sample, 0) < 0) ||
        h5u_attr_str(ds_sample, "description", "row index in the dataset split") < 0 ||
        h5u_attr_str(d_logits, "description", "model outputs before softmax") < 0 ||
        h5u_attr_str(d_index, "description", "row index in the dataset split") < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot write /logits, /labels, /index and "
                        "their dimension scales", path);
done:
    h5u_close(&d_labels);
    h5u_close(&d_index);
    h5u_close(&d_logits);
    h5u_close(&ds_class);
    h5u_close(&ds_sample);
    if (f >= 0) {
        int crc = h5u_close_written(&f, path, err);
        if (rc == 0) rc = crc;
        if (rc == 0) rc = commit_tmp(tmp, path, err);
        if (rc) unlink(tmp);
    }
    free(cls);
    free(index);
    free(tmp);
    return rc;
}

int h5_results_write_tile(h5_results *r, const char *path, int has_tile, int64_t row0,
                          int64_t nrows, int64_t col0, int64_t ncols, const void *buf,
                          at_err *err) {
    AT_CHECK(r && path);
    int rc = 0;
    hid_t d = -1, ftype = -1, fs = -1, ms = -1;
    hsize_t dims[H5S_MAX_RANK];
    if (H5LTpath_valid(r->file, path, 1) <= 0 ||
        (d = H5Dopen2(r->file, path, H5P_DEFAULT)) < 0) {
        rc = at_err_set(err, AT_EINTERNAL, "%s: no dataset %s (create it with "
                        "h5_results_dataset first)", r->path, path);
        goto write;
    }
    ftype = H5Dget_type(d);
    fs = H5Dget_space(d);
    AT_CHECK(H5Sget_simple_extent_dims(fs, dims, NULL) == 2);
    hsize_t nel = 1;
    if (has_tile && nrows > 0 && ncols > 0) {
        AT_CHECK(row0 >= 0 && col0 >= 0 && row0 + nrows <= (int64_t)dims[0] &&
                 col0 + ncols <= (int64_t)dims[1] && buf);
        hsize_t start[2] = {(hsize_t)row0, (hsize_t)col0};
        hsize_t count[2] = {(hsize_t)nrows, (hsize_t)ncols};
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        nel = (hsize_t)(nrows * ncols);
        ms = H5Screate_simple(1, &nel, NULL);
    } else {
        H5Sselect_none(fs);
        ms = H5Screate_simple(1, &nel, NULL);
        H5Sselect_none(ms);
    }
write:
    rc = agree(r, rc, err);
    if (rc == 0 && H5Sget_simple_extent_npoints(fs) > 0 &&
        H5Dwrite(d, ftype, ms, fs, r->dxpl, buf) < 0)
        rc = at_err_set(err, AT_EIO, "%s: dataset %s: collective write of a %lld x %lld tile "
                        "failed", r->path, path, (long long)nrows, (long long)ncols);
    h5u_close(&ms);
    h5u_close(&fs);
    h5u_close(&ftype);
    h5u_close(&d);
    return agree(r, rc, err);
}
