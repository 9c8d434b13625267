/* render.h — pictures of results files: `attrib render` (PNG, libpng) and
 * the pictures of `attrib report`. Internal to the attrib binary.
 *
 * Model of use
 * ------------
 * render_png reads the results file (or, with a point name, the group
 * /points/<name> of a sweep file, which reads exactly like a plain file)
 * with sm_read_light (summary.h) and draws one method of it into one PNG;
 * a caller that already holds an sm_summary (attrib report) calls
 * render_draw with it instead. The PNG is written to OUT.tmp and renamed:
 * feature attributions of image inputs (scores (N, H, W)) as a grid of
 * [input | overlay] pairs, influence results as one row per test sample of
 * [test | proponents | opponents]. docs/pictures.md describes the pictures
 * (layout, colours, scaling); tests/check_render.py recomputes them.
 * Everything runs in one process, without MPI.
 */
#ifndef ATTRIB_RENDER_H
#define ATTRIB_RENDER_H

#include <stdint.h>

#include "core.h"
#include "summary.h"

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

/* Draw o->method of the results into o->out. Returns 0 or AT_EUSER (not a
 * results file, a sweep without o->point; bad method: the message lists the
 * valid ones; samples out of range; scores that are not images; an
 * unwritable output), AT_EIO. */
int render_png(const render_opts *o, render_info *info, at_err *err);
/* render_png of a summary already read (sm_read or sm_read_light of a plain
 * file or a point; o->results and o->point are not used). */
int render_draw(const sm_summary *s, const render_opts *o, render_info *info, at_err *err);

/* The samples [*s0, *s1) that o draws of a file of n samples: --samples
 * A:B, A: (to the end), A, or by default the first 8 from s0, clipped to n.
 * Returns 0, or AT_EUSER ("CMD: --samples A:B is out of range: WHERE has n
 * samples ...") when the range is not inside [0, n). */
int render_samples(const render_opts *o, int64_t n, const char *cmd, const char *where,
                   int64_t *s0, int64_t *s1, at_err *err);

/* The colormap of the pictures: t in [-1, 1] -> white at 0, linear to blue
 * (33, 102, 172) at -1 and red (178, 24, 43) at +1; |t| > 1 clipped. */
void render_cmap_rgb(double t, uint8_t rgb[3]);

#endif
