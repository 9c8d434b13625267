/* h5sweep.h — the results file of a sweep (docs/format.md, "Sweeps").
 *
 * Model of use
 * ------------
 * A sweep's points are ordinary results files (OUTPUT.sweep/NNNN.h5, or
 * the /points/<name> groups of an earlier sweep file). h5_sweep_write
 * copies each point's whole root group, with its attributes, datasets,
 * groups and dimension scales, to /points/<name> of a new file, adds the
 * /sweep index (point names and each swept key's value text per point) and
 * the sweep's root attributes, and renames the file into place (written as
 * PATH.tmp first: a crash never leaves a half-written PATH). Serial: rank 0
 * calls it.
 */
#ifndef ATTRIB_H5SWEEP_H
#define ATTRIB_H5SWEEP_H

#include "core.h"

typedef struct {
    const char *name;     /* the point's name: its group under /points */
    const char *src_file; /* the file holding the point */
    int in_sweep_file;    /* 1: src_file is a sweep file, the point is its
                             /points/<name>; 0: a point file, its root */
} h5_sweep_point;

typedef struct {
    const char *job_yaml; /* the sweep's job (a point's job plus sweep:) */
    const char *job_file;
    const char *plan;      /* one line per point with its plan hash */
    const char *plan_hash; /* SHA-256 of plan */
    int n_points, n_keys;
    const char *const *keys;      /* (n_keys) --set paths */
    const char *const *values;    /* (n_points, n_keys) value text */
    const h5_sweep_point *points; /* (n_points) */
} h5_sweep_desc;

/* Write the sweep file at path (PATH.tmp, then renamed; the sources are
 * opened read-only, so a source may be path itself, the sweep file being
 * replaced). Returns 0, or AT_EIO naming the file and the point that
 * failed. */
int h5_sweep_write(const char *path, const h5_sweep_desc *d, at_err *err);

#endif
