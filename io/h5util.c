/* h5util.c — see h5util.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Close any HDF5 handle we own and mark it closed (-1). */
void h5u_close(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: H5Idec_ref(*id); break;
    }
    *id = -1;
}

/* Variable-length UTF-8 string type (h5py reads it back as str). Caller
 * closes. */
hid_t h5u_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* A number type of class cls that HDF5 can convert without huge buffers: a
 * damaged file can declare a "float" of 4 GB per element, and H5Dread would
 * try to allocate a conversion buffer for one. Floats up to 16 bytes (long
 * double), integers up to 8. */
int h5u_number_type_ok(hid_t type, H5T_class_t cls) {
    size_t sz = H5Tget_size(type);
    return H5Tget_class(type) == cls && sz >= 1 && sz <= (cls == H5T_FLOAT ? 16u : 8u);
}

/* Create the parent directories of path (like mkdir -p dirname(path)). */
int h5u_mkdir_parents(const char *path, at_err *err) {
    char *p = at_strdup(path, "mkdir_parents");
    int rc = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = at_err_set(err, AT_EIO, "%s: cannot create directory %s: %s", path,
                            p, strerror(errno));
            break;
        }
        *s = '/';
    }
    free(p);
    return rc;
}

char *h5u_tmp_path(const char *path) {
    size_t n = strlen(path);
    char *t = at_malloc(n + 5, "tmp_name");
    memcpy(t, path, n);
    memcpy(t + n, ".tmp", 5);
    return t;
}

/* Number of HDF5 objects other than the file itself still open in file. */
hid_t h5u_create_tmp(const char *path, char **tmp, at_err *err) {
    *tmp = h5u_tmp_path(path);
    if (h5u_mkdir_parents(path, err)) return -1;
    hid_t f = H5Fcreate(*tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) at_err_set(err, AT_EIO, "%s: cannot create %s", path, *tmp);
    return f;
}

static ssize_t open_objects(hid_t file) {
    return H5Fget_obj_count(file, H5F_OBJ_DATASET | H5F_OBJ_GROUP |
                                      H5F_OBJ_DATATYPE | H5F_OBJ_ATTR |
                                      H5F_OBJ_LOCAL);
}

/* Close a file we wrote; an object still open inside it is a bug in this
 * file (the file would stay open), reported as AT_EINTERNAL. */
int h5u_close_written(hid_t *file, const char *path, at_err *err) {
    int rc = 0;
    ssize_t left = open_objects(*file);
    if (left > 0)
        rc = at_err_set(err, AT_EINTERNAL, "%s: %zd HDF5 objects left open at close",
                        path, left);
    if (H5Fclose(*file) < 0 && rc == 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot close (flush) the file", path);
    *file = -1;
    return rc;
}

/* (Re)create attribute name on obj with type/space and write value. */
int h5u_attr_write(hid_t obj, const char *name, hid_t type, hid_t space,
                      const void *value) {
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t st = H5Awrite(a, type, value);
    h5u_close(&a);
    return st < 0 ? -1 : 0;
}

int h5u_attr_str(hid_t obj, const char *name, const char *value) {
    hid_t type = h5u_str_type(), space = H5Screate(H5S_SCALAR);
    int rc = h5u_attr_write(obj, name, type, space, &value);
    h5u_close(&space);
    h5u_close(&type);
    return rc;
}

int h5u_attr_scalar(hid_t obj, const char *name, hid_t type,
                             const void *value) {
    hid_t space = H5Screate(H5S_SCALAR);
    int rc = h5u_attr_write(obj, name, type, space, value);
    h5u_close(&space);
    return rc;
}

int h5u_attr_vec(hid_t obj, const char *name, hid_t type, int n,
                          const void *values) {
    hsize_t d = (hsize_t)n;
    hid_t space = n > 0 ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
    int rc = h5u_attr_write(obj, name, type, space, values);
    h5u_close(&space);
    return rc;
}

/* Strings of a string attribute (scalar or 1-D, fixed or variable length),
 * malloc'd. Returns the count, 0 if the attribute is absent, -1 if it is not
 * a string or cannot be read. Keeps at most cap strings. */
int h5u_attr_read_strs(hid_t obj, const char *name, char **out, int cap) {
    if (H5Aexists(obj, name) <= 0) return 0;
    int n = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ftype = -1, space = -1, mtype = -1;
    if (a < 0) goto done;
    ftype = H5Aget_type(a);
    space = H5Aget_space(a);
    if (H5Tget_class(ftype) != H5T_STRING) goto done;
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0 || np > (1 << 20)) goto done; /* more than 2^20 strings: damaged */
    if (np == 0) {
        n = 0;
        goto done;
    }
    if (H5Tis_variable_str(ftype) > 0) {
        mtype = h5u_str_type();
        char **tmp = at_calloc((size_t)np, sizeof *tmp, "attr strings");
        if (H5Aread(a, mtype, tmp) >= 0) {
            n = 0;
            for (hssize_t i = 0; i < np; i++) {
                if (n < cap) out[n++] = at_strdup(tmp[i] ? tmp[i] : "", "attr string");
            }
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, tmp);
        }
        free(tmp);
    } else {
        size_t sz = H5Tget_size(ftype) + 1;
        if (sz > ((size_t)1 << 20)) goto done; /* damaged: a 1 MiB string attribute */
        mtype = H5Tcopy(H5T_C_S1);
        H5Tset_size(mtype, sz);
        H5Tset_strpad(mtype, H5T_STR_NULLTERM);
        char *tmp = at_calloc((size_t)np, sz, "attr strings");
        if (H5Aread(a, mtype, tmp) >= 0) {
            n = 0;
            for (hssize_t i = 0; i < np; i++) {
                if (n < cap) out[n++] = at_strdup(tmp + (size_t)i * sz, "attr string");
            }
        }
        free(tmp);
    }
done:
    h5u_close(&mtype);
    h5u_close(&space);
    h5u_close(&ftype);
    h5u_close(&a);
    return n;
}

/* One string attribute into a malloc'd string; 0 absent, 1 ok, -1 bad. */
int h5u_attr_read_str(hid_t obj, const char *name, char **out) {
    char *v[1] = {NULL};
    *out = NULL;
    int n = h5u_attr_read_strs(obj, name, v, 1);
    if (n <= 0) return n;
    *out = v[0];
    return 1;
}

/* A numeric attribute converted to int64 (vector attrs into vals[0..cap)).
 * Returns the number of values, 0 if absent, -1 if not numeric. */
int h5u_attr_read_i64s(hid_t obj, const char *name, int64_t *vals, int cap) {
    if (H5Aexists(obj, name) <= 0) return 0;
    int n = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ftype = -1, space = -1;
    if (a < 0) goto done;
    ftype = H5Aget_type(a);
    space = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(ftype);
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if ((c != H5T_INTEGER && c != H5T_FLOAT) || !h5u_number_type_ok(ftype, c) || np < 1 ||
        np > cap)
        goto done;
    if (H5Aread(a, H5T_NATIVE_INT64, vals) >= 0) n = (int)np;
done:
    h5u_close(&space);
    h5u_close(&ftype);
    h5u_close(&a);
    return n;
}

