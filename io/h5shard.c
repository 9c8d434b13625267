/* h5shard.c — shard files of finished work units. See h5shard.h. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
    if (*id >= 0) fn(*id);
    *id = -1;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int h5_file_commit(const char *tmp, const char *final, at_err *err) {
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return at_err_set(err, AT_EIO, "%s: cannot fsync: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return at_err_set(err, AT_EIO, "%s: cannot rename into place: %s", final,
                          strerror(e));
    }
    char *d = at_strdup(final, "path");
    int rc = fsync_dir(dirname(d));
    free(d);
    if (rc != 0)
        return at_err_set(err, AT_EIO, "%s: cannot fsync its directory: %s", final,
                          strerror(errno));
    return 0;
}

static char *tmp_of(const char *path) {
    size_t n = strlen(path) + 8;
    char *t = at_malloc(n, "path");
    snprintf(t, n, "%s.tmp", path);
    return t;
}

static int write_str_attr(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

static int write_1d_i64(hid_t f, const char *name, int64_t n, const int64_t *v) {
    hsize_t d = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(s);
    return rc < 0 ? -1 : 0;
}

int h5_shard_write(const char *path, const char *plan_hash, int k, const int64_t *units,
                   const int *rows, int64_t d, double *const *data, at_err *err) {
    AT_CHECK(k >= 1 && d >= 1);
    char *tmp = tmp_of(path);
    int64_t *off = at_malloc((size_t)(k + 1) * sizeof(int64_t), "shard offsets");
    off[0] = 0;
    for (int i = 0; i < k; i++) off[i + 1] = off[i] + rows[i];
    int bad = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        at_err_set(err, AT_EIO, "%s: cannot create shard file", tmp);
        free(off);
        free(tmp);
        return err->code;
    }
    int32_t version = 1;
    hid_t sc = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sc, H5P_DEFAULT, H5P_DEFAULT);
    bad |= a < 0 || H5Awrite(a, H5T_NATIVE_INT32, &version) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sc);
    bad |= write_str_attr(f, "format", "attrib-shard") != 0;
    bad |= write_str_attr(f, "plan_hash", plan_hash) != 0;
    bad |= write_1d_i64(f, "units", k, units) != 0;
    bad |= write_1d_i64(f, "offsets", k + 1, off) != 0;
    hsize_t dims[2] = {(hsize_t)off[k], (hsize_t)d};
    hid_t s = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(f, "partials", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    bad |= ds < 0;
    at_fault("shard_write"); /* tests: die with a half-written shard */
    for (int i = 0; i < k && !bad; i++) { /* one hyperslab per unit */
        if (rows[i] == 0) continue;
        hsize_t start[2] = {(hsize_t)off[i], 0}, count[2] = {(hsize_t)rows[i], (hsize_t)d};
        hid_t ms = H5Screate_simple(2, count, NULL);
        H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, count, NULL);
        bad |= H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, data[i]) < 0;
        H5Sclose(ms);
    }
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(s);
    bad |= H5Fclose(f) < 0;
    free(off);
    int rc = 0;
    if (bad) {
        unlink(tmp);
        rc = at_err_set(err, AT_EIO, "%s: cannot write shard (disk full?)", tmp);
    } else {
        at_fault("shard_commit"); /* tests: die before the rename */
        rc = h5_file_commit(tmp, path, err);
    }
    free(tmp);
    return rc;
}

static int read_str_attr(hid_t obj, const char *name, char **out) {
    *out = NULL;
    if (H5Aexists(obj, name) <= 0) return 1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft));
            char *s = NULL;
            if (H5Aread(a, mt, &s) >= 0 && s) {
                *out = at_strdup(s, "attribute");
                H5free_memory(s);
                rc = 0;
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            if (n > 0 && n < (1u << 20)) {
                hid_t mt = H5Tcopy(H5T_C_S1);
                H5Tset_size(mt, n + 1);
                char *s = at_calloc(n + 2, 1, "attribute");
                if (H5Aread(a, mt, s) >= 0) {
                    *out = s;
                    rc = 0;
                } else {
                    free(s);
                }
                H5Tclose(mt);
            }
        }
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

/* A 1-D int64 dataset of exactly n (n < 0: any) elements; *got its length. */
static int64_t *read_1d_i64(hid_t f, const char *name, int64_t n, int64_t *got) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return NULL;
    hid_t s = H5Dget_space(ds), t = H5Dget_type(ds);
    hsize_t d = 0;
    int64_t *v = NULL;
    if (H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, &d, NULL) == 1 &&
        H5Tget_class(t) == H5T_INTEGER && (n < 0 || (int64_t)d == n) && d < (1u << 30)) {
        v = at_malloc((size_t)(d + 1) * sizeof(int64_t), "shard index");
        if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            free(v);
            v = NULL;
        }
        *got = (int64_t)d;
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(ds);
    return v;
}

int h5_shard_read_index(const char *path, h5_shard_index *idx, at_err *err) {
    memset(idx, 0, sizeof *idx);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return at_err_set(err, AT_EIO, "%s: cannot open shard (not HDF5?)", path);
    char *fmt = NULL, *ph = NULL;
    int64_t k = 0, k1 = 0;
    int ok = read_str_attr(f, "format", &fmt) == 0 && !strcmp(fmt, "attrib-shard") &&
             read_str_attr(f, "plan_hash", &ph) == 0 && strlen(ph) == 64;
    if (ok) idx->units = read_1d_i64(f, "units", -1, &k);
    if (idx->units) idx->offsets = read_1d_i64(f, "offsets", k + 1, &k1);
    ok = ok && idx->units && idx->offsets && k >= 1;
    for (int64_t i = 0; ok && i < k; i++)
        ok = idx->offsets[i] <= idx->offsets[i + 1] && idx->offsets[0] == 0 &&
             idx->units[i] >= 0;
    if (ok) {
        hid_t ds = H5Dopen2(f, "partials", H5P_DEFAULT);
        hsize_t d[2] = {0, 0};
        ok = ds >= 0;
        if (ok) {
            hid_t s = H5Dget_space(ds);
            ok = H5Sget_simple_extent_ndims(s) == 2 &&
                 H5Sget_simple_extent_dims(s, d, NULL) == 2 &&
                 (int64_t)d[0] == idx->offsets[k] && d[1] >= 1;
            H5Sclose(s);
            H5Dclose(ds);
        }
        idx->d = (int64_t)d[1];
    }
    if (ok) {
        idx->k = (int)k;
        memcpy(idx->plan_hash, ph, 65);
    }
    free(fmt);
    free(ph);
    H5Fclose(f);
    if (!ok) {
        h5_shard_index_free(idx);
        return at_err_set(err, AT_EIO, "%s: not a complete attrib shard file", path);
    }
    return 0;
}

void h5_shard_index_free(h5_shard_index *idx) {
    free(idx->units);
    free(idx->offsets);
    memset(idx, 0, sizeof *idx);
}

struct h5_shard_reader {
    char *path;
    hid_t file, dset;
};

h5_shard_reader *h5_shard_reader_new(void) {
    h5_shard_reader *r = at_calloc(1, sizeof *r, "shard reader");
    r->file = r->dset = -1;
    return r;
}

static void reader_close(h5_shard_reader *r) {
    close_id(&r->dset, H5Dclose);
    close_id(&r->file, H5Fclose);
    free(r->path);
    r->path = NULL;
}

int h5_shard_read_rows(h5_shard_reader *r, const char *path, int64_t r0, int64_t r1,
                       int64_t d, double *out, at_err *err) {
    if (!r->path || strcmp(r->path, path)) {
        reader_close(r);
        r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (r->file >= 0) r->dset = H5Dopen2(r->file, "partials", H5P_DEFAULT);
        if (r->dset < 0) {
            reader_close(r);
            return at_err_set(err, AT_EIO, "%s: cannot open shard /partials", path);
        }
        r->path = at_strdup(path, "path");
    }
    if (r1 == r0) return 0;
    hid_t s = H5Dget_space(r->dset);
    hsize_t start[2] = {(hsize_t)r0, 0}, count[2] = {(hsize_t)(r1 - r0), (hsize_t)d};
    hid_t ms = H5Screate_simple(2, count, NULL);
    herr_t rc = H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0) rc = H5Dread(r->dset, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(s);
    if (rc < 0)
        return at_err_set(err, AT_EIO, "%s: cannot read rows %lld:%lld of /partials", path,
                          (long long)r0, (long long)r1);
    return 0;
}

void h5_shard_reader_free(h5_shard_reader *r) {
    if (!r) return;
    reader_close(r);
    free(r);
}

int h5_shard_write_text(const char *path, const char *text, at_err *err) {
    char *tmp = tmp_of(path);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = at_err_set(err, AT_EUSER, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t n = strlen(text);
        int bad = fwrite(text, 1, n, f) != n;
        bad |= fclose(f) != 0;
        if (bad) {
            unlink(tmp);
            rc = at_err_set(err, AT_EIO, "%s: cannot write (disk full?)", tmp);
        } else {
            rc = h5_file_commit(tmp, path, err);
        }
    }
    free(tmp);
    return rc;
}

/* Does every group along obj, and obj itself, exist? */
static int obj_exists(hid_t f, const char *obj) {
    char buf[1200];
    if (snprintf(buf, sizeof buf, "%s", obj) >= (int)sizeof buf) return 0;
    for (char *q = buf + 1;; q++) {
        if (*q != '/' && *q != '\0') continue;
        char ch = *q;
        *q = '\0';
        if (buf[0] && strcmp(buf, "/") && H5Lexists(f, buf, H5P_DEFAULT) <= 0) return 0;
        if (!ch) return 1;
        *q = ch;
    }
}

int h5_file_obj_attr(const char *path, const char *obj, const char *name, char **out) {
    *out = NULL;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    int rc = 1;
    if (obj_exists(f, obj)) {
        hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
        if (o >= 0) rc = read_str_attr(o, name, out);
        if (o >= 0) H5Oclose(o);
    }
    H5Fclose(f);
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    return rc < 0 ? 1 : rc;
}

int h5_file_root_attr(const char *path, const char *name, char **out) {
    return h5_file_obj_attr(path, "/", name, out);
}
