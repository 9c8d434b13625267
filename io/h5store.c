/* h5store.c — gradient store blocks (h5store.h). */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"
#include "h5store.h"
#include "h5util.h"

int h5_store_write(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                   int64_t dim, const float *F, const double *prob, at_err *err) {
    AT_CHECK(rows >= 1 && dim >= 1 && F);
    char *tmp = NULL;
    hid_t f = h5u_create_tmp(path, &tmp, err);
    if (f < 0) {
        free(tmp);
        return err->code ? err->code : AT_EIO;
    }
    int bad = 0;
    int64_t version = 1;
    bad |= h5u_attr_str(f, "format", "attrib-features") != 0;
    bad |= h5u_attr_scalar(f, "format_version", H5T_NATIVE_INT64, &version) != 0;
    bad |= h5u_attr_str(f, "provenance", prov_hash) != 0;
    bad |= h5u_attr_scalar(f, "row0", H5T_NATIVE_INT64, &row0) != 0;
    bad |= h5u_attr_scalar(f, "rows", H5T_NATIVE_INT64, &rows) != 0;
    bad |= h5u_attr_scalar(f, "dim", H5T_NATIVE_INT64, &dim) != 0;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)dim};
    hsize_t chunk[2] = {(hsize_t)(rows < 256 ? rows : 256), (hsize_t)dim};
    while (chunk[0] > 1 && chunk[0] * chunk[1] * 4 > ((hsize_t)1 << 28)) chunk[0] /= 2;
    if (chunk[0] * chunk[1] * 4 > ((hsize_t)1 << 30)) chunk[1] = ((hsize_t)1 << 28) / 4;
    hid_t s = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* no deflate: projected gradients are noise-like floats; deflate saved
     * ~3% and cost ~16% of a TRAK run's CPU (bench/run_tda_bench.sh) */
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d = H5Dcreate2(f, "features", H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    bad |= d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, F) < 0;
    h5u_close(&d);
    h5u_close(&dcpl);
    h5u_close(&s);
    double *pv = NULL;
    if (!prob) {
        pv = at_malloc((size_t)rows * sizeof(double), "prob");
        for (int64_t i = 0; i < rows; i++) pv[i] = NAN;
    }
    s = H5Screate_simple(1, dims, NULL);
    d = H5Dcreate2(f, "prob", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad |= d < 0 ||
           H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, prob ? prob : pv) < 0;
    free(pv);
    h5u_close(&d);
    h5u_close(&s);
    at_err e2 = {0};
    bad |= h5u_close_written(&f, tmp, &e2) != 0;
    int rc = 0;
    if (bad) {
        unlink(tmp);
        rc = at_err_set(err, AT_EIO, "%s: cannot write gradient store block (disk full?)", tmp);
    } else {
        rc = h5_file_commit(tmp, path, err);
    }
    free(tmp);
    return rc;
}

/* Open path and check its attributes; returns the file or -1 with *why. */
static hid_t open_block(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                        int64_t dim, const char **why) {
    *why = "cannot be opened";
    if (access(path, R_OK) != 0) return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    char *fmt = NULL, *prov = NULL;
    int64_t v[1];
    int ok = h5u_attr_read_str(f, "format", &fmt) == 1 && !strcmp(fmt, "attrib-features");
    if (!ok) *why = "is not a gradient store block";
    if (ok && !(h5u_attr_read_str(f, "provenance", &prov) == 1 && !strcmp(prov, prov_hash))) {
        ok = 0;
        *why = "belongs to another feature set (provenance differs)";
    }
    if (ok && !(h5u_attr_read_i64s(f, "row0", v, 1) == 1 && v[0] == row0 &&
                h5u_attr_read_i64s(f, "rows", v, 1) == 1 && v[0] == rows &&
                h5u_attr_read_i64s(f, "dim", v, 1) == 1 && v[0] == dim)) {
        ok = 0;
        *why = "holds other rows or another dimension";
    }
    free(fmt);
    free(prov);
    if (!ok) h5u_close(&f);
    return ok ? f : -1;
}

int h5_store_has(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                 int64_t dim) {
    const char *why;
    hid_t f = open_block(path, prov_hash, row0, rows, dim, &why);
    if (f < 0) return 0;
    int ok = H5LTpath_valid(f, "features", 1) > 0 && H5LTpath_valid(f, "prob", 1) > 0;
    h5u_close(&f);
    return ok;
}

int h5_store_read(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                  int64_t dim, float *F, double *prob, at_err *err) {
    const char *why;
    hid_t f = open_block(path, prov_hash, row0, rows, dim, &why);
    if (f < 0) return at_err_set(err, AT_EIO, "%s: gradient store block %s", path, why);
    int bad = 0;
    hid_t d = H5Dopen2(f, "features", H5P_DEFAULT);
    bad |= d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, F) < 0;
    h5u_close(&d);
    if (prob && !bad) {
        d = H5Dopen2(f, "prob", H5P_DEFAULT);
        bad |= d < 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, prob) < 0;
        h5u_close(&d);
    }
    h5u_close(&f);
    if (bad) return at_err_set(err, AT_EIO, "%s: cannot read /features or /prob", path);
    return 0;
}

int h5_store_prepare_dir(const char *dir, const char *prov_text, at_err *err) {
    size_t n = strlen(dir) + 32;
    char *p = at_malloc(n, "path");
    snprintf(p, n, "%s/provenance.txt", dir);
    int rc = 0;
    if (access(p, F_OK) != 0) {
        rc = h5u_mkdir_parents(p, err);
        if (!rc) rc = h5_shard_write_text(p, prov_text, err);
    }
    free(p);
    return rc;
}

int h5_mkdir_parents(const char *path, at_err *err) { return h5u_mkdir_parents(path, err); }
