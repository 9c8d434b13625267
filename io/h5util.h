/* h5util.h — small HDF5 helpers shared by the io/ files that write and read
 * whole files (h5io.c: datasets, models, logits; h5train.c: checkpoints,
 * datasets from memory). Internal to io/: nothing outside includes it.
 *
 * Conventions: h5u_attr_* writers return 0 or -1 (the caller names the
 * file in its error); readers return what they found (a count, 1 for a
 * string), 0 when the attribute is absent and -1 when it is not readable
 * as asked. Handles are closed with h5u_close, which marks them -1. */
#ifndef ATTRIB_H5UTIL_H
#define ATTRIB_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

#include "core.h"

/* Close any HDF5 handle we own and mark it closed (-1); -1 is a no-op. */
void h5u_close(hid_t *id);
/* Variable-length UTF-8 string type (h5py reads it back as str); caller closes. */
hid_t h5u_str_type(void);
/* 1 when type is of class cls with a size a native type can hold. */
int h5u_number_type_ok(hid_t type, H5T_class_t cls);

/* Create the parent directories of path (mkdir -p dirname(path)). */
int h5u_mkdir_parents(const char *path, at_err *err);
/* "<path>.tmp", malloc'd. */
char *h5u_tmp_path(const char *path);
/* Create <path>.tmp for a file written whole, parent directories first.
 * *tmp receives the malloc'd temporary path in every case (the caller frees
 * it, and unlinks it on failure); returns the file, or -1 with err set. */
hid_t h5u_create_tmp(const char *path, char **tmp, at_err *err);
/* Close a file we wrote; an object still open inside it is a bug of the
 * writer (the file would stay open): AT_EINTERNAL; a failed flush AT_EIO. */
int h5u_close_written(hid_t *file, const char *path, at_err *err);

/* (Re)create attribute name on obj with type and space and write value. */
int h5u_attr_write(hid_t obj, const char *name, hid_t type, hid_t space, const void *value);
int h5u_attr_str(hid_t obj, const char *name, const char *value);
int h5u_attr_scalar(hid_t obj, const char *name, hid_t type, const void *value);
/* A 1-D attribute of n values (n = 0: a null dataspace). */
int h5u_attr_vec(hid_t obj, const char *name, hid_t type, int n, const void *values);

/* Up to cap strings of a string attribute (scalar or 1-D, fixed or
 * variable length) into malloc'd out[]: the count, 0 absent, -1 unreadable. */
int h5u_attr_read_strs(hid_t obj, const char *name, char **out, int cap);
/* One string: 1 and *out malloc'd, 0 absent, -1 unreadable (*out NULL). */
int h5u_attr_read_str(hid_t obj, const char *name, char **out);
/* Up to cap numbers (integer or float attribute) as int64: the count, 0
 * absent, -1 unreadable or more than cap. */
int h5u_attr_read_i64s(hid_t obj, const char *name, int64_t *vals, int cap);

#endif
