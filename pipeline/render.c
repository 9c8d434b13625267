/* render.c — `attrib render`: heatmap overlays and influence pictures as
 * PNG (libpng). See render.h; docs/pictures.md for the pictures. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "h5io.h"
#include "pipeline.h"
#include "render.h"

/* Layout (pixels; docs/pictures.md and tests/check_render.py use the same):
 * PAD around the picture and between cells, GAP between the input and its
 * overlay, BAR_H the colour bar's height, FRAME the influence frames. */
enum { PAD = 8, GAP = 2, BAR_H = 12, FRAME = 2 };
#define RENDER_MAX_PIXELS ((int64_t)64 << 20)
#define RENDER_ROBUST_Q 0.99

/* ------------------------------------------------------------- drawing */

typedef struct {
    int w, h;
    uint8_t *px; /* (h, w, 3) RGB */
} canvas;

static void canvas_init(canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->px = at_malloc((size_t)w * (size_t)h * 3, "render canvas");
    memset(c->px, 255, (size_t)w * (size_t)h * 3);
}

static void put(canvas *c, int x, int y, const uint8_t rgb[3]) {
    uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
}

static void fill(canvas *c, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) put(c, x, y, rgb);
}

/* The diverging colormap: t in [-1, 1] -> white at 0, linear to COL_NEG at
 * -1 and COL_POS at +1 (the end colours of ColorBrewer's RdBu). */
static const uint8_t COL_NEG[3] = {33, 102, 172}, COL_POS[3] = {178, 24, 43},
                     COL_TEST[3] = {64, 64, 64};

static void cmap(double t, double out[3]) {
    const uint8_t *end = t < 0 ? COL_NEG : COL_POS;
    double a = fabs(t) > 1 ? 1 : fabs(t);
    for (int k = 0; k < 3; k++) out[k] = 255.0 + a * ((double)end[k] - 255.0);
}

static uint8_t to_u8(double v) {
    if (!(v > 0)) return 0;
    if (v >= 255) return 255;
    return (uint8_t)lrint(v);
}

void render_cmap_rgb(double t, uint8_t rgb[3]) {
    double col[3];
    cmap(t, col);
    for (int k = 0; k < 3; k++) rgb[k] = to_u8(col[k]);
}

/* Input pixel value in [0, 1] -> gray level round(255 x), clipped. */
static double gray_of(float x) {
    if (!(x > 0)) return 0;
    if (x >= 1) return 255;
    return (double)lrint(255.0 * (double)x);
}

/* An image (h, w) at zoom z, nearest neighbour, at (x0, y0). */
static void draw_input(canvas *c, int x0, int y0, const float *img, int h, int w, int z) {
    for (int y = 0; y < h * z; y++)
        for (int x = 0; x < w * z; x++) {
            uint8_t g = (uint8_t)gray_of(img[(y / z) * w + x / z]);
            uint8_t rgb[3] = {g, g, g};
            put(c, x0 + x, y0 + y, rgb);
        }
}

/* The overlay: each pixel is (1 - a) gray + a cmap(t), t = score / m
 * clipped to [-1, 1], a = alpha |t|. Non-finite scores count as 0. */
static void draw_overlay(canvas *c, int x0, int y0, const float *img, const float *s, int h,
                         int w, int z, double m, double alpha) {
    for (int y = 0; y < h * z; y++)
        for (int x = 0; x < w * z; x++) {
            int i = (y / z) * w + x / z;
            double v = isfinite(s[i]) ? (double)s[i] / m : 0.0;
            if (v > 1) v = 1;
            if (v < -1) v = -1;
            double col[3], g = gray_of(img[i]), a = alpha * fabs(v);
            cmap(v, col);
            uint8_t rgb[3];
            for (int k = 0; k < 3; k++) rgb[k] = to_u8((1 - a) * g + a * col[k]);
            put(c, x0 + x, y0 + y, rgb);
        }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The robust max of n scores: the 0.99 quantile of |s| (the element at
 * floor(0.99 (n - 1)) of the sorted magnitudes); if that is 0, max |s|; if
 * that is 0 too, 1. Non-finite scores count as 0. */
static double robust_max(const float *s, int64_t n) {
    float *a = at_malloc((size_t)n * sizeof *a, "render robust max");
    for (int64_t i = 0; i < n; i++) a[i] = isfinite(s[i]) ? fabsf(s[i]) : 0.0f;
    qsort(a, (size_t)n, sizeof *a, cmp_float);
    double m = a[(int64_t)floor(RENDER_ROBUST_Q * (double)(n - 1))];
    if (!(m > 0)) m = a[n - 1];
    free(a);
    return m > 0 ? m : 1.0;
}

/* Write the canvas to path via path.tmp (its directory created first) and
 * rename. */
static int png_write(const canvas *c, const char *path, at_err *err) {
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (mkdir_p(dir, err)) return at_err_prefix(err, "cannot write the picture %s: ", path);
    }
    size_t n = strlen(path) + 5;
    char *tmp = at_malloc(n, "render tmp");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int e = errno;
        at_err_set(err, e == EACCES || e == ENOENT || e == ENOTDIR || e == EROFS || e == EISDIR
                            ? AT_EUSER : AT_EIO,
                   "cannot write the picture %s (%s)", path, strerror(e));
        free(tmp);
        return err->code;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = at_malloc((size_t)c->h * sizeof *rows, "render rows");
    int rc = 0;
    if (!png || !info) {
        rc = at_err_set(err, AT_EIO, "%s: libpng could not start", path);
    } else if (setjmp(png_jmpbuf(png))) {
        rc = at_err_set(err, AT_EIO, "cannot write the picture %s (libpng failed)", path);
    } else {
        png_init_io(png, fp);
        png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        for (int y = 0; y < c->h; y++) rows[y] = c->px + (size_t)y * (size_t)c->w * 3;
        png_write_info(png, info);
        png_write_image(png, rows);
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(rows);
    if (fclose(fp) != 0 && !rc)
        rc = at_err_set(err, AT_EIO, "cannot write the picture %s (%s)", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = at_err_set(err, errno == EISDIR ? AT_EUSER : AT_EIO,
                        "cannot write the picture %s (%s)", path, strerror(errno));
    if (rc) remove(tmp);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------- the data */

/* The dataset file the results name (or o->data), and its images. */
typedef struct {
    char *path;
    h5_reader *test, *train;
    h5_dataset_info ti, ri;
} data_src;

/* Open the test split of the results' data (o->data, else its data_path
 * attribute) and, with need_train, its train split. h = w = 0: the image
 * shape is taken from the data (flat rows are refused); else the data's
 * images must be (h, w). Returns 0 or AT_EUSER naming the file and split. */
static int data_open(data_src *d, const sm_summary *s, const char *where, const render_opts *o,
                     int need_train, int h, int w, at_err *err) {
    memset(d, 0, sizeof *d);
    const char *path = o->data ? o->data : s->data_path;
    if (!path)
        return at_err_set(err, AT_EUSER, "%s: root attribute data_path is missing (give --data D.h5)",
                          where);
    if (!s->data_split)
        return at_err_set(err, AT_EUSER, "%s: root attribute data_split is missing", where);
    d->path = at_strdup(path, "render data");
    if (h5_reader_open(&d->test, d->path, s->data_split, &d->ti, err)) {
        if (o->data) at_err_prefix(err, "render: --data: ");
        else at_err_prefix(err, "%s names its data (moved? give --data D.h5): ", where);
        return err->code;
    }
    if (h == 0 && w == 0 && d->ti.n_feat_dims != 2)
        return at_err_set(err, AT_EUSER,
                          "%s: method '%s': the data %s split '%s' has flat rows of %lld features, "
                          "not images (N, H, W): render draws images only", where, o->method,
                          d->path, s->data_split, (long long)d->ti.n_features);
    if (h == 0 && w == 0) {
        h = (int)d->ti.feat_shape[0];
        w = (int)d->ti.feat_shape[1];
    }
    if (d->ti.n_feat_dims != 2 || d->ti.feat_shape[0] != h || d->ti.feat_shape[1] != w)
        return at_err_set(err, AT_EUSER,
                          "%s split '%s': images of %lld features per row, not the (%d, %d) images "
                          "the results have", d->path, s->data_split, (long long)d->ti.n_features,
                          h, w);
    if (need_train) {
        if (!s->train_split)
            return at_err_set(err, AT_EUSER, "%s: root attribute train_split is missing", where);
        if (h5_reader_open(&d->train, d->path, s->train_split, &d->ri, err)) return err->code;
        if (d->ri.n_features != d->ti.n_features)
            return at_err_set(err, AT_EUSER,
                              "%s: split '%s' has %lld features per row, split '%s' %lld", d->path,
                              s->train_split, (long long)d->ri.n_features, s->data_split,
                              (long long)d->ti.n_features);
    }
    return 0;
}

static void data_close(data_src *d) {
    if (d->test) h5_reader_close(d->test);
    if (d->train) h5_reader_close(d->train);
    free(d->path);
    memset(d, 0, sizeof *d);
}

/* One row of a split into img (n_features). */
static int data_row(h5_reader *r, const h5_dataset_info *info, const char *path, int64_t row,
                    float *img, at_err *err) {
    if (row < 0 || row >= info->n_rows)
        return at_err_set(err, AT_EUSER, "%s: row %lld is outside its split (%lld rows)", path,
                          (long long)row, (long long)info->n_rows);
    return h5_reader_read(r, row, row + 1, img, NULL, err);
}

/* ------------------------------------------------------------- pictures */

void render_opts_default(render_opts *o) {
    memset(o, 0, sizeof *o);
    o->s1 = -1;
    o->cols = 4;
    o->zoom = 4;
    o->alpha = 0.9;
    o->scale = RENDER_SCALE_SAMPLE;
}

static int check_size(int64_t w, int64_t h, const char *what, at_err *err) {
    if (w * h > RENDER_MAX_PIXELS)
        return at_err_set(err, AT_EUSER,
                          "render: the picture would be %lld x %lld pixels (at most %lld "
                          "pixels): draw fewer %s or a smaller --zoom",
                          (long long)w, (long long)h, (long long)RENDER_MAX_PIXELS, what);
    return 0;
}

int render_samples(const render_opts *o, int64_t n, const char *cmd, const char *where,
                   int64_t *s0, int64_t *s1, at_err *err) {
    *s0 = o->s0;
    *s1 = o->s1 == INT64_MAX ? n : o->s1 < 0 ? (o->s0 + 8 < n ? o->s0 + 8 : n) : o->s1;
    if (*s0 < 0 || *s0 >= n || *s1 > n || *s1 <= *s0)
        return at_err_set(err, AT_EUSER,
                          "%s: --samples %lld:%lld is out of range: %s has %lld samples "
                          "(positions 0 to %lld; expected A:B with 0 <= A < B <= %lld)", cmd,
                          (long long)o->s0, (long long)*s1, where, (long long)n,
                          (long long)(n - 1), (long long)n);
    return 0;
}

/* Method m (feature attributions) of s as a grid of [input | overlay]
 * pairs; where names the file (and point) in messages. */
static int render_attr(const sm_summary *s, int m, const char *where, const render_opts *o,
                       render_info *ri, at_err *err) {
    const sm_method *me = &s->methods[m];
    if (me->ndims != 3) {
        char shape[128] = "";
        size_t len = 0;
        for (int i = 0; i < me->ndims && len < sizeof shape; i++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", i ? ", " : "",
                                    (long long)me->shape[i]);
        return at_err_set(err, AT_EUSER,
                          "%s: method '%s' has scores of shape (%s) (/%s/scores): render draws "
                          "images only, scores (N, H, W); these inputs are not images",
                          where, me->name, shape, me->group);
    }
    int64_t n = me->shape[0];
    int h = (int)me->shape[1], w = (int)me->shape[2];
    int64_t s0, s1;
    if (render_samples(o, n, "render", where, &s0, &s1, err)) return err->code;
    int cnt = (int)(s1 - s0), cols = o->cols < cnt ? o->cols : cnt, z = o->zoom;
    int nrows = (cnt + cols - 1) / cols;
    int64_t cell_w = 2 * (int64_t)w * z + GAP, cell_h = (int64_t)h * z;
    int64_t W = PAD + cols * (cell_w + PAD), H = PAD + nrows * (cell_h + PAD) + BAR_H + PAD;
    if (check_size(W, H, "samples", err)) return err->code;

    int64_t D = (int64_t)h * w;
    float *scores = at_malloc((size_t)(cnt * D) * sizeof *scores, "render scores");
    float *imgs = at_malloc((size_t)(cnt * D) * sizeof *imgs, "render images");
    int64_t *rows = at_malloc((size_t)cnt * sizeof *rows, "render rows");
    data_src ds;
    canvas cv = {0};
    int rc = 0;
    memset(&ds, 0, sizeof ds);
    if ((rc = sm_scores_rows(s, m, s0, s1, scores, err))) goto out;
    if ((rc = sm_read_i64(s, "sample", s0, s1, rows, err)) == 1)
        rc = at_err_set(err, AT_EUSER, "%s: dataset /sample is missing", where);
    if (rc) goto out;
    if ((rc = data_open(&ds, s, where, o, 0, h, w, err))) goto out;
    for (int k = 0; k < cnt; k++)
        if ((rc = data_row(ds.test, &ds.ti, ds.path, rows[k], imgs + k * D, err))) goto out;

    double shared = o->scale == RENDER_SCALE_SHARED ? robust_max(scores, cnt * D) : 0;
    canvas_init(&cv, (int)W, (int)H);
    for (int k = 0; k < cnt; k++) {
        int col = k % cols, row = k / cols;
        int x0 = PAD + col * (int)(cell_w + PAD), y0 = PAD + row * (int)(cell_h + PAD);
        double sc = o->scale == RENDER_SCALE_SHARED ? shared : robust_max(scores + k * D, D);
        draw_input(&cv, x0, y0, imgs + k * D, h, w, z);
        draw_overlay(&cv, x0 + w * z + GAP, y0, imgs + k * D, scores + k * D, h, w, z, sc,
                     o->alpha);
    }
    /* the colour bar: t from -1 (left) to +1 (right) over the inner width */
    int bx = PAD, bw = (int)W - 2 * PAD, by = (int)H - PAD - BAR_H;
    for (int x = 0; x < bw; x++) {
        uint8_t rgb[3];
        render_cmap_rgb(bw > 1 ? -1.0 + 2.0 * x / (bw - 1) : 0, rgb);
        fill(&cv, bx + x, by, 1, BAR_H, rgb);
    }
    rc = png_write(&cv, o->out, err);
    if (!rc && ri) {
        ri->influence = 0;
        ri->s0 = s0;
        ri->s1 = s1;
        ri->width = (int)W;
        ri->height = (int)H;
        ri->scale_max = shared;
    }
out:
    data_close(&ds);
    free(cv.px);
    free(scores);
    free(imgs);
    free(rows);
    return rc;
}

/* A framed tile: frame colour around the zoomed image. */
static void draw_tile(canvas *c, int x0, int y0, const float *img, int h, int w, int z,
                      const uint8_t frame[3]) {
    fill(c, x0, y0, w * z + 2 * FRAME, h * z + 2 * FRAME, frame);
    draw_input(c, x0 + FRAME, y0 + FRAME, img, h, w, z);
}

/* Method m (influence) of s: one row per test sample of [test |
 * proponents | opponents]. */
static int render_infl(const sm_summary *s, int m, const char *where, const render_opts *o,
                       render_info *ri, at_err *err) {
    const sm_method *me = &s->methods[m];
    char top_rel[1200], opp_rel[1200];
    snprintf(top_rel, sizeof top_rel, "%s/topk_index", me->group);
    snprintf(opp_rel, sizeof opp_rel, "%s/opponents_index", me->group);
    int64_t dt[SM_MAX_DIMS], dp[SM_MAX_DIMS], dtest[SM_MAX_DIMS];
    int64_t K = me->top_k;
    if (K < 1 || sm_dataset_shape(s, top_rel, dt) != 2 || sm_dataset_shape(s, opp_rel, dp) != 2 ||
        dp[0] != dt[0] || dp[1] != K)
        return at_err_set(err, AT_EUSER,
                          "%s: influence method '%s' has no top-k lists (/%s and /%s, (N_test, K) "
                          "with K >= 1; train_data.top_k was 0?)", where, me->name, top_rel,
                          opp_rel);
    if (sm_dataset_shape(s, "test", dtest) != 1 || dtest[0] != dt[0])
        return at_err_set(err, AT_EUSER, "%s: /test is missing or not %lld long", where,
                          (long long)dt[0]);
    int64_t n = dt[0];
    int k_show = o->top > 0 && o->top < K ? o->top : (int)K;
    int64_t s0, s1;
    if (render_samples(o, n, "render", where, &s0, &s1, err)) return err->code;
    int cnt = (int)(s1 - s0), z = o->zoom;

    /* the image shape comes from the data */
    data_src ds;
    int rc = data_open(&ds, s, where, o, 1, 0, 0, err);
    if (rc) {
        data_close(&ds);
        return rc;
    }
    int h = (int)ds.ti.feat_shape[0], w = (int)ds.ti.feat_shape[1];
    int64_t tw = (int64_t)w * z + 2 * FRAME, th = (int64_t)h * z + 2 * FRAME;
    int64_t W = PAD + tw + 2 * PAD + 2 * (k_show * tw + (k_show - 1) * GAP) + 2 * PAD + PAD;
    int64_t H = PAD + cnt * (th + PAD);
    if (check_size(W, H, "samples", err)) {
        data_close(&ds);
        return err->code;
    }

    int64_t D = (int64_t)h * w;
    int64_t *test_rows = at_malloc((size_t)cnt * sizeof *test_rows, "render rows");
    int64_t *top = at_malloc((size_t)(cnt * K) * sizeof *top, "render topk");
    int64_t *opp = at_malloc((size_t)(cnt * K) * sizeof *opp, "render opponents");
    float *img = at_malloc((size_t)D * sizeof *img, "render image");
    canvas cv = {0};
    const char *rel[3] = {"test", top_rel, opp_rel};
    int64_t *dst[3] = {test_rows, top, opp};
    for (int q = 0; q < 3; q++) {
        if ((rc = sm_read_i64(s, rel[q], s0, s1, dst[q], err)) == 1)
            rc = at_err_set(err, AT_EUSER, "%s: dataset /%s is missing", where, rel[q]);
        if (rc) goto out;
    }
    canvas_init(&cv, (int)W, (int)H);
    for (int k = 0; k < cnt; k++) {
        int y0 = PAD + k * (int)(th + PAD), x = PAD;
        if ((rc = data_row(ds.test, &ds.ti, ds.path, test_rows[k], img, err))) goto out;
        draw_tile(&cv, x, y0, img, h, w, z, COL_TEST);
        x += (int)tw + 2 * PAD;
        for (int side = 0; side < 2; side++) {
            const int64_t *idx = side == 0 ? top : opp;
            for (int j = 0; j < k_show; j++) {
                if ((rc = data_row(ds.train, &ds.ri, ds.path, idx[k * K + j], img, err))) goto out;
                draw_tile(&cv, x, y0, img, h, w, z, side == 0 ? COL_POS : COL_NEG);
                x += (int)tw + GAP;
            }
            x += 2 * PAD - GAP;
        }
    }
    rc = png_write(&cv, o->out, err);
    if (!rc && ri) {
        ri->influence = 1;
        ri->s0 = s0;
        ri->s1 = s1;
        ri->width = (int)W;
        ri->height = (int)H;
        ri->scale_max = 0;
    }
out:
    data_close(&ds);
    free(cv.px);
    free(test_rows);
    free(top);
    free(opp);
    free(img);
    return rc;
}

int render_draw(const sm_summary *s, const render_opts *o, render_info *info, at_err *err) {
    char where[4400];
    if (s->point) snprintf(where, sizeof where, "%s (point %s)", s->path, s->point);
    else snprintf(where, sizeof where, "%s", s->path);
    if (s->content == SM_SWEEP) {
        char *list = sm_join((const char *const *)s->point_names, s->n_points);
        at_err_set(err, AT_EUSER, "%s is a sweep: choose one of its %d points with --point NAME: %s",
                   s->path, s->n_points, list);
        free(list);
        return err->code;
    }
    const char *dir = s->content == SM_INFLUENCE ? "influence" : "attributions";
    if (s->n_methods == 0)
        return at_err_set(err, AT_EUSER, "%s: no methods in /%s: nothing to render", where, dir);
    int m = o->method ? sm_method_index(s, o->method) : -1;
    if (m < 0) {
        char *list = sm_method_list(s);
        if (!o->method)
            at_err_set(err, AT_EUSER, "render: --method is required; %s has: %s", where, list);
        else
            at_err_set(err, AT_EUSER, "render: %s has no method '%s' in /%s; its methods: %s",
                       where, o->method, dir, list);
        free(list);
        return err->code;
    }
    if (s->content == SM_INFLUENCE) return render_infl(s, m, where, o, info, err);
    return render_attr(s, m, where, o, info, err);
}

int render_png(const render_opts *o, render_info *info, at_err *err) {
    sm_summary s;
    int rc = sm_read_light(&s, o->results, o->point, err);
    if (!rc) rc = render_draw(&s, o, info, err);
    sm_free(&s);
    return rc;
}

/* ------------------------------------------------------------- the CLI */

static const char *RENDER_USAGE =
    "usage: attrib render RESULTS.h5 --method M [--samples A:B] [-o OUT.png] [--point NAME]\n"
    "                     [--cols C] [--zoom Z] [--scale sample|shared] [--alpha A]\n"
    "                     [--top K] [--data D.h5]\n"
    "Draws one method of a results file as a PNG (docs/pictures.md):\n"
    "  feature attributions of images: a grid of [input | overlay] pairs, the signed\n"
    "    scores in blue (negative), white (0) and red (positive) over the input, with\n"
    "    a colour bar from -1 to +1 of the scale below;\n"
    "  influence: one row per test sample: the test image, its top-k proponents\n"
    "    (framed red), then its opponents (framed blue).\n"
    "options:\n"
    "  --method M       the method (its name in the job); required\n"
    "  --samples A:B    samples by position in the file, A <= i < B (default: the first 8)\n"
    "  -o OUT.png       the picture (default: M.png)\n"
    "  --point NAME     one point of a sweep file\n"
    "  --cols C         [input | overlay] pairs per grid row (default 4)\n"
    "  --zoom Z         pixels per input pixel, 1..32 (default 4)\n"
    "  --scale S        sample: each sample's colours span its own robust max |score|\n"
    "                   (the 0.99 quantile of |score|; default); shared: one scale for\n"
    "                   all drawn samples\n"
    "  --alpha A        overlay opacity at full colour, 0..1 (default 0.9)\n"
    "  --top K          influence: proponents and opponents drawn (default: all stored)\n"
    "  --data D.h5      the dataset file, if it moved since the run (default: the\n"
    "                   results' data_path attribute)\n";

static int parse_int_opt(const char *opt, const char *v, long lo, long hi, long *out,
                         at_err *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return at_err_set(err, AT_EUSER, "render: %s %s: expected an integer in %ld..%ld", opt, v,
                          lo, hi);
    *out = x;
    return 0;
}

/* "A:B" or "A" (= A:A+1); B may be omitted ("A:" = to the end, s1 = INT64_MAX). */
static int parse_samples(const char *v, int64_t *s0, int64_t *s1, at_err *err) {
    char *end;
    errno = 0;
    long long a = strtoll(v, &end, 10), b;
    if (errno || end == v || a < 0) goto bad;
    if (*end == '\0') {
        *s0 = a;
        *s1 = a + 1;
        return 0;
    }
    if (*end != ':') goto bad;
    const char *q = end + 1;
    if (*q == '\0') {
        *s0 = a;
        *s1 = INT64_MAX;
        return 0;
    }
    b = strtoll(q, &end, 10);
    if (errno || *end || b <= a) goto bad;
    *s0 = a;
    *s1 = b;
    return 0;
bad:
    return at_err_set(err, AT_EUSER,
                      "render: --samples %s: expected A:B (positions, 0 <= A < B), A: or A", v);
}

int render_parse_common(int argc, char **argv, int *i, render_opts *o, at_err *err) {
    const char *s = argv[*i];
    static const char *const with_value[] = {"--samples", "--cols", "--zoom", "--scale",
                                             "--alpha", "--top", "--data", "--point"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (strcmp(s, with_value[k]) == 0) known = 1;
    if (!known) return 0;
    if (*i + 1 >= argc) {
        at_err_set(err, AT_EUSER, "render: %s needs a value (see --help)", s);
        return -1;
    }
    const char *v = argv[++*i];
    long x = 0; /* set by parse_int_opt before any use (gcc -O3 cannot see it) */
    if (strcmp(s, "--samples") == 0) {
        if (parse_samples(v, &o->s0, &o->s1, err)) return -1;
    } else if (strcmp(s, "--cols") == 0) {
        if (parse_int_opt(s, v, 1, 256, &x, err)) return -1;
        o->cols = (int)x;
    } else if (strcmp(s, "--zoom") == 0) {
        if (parse_int_opt(s, v, 1, 32, &x, err)) return -1;
        o->zoom = (int)x;
    } else if (strcmp(s, "--top") == 0) {
        if (parse_int_opt(s, v, 1, 1000, &x, err)) return -1;
        o->top = (int)x;
    } else if (strcmp(s, "--scale") == 0) {
        if (strcmp(v, "sample") == 0) o->scale = RENDER_SCALE_SAMPLE;
        else if (strcmp(v, "shared") == 0) o->scale = RENDER_SCALE_SHARED;
        else {
            at_err_set(err, AT_EUSER, "render: --scale %s: expected sample or shared", v);
            return -1;
        }
    } else if (strcmp(s, "--alpha") == 0) {
        char *end;
        double a = strtod(v, &end);
        if (end == v || *end || !(a >= 0 && a <= 1)) {
            at_err_set(err, AT_EUSER, "render: --alpha %s: expected a number in [0, 1]", v);
            return -1;
        }
        o->alpha = a;
    } else if (strcmp(s, "--data") == 0) {
        o->data = v;
    } else {
        o->point = v;
    }
    return 1;
}

int cmd_render(int argc, char **argv) {
    render_opts o;
    render_opts_default(&o);
    at_err err = {0};
    char def_out[1100];
    for (int i = 0; i < argc && !err.code; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(RENDER_USAGE, stdout);
            return 0;
        }
        int r = render_parse_common(argc, argv, &i, &o, &err);
        if (r < 0) break;
        if (r > 0) continue;
        if (strcmp(s, "--method") == 0 || strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) {
            if (i + 1 >= argc) {
                at_err_set(&err, AT_EUSER, "render: %s needs a value (see --help)", s);
                break;
            }
            if (strcmp(s, "--method") == 0) o.method = argv[++i];
            else o.out = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            at_err_set(&err, AT_EUSER, "render: unknown option '%s' (see attrib render --help)", s);
        } else if (!o.results) {
            o.results = s;
        } else {
            at_err_set(&err, AT_EUSER, "render: unexpected argument '%s' (one results file only)", s);
        }
    }
    if (!err.code && !o.results)
        at_err_set(&err, AT_EUSER, "render: missing results file (usage: attrib render RESULTS.h5 --method M)");
    if (!err.code && !o.out && o.method) {
        snprintf(def_out, sizeof def_out, "%s.png", o.method);
        o.out = def_out;
    }
    render_info info;
    if (!err.code) {
        render_png(&o, &info, &err);
    }
    if (err.code) {
        cli_error(&err);
        return err.code;
    }
    printf("wrote %s (%d x %d pixels, %s %lld:%lld of %s)\n", o.out, info.width, info.height,
           info.influence ? "test samples" : "samples", (long long)info.s0, (long long)info.s1,
           o.method);
    return 0;
}
