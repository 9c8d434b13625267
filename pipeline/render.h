/* render.h — pictures of results files: `attrib render` (PNG, libpng) and
 * the pictures of `attrib report`. Internal to the attrib binary.
 *
 * Model of use
 * ------------
 * A results file is opened as a view (rv_open): its root, or with a point
 * name the group /points/<name> of a sweep file, which reads exactly like
 * a plain results file. The rv_* readers take paths relative to that root
 * ("attributions/ig/scores") and return 0, or AT_EUSER naming the file and
 * the dataset or attribute when it is missing or not as expected.
 *
 * render_png draws one method of a view into one PNG, written to OUT.tmp
 * and renamed: feature attributions of image inputs (scores (N, H, W)) as
 * a grid of [input | overlay] pairs, influence results as one row per test
 * sample of [test | proponents | opponents]. docs/pictures.md describes the
 * pictures (layout, colours, scaling); tests/check_render.py recomputes
 * them. Everything runs in one process, without MPI.
 */
#ifndef ATTRIB_RENDER_H
#define ATTRIB_RENDER_H

#include <stdint.h>

#include "core.h"

/* ---- reading a results file (or one point of a sweep file) ---- */

typedef struct {
    int64_t file;          /* hid_t of the open file, -1 closed */
    int64_t root;          /* hid_t of "/" or /points/<point> */
    char path[4096];       /* the file as given */
    char where[4352];      /* "FILE" or "FILE (point NAME)", for messages */
} rv_file;

/* Open path read-only; point NULL = the root. A sweep file (root attribute
 * content = "sweep") without a point, a point that is not in the file and a
 * file that is not a results file are AT_EUSER (the message lists the
 * points). Returns 0 or the error code; rv_close in every case. */
int rv_open(rv_file *f, const char *path, const char *point, at_err *err);
void rv_close(rv_file *f);
/* 1 when the object (group or dataset) at rel exists below the root. */
int rv_exists(const rv_file *f, const char *rel);
/* Dataset rank and dims (up to 4): the rank, or -1 when absent. */
int rv_dims(const rv_file *f, const char *rel, int64_t *dims);
/* Names of the members of group rel in creation order (name order when the
 * file does not track it); *names malloc'd, each name malloc'd. Returns the
 * count (0 when the group is absent). */
int rv_members(const rv_file *f, const char *rel, char ***names);
void rv_free_names(char **names, int n);
/* String attribute name of object rel ("" = the root): 1 and *out
 * malloc'd, 0 absent or not a string (*out NULL). */
int rv_attr_str(const rv_file *f, const char *rel, const char *name, char **out);
/* Numeric scalar attribute (first element of a vector): 1, or 0 absent. */
int rv_attr_f64(const rv_file *f, const char *rel, const char *name, double *out);
/* Rows [r0, r1) of dataset rel (any rank >= 1, rows on axis 0), converted
 * to float32 / int64: out holds (r1 - r0) * row elements. */
int rv_read_f32(const rv_file *f, const char *rel, int64_t r0, int64_t r1, float *out,
                at_err *err);
int rv_read_i64(const rv_file *f, const char *rel, int64_t r0, int64_t r1, int64_t *out,
                at_err *err);

/* ---- pictures ---- */

typedef enum { RENDER_SCALE_SAMPLE = 0, RENDER_SCALE_SHARED } render_scale;

typedef struct {
    const char *results;   /* results file */
    const char *point;     /* sweep point, or NULL */
    const char *method;    /* attributions/<method> or influence/<method> */
    const char *out;       /* PNG path */
    const char *data;      /* dataset file instead of the data_path attribute, or NULL */
    int64_t s0, s1;        /* samples [s0, s1) by position; s1 = -1: s0 + 8 (clipped),
                              INT64_MAX: to the end */
    int cols;              /* grid columns of [input | overlay] pairs, >= 1 */
    int zoom;              /* pixels per input pixel, 1..32 */
    int top;               /* influence: proponents and opponents shown; 0 = all stored */
    render_scale scale;
    double alpha;          /* overlay opacity at the largest |score|, 0..1 */
} render_opts;

void render_opts_default(render_opts *o);

/* What a picture shows, for its caption. */
typedef struct {
    int influence;         /* 1: an influence picture */
    int64_t s0, s1;        /* the samples drawn */
    int width, height;     /* pixels */
    double scale_max;      /* shared scale: the |score| drawn full colour (else 0) */
} render_info;

/* Options shared by `attrib render` and `attrib report` (--samples,
 * --cols, --zoom, --scale, --alpha, --top, --data, --point): 1 when argv[*i]
 * was one of them (its value consumed, *i advanced), 0 when not, -1 on a
 * bad value (err set). */
int render_parse_common(int argc, char **argv, int *i, render_opts *o, at_err *err);

/* Draw o->method of the results into o->out. Returns 0 or AT_EUSER (bad
 * method: the message lists the valid ones; samples out of range; scores
 * that are not images; an unwritable output), AT_EIO. */
int render_png(const render_opts *o, render_info *info, at_err *err);

/* The methods of a view: "attributions" or "influence" members. Returns the
 * count; *names as rv_members. *kind_dir receives "attributions",
 * "influence" or NULL (neither). */
int render_methods(const rv_file *f, char ***names, const char **kind_dir);

#endif
