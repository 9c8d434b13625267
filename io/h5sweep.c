/* h5sweep.c — see h5sweep.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5sweep.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"
#include "h5util.h"

/* A 1-D variable-length string dataset of n strings at path, along the
 * dimension scale `point`. */
static int write_strings(hid_t f, const char *path, int n, const char *const *s, hid_t point) {
    hsize_t dim = (hsize_t)n;
    hid_t t = h5u_str_type(), sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(f, path, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0 ||
                     H5DSattach_scale(d, point, 0) < 0
                 ? -1
                 : 0;
    h5u_close(&d);
    h5u_close(&sp);
    h5u_close(&t);
    return rc;
}

/* ---- dimension scales of a copied tree
 *
 * H5Ocopy keeps DIMENSION_LIST and REFERENCE_LIST as they were: object
 * references to the source file's addresses, which readers of the copy
 * cannot dereference (h5netcdf, so xarray, fails on them). So after the
 * copy they are removed and every attachment of the source is made again
 * between the copies (H5DSattach_scale). */

typedef struct {
    hid_t dst;         /* the copy */
    size_t src_prefix; /* length of the source object's path ("/" = 1) */
    int failed;
} rescale;

typedef struct {
    rescale *r;
    hid_t dst_ds;
    unsigned dim;
} scale_visit;

/* The dataset that link `name` of g names, opened: > 0; 0 when the link
 * names something else; -1 on an HDF5 failure. The callbacks' common start. */
static hid_t open_linked_dataset(hid_t g, const char *name, const H5L_info_t *info) {
    if (info->type != H5L_TYPE_HARD) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return -1;
    if (oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    return d < 0 ? -1 : d;
}

static herr_t drop_refs_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    rescale *r = data;
    hid_t d = open_linked_dataset(g, name, info);
    if (d <= 0) return (herr_t)d;
    if (H5Aexists(d, "DIMENSION_LIST") > 0 && H5Adelete(d, "DIMENSION_LIST") < 0) r->failed = 1;
    if (H5Aexists(d, "REFERENCE_LIST") > 0 && H5Adelete(d, "REFERENCE_LIST") < 0) r->failed = 1;
    H5Dclose(d);
    return r->failed ? -1 : 0;
}

/* For one scale of a source dataset: attach the copy of that scale to the
 * copy of the dataset. */
static herr_t attach_cb(hid_t did, unsigned dim, hid_t scale, void *data) {
    (void)did;
    scale_visit *v = data;
    char name[1024];
    ssize_t n = H5Iget_name(scale, name, sizeof name);
    if (n <= 0 || (size_t)n >= sizeof name || (size_t)n < v->r->src_prefix) return -1;
    const char *rel = name + v->r->src_prefix;
    while (*rel == '/') rel++;
    hid_t s = H5Dopen2(v->r->dst, rel, H5P_DEFAULT);
    herr_t st = s < 0 || H5DSattach_scale(v->dst_ds, s, dim) < 0 ? -1 : 0;
    if (s >= 0) H5Dclose(s);
    return st < 0 ? -1 : 0;
}

static herr_t attach_all_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    rescale *r = data;
    hid_t d = open_linked_dataset(g, name, info);
    if (d <= 0) return (herr_t)d;
    int rank = 0;
    if (H5Aexists(d, "DIMENSION_LIST") > 0) {
        hid_t sp = H5Dget_space(d);
        rank = H5Sget_simple_extent_ndims(sp);
        H5Sclose(sp);
    }
    hid_t dd = rank > 0 ? H5Dopen2(r->dst, name, H5P_DEFAULT) : -1;
    if (rank > 0 && dd < 0) r->failed = 1;
    for (int i = 0; i < rank && !r->failed; i++) {
        if (H5DSget_num_scales(d, (unsigned)i) <= 0) continue;
        scale_visit v = {r, dd, (unsigned)i};
        int idx = 0;
        if (H5DSiterate_scales(d, (unsigned)i, &idx, attach_cb, &v) < 0) r->failed = 1;
    }
    if (dd >= 0) H5Dclose(dd);
    H5Dclose(d);
    return r->failed ? -1 : 0;
}

/* Re-attach the dimension scales of the copy dst of src. 0 or -1. */
static int reattach_scales(hid_t src, const char *src_obj, hid_t dst) {
    rescale r = {dst, strlen(src_obj), 0};
    if (H5Lvisit(dst, H5_INDEX_NAME, H5_ITER_INC, drop_refs_cb, &r) < 0 || r.failed) return -1;
    if (H5Lvisit(src, H5_INDEX_NAME, H5_ITER_INC, attach_all_cb, &r) < 0 || r.failed) return -1;
    return 0;
}

int h5_sweep_write(const char *path, const h5_sweep_desc *d, at_err *err) {
    AT_CHECK(path != NULL && d != NULL && err != NULL && d->n_points > 0);
    char *tmp = NULL;
    hid_t f = h5u_create_tmp(path, &tmp, err), g = -1;
    const char **col = at_malloc((size_t)d->n_points * sizeof(char *), "sweep column");
    int rc = f < 0 ? err->code : 0;
    if (!rc) {
        int64_t one = 1, np = d->n_points;
        hid_t i64 = H5T_NATIVE_INT64;
        if (h5u_attr_str(f, "format", "attrib-results") ||
            h5u_attr_scalar(f, "format_version", i64, &one) ||
            h5u_attr_str(f, "content", "sweep") || h5u_attr_str(f, "job_yaml", d->job_yaml) ||
            h5u_attr_str(f, "job_file", d->job_file) || h5u_attr_str(f, "plan", d->plan) ||
            h5u_attr_str(f, "plan_hash", d->plan_hash) || h5u_attr_scalar(f, "n_points", i64, &np))
            rc = at_err_set(err, AT_EIO, "%s: cannot write the root attributes", tmp);
    }
    hid_t scale = -1; /* /sweep/point: 0..P-1, the dimension of the index */
    if (!rc) {
        g = H5Gcreate2(f, "/sweep", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        h5u_close(&g);
        hsize_t dim = (hsize_t)d->n_points;
        int64_t *idx = at_malloc((size_t)d->n_points * sizeof(int64_t), "point index");
        for (int p = 0; p < d->n_points; p++) idx[p] = p;
        hid_t sp = H5Screate_simple(1, &dim, NULL);
        scale =
            H5Dcreate2(f, "/sweep/point", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (scale < 0 ||
            H5Dwrite(scale, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, idx) < 0 ||
            H5DSset_scale(scale, "point") < 0)
            rc = at_err_set(err, AT_EIO, "%s: cannot write /sweep/point", tmp);
        h5u_close(&sp);
        free(idx);
    }
    if (!rc) {
        for (int p = 0; p < d->n_points; p++) col[p] = d->points[p].name;
        if (write_strings(f, "/sweep/name", d->n_points, col, scale))
            rc = at_err_set(err, AT_EIO, "%s: cannot write /sweep/name", tmp);
        for (int k = 0; k < d->n_keys && !rc; k++) {
            char dp[1200];
            snprintf(dp, sizeof dp, "/sweep/%s", d->keys[k]);
            for (int p = 0; p < d->n_points; p++) col[p] = d->values[(size_t)p * d->n_keys + k];
            if (write_strings(f, dp, d->n_points, col, scale))
                rc = at_err_set(err, AT_EIO, "%s: cannot write %s", tmp, dp);
        }
    }
    h5u_close(&scale);
    if (!rc) {
        g = H5Gcreate2(f, "/points", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) rc = at_err_set(err, AT_EIO, "%s: cannot create /points", tmp);
        h5u_close(&g);
    }
    /* H5Ocopy of a whole tree keeps the object references inside it (the
     * dimension scales' DIMENSION_LIST and REFERENCE_LIST) pointing into
     * the source file: reattach_scales makes them again between the copies.
     * A point of a sweep file is at the same path there as here (dst). */
    for (int p = 0; p < d->n_points && !rc; p++) {
        const h5_sweep_point *pt = &d->points[p];
        char dst[1200];
        snprintf(dst, sizeof dst, "/points/%s", pt->name);
        const char *src_obj = pt->in_sweep_file ? dst : "/";
        hid_t s = H5Fopen(pt->src_file, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (s < 0 || H5Ocopy(s, src_obj, f, dst, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = at_err_set(err, AT_EIO, "%s: cannot copy %s:%s (point %d, '%s') to %s", path,
                            pt->src_file, src_obj, p, pt->name, dst);
        hid_t sg = rc ? -1 : H5Gopen2(s, src_obj, H5P_DEFAULT);
        hid_t dg = rc ? -1 : H5Gopen2(f, dst, H5P_DEFAULT);
        if (!rc && (sg < 0 || dg < 0 || reattach_scales(sg, src_obj, dg)))
            rc = at_err_set(err, AT_EIO,
                            "%s: cannot attach the dimension scales of %s "
                            "(point %d, '%s') again",
                            path, dst, p, pt->name);
        h5u_close(&dg);
        h5u_close(&sg);
        h5u_close(&s);
    }
    free(col);
    if (f >= 0 && h5u_close_written(&f, path, err) && !rc) rc = err->code;
    if (!rc) rc = h5_file_commit(tmp, path, err);
    if (rc && tmp) unlink(tmp);
    free(tmp);
    return rc;
}
