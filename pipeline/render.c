/* render.c — `attrib render`: heatmap overlays and influence pictures as
 * PNG (libpng). See render.h; docs/pictures.md for the pictures. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "h5io.h"
#include "pipeline.h"
#include "render.h"

/* Layout (pixels; docs/pictures.md and tests/check_render.py use the same):
 * PAD around the picture and between cells, GAP between the input and its
 * overlay, BAR_H the colour bar's height, FRAME the influence frames. */
enum { PAD = 8, GAP = 2, BAR_H = 12, FRAME = 2 };
#define RENDER_MAX_PIXELS ((int64_t)64 << 20)
#define RENDER_ROBUST_Q 0.99

/* ------------------------------------------------------------- the view */

static hid_t rv_root(const rv_file *f) { return (hid_t)f->root; }

/* A 1-D string dataset (variable or fixed length) into malloc'd names:
 * the count, or -1 when absent or not strings. */
static int rv_strings(const rv_file *f, const char *rel, char ***names) {
    *names = NULL;
    int64_t dims[4];
    if (rv_dims(f, rel, dims) != 1 || dims[0] > (1 << 20)) return -1;
    hid_t d = H5Dopen2(rv_root(f), rel, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int n = (int)dims[0], rc = -1;
    if (H5Tget_class(t) == H5T_STRING) {
        char **out = at_calloc((size_t)n + 1, sizeof *out, "rv strings");
        if (H5Tis_variable_str(t) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            char **raw = at_calloc((size_t)n + 1, sizeof *raw, "rv strings");
            if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0) {
                for (int i = 0; i < n; i++) out[i] = at_strdup(raw[i] ? raw[i] : "", "rv string");
                hid_t sp = H5Dget_space(d);
                H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
                H5Sclose(sp);
                rc = n;
            }
            free(raw);
            H5Tclose(mt);
        } else {
            size_t w = H5Tget_size(t);
            char *buf = at_calloc((size_t)n * w + 1, 1, "rv strings");
            hid_t mt = H5Tcopy(t);
            if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
                for (int i = 0; i < n; i++) {
                    out[i] = at_calloc(w + 1, 1, "rv string");
                    memcpy(out[i], buf + (size_t)i * w, w);
                }
                rc = n;
            }
            H5Tclose(mt);
            free(buf);
        }
        if (rc < 0) rv_free_names(out, n);
        else *names = out;
    }
    H5Tclose(t);
    H5Dclose(d);
    return rc;
}

int rv_open(rv_file *f, const char *path, const char *point, at_err *err) {
    f->file = -1;
    f->root = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->where, sizeof f->where, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return at_err_set(err, AT_EUSER, "%s: cannot open (%s)", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return at_err_set(err, AT_EUSER, "%s: cannot open: a directory, not a results file", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return at_err_set(err, AT_EUSER, "%s: cannot open as an HDF5 file (not HDF5, truncated "
                          "or unreadable)", path);
    f->file = (int64_t)file;
    hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
    f->root = (int64_t)root;
    char *fmt = NULL, *content = NULL;
    rv_attr_str(f, "", "format", &fmt);
    rv_attr_str(f, "", "content", &content);
    int sweep = content && strcmp(content, "sweep") == 0;
    int rc = 0;
    if (!fmt || strcmp(fmt, "attrib-results") != 0) {
        rc = at_err_set(err, AT_EUSER,
                        "%s: not an attrib results file (root attribute format = %s%s%s, "
                        "expected \"attrib-results\")", path, fmt ? "\"" : "",
                        fmt ? fmt : "absent", fmt ? "\"" : "");
    } else if (sweep || point) {
        /* the points in sweep order (/sweep/name), else in name order */
        char **names = NULL;
        int n = sweep ? rv_strings(f, "sweep/name", &names) : 0;
        if (sweep && n <= 0) n = rv_members(f, "points", &names);
        char list[1024] = "";
        size_t len = 0;
        for (int i = 0; i < n && len + 8 < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
        if (len >= sizeof list - 8) snprintf(list + sizeof list - 8, 8, ", ...");
        if (!sweep)
            rc = at_err_set(err, AT_EUSER, "%s: --point %s: the file is not a sweep (no /points)",
                            path, point);
        else if (!point)
            rc = at_err_set(err, AT_EUSER,
                            "%s is a sweep: choose one of its %d points with --point NAME: %s",
                            path, n, list);
        else {
            char rel[1200];
            snprintf(rel, sizeof rel, "points/%s", point);
            if (strchr(point, '/') || !rv_exists(f, rel))
                rc = at_err_set(err, AT_EUSER, "%s: --point %s: no such point; its points: %s",
                                path, point, list);
            else {
                H5Gclose(root);
                f->root = (int64_t)H5Gopen2(file, rel, H5P_DEFAULT);
                snprintf(f->where, sizeof f->where, "%s (point %s)", path, point);
            }
        }
        rv_free_names(names, n);
    }
    free(fmt);
    free(content);
    return rc;
}

void rv_close(rv_file *f) {
    if (f->root >= 0) H5Gclose((hid_t)f->root);
    if (f->file >= 0) H5Fclose((hid_t)f->file);
    f->root = f->file = -1;
}

int rv_exists(const rv_file *f, const char *rel) {
    /* every prefix must exist before H5Oexists_by_name may be asked */
    char buf[1200];
    snprintf(buf, sizeof buf, "%s", rel);
    for (char *p = buf;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (H5Lexists(rv_root(f), buf, H5P_DEFAULT) <= 0) return 0;
            if (H5Oexists_by_name(rv_root(f), buf, H5P_DEFAULT) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

int rv_dims(const rv_file *f, const char *rel, int64_t *dims) {
    if (!rv_exists(f, rel)) return -1;
    H5O_info_t oi;
    if (H5Oget_info_by_name(rv_root(f), rel, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return -1;
    hid_t d = H5Dopen2(rv_root(f), rel, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t hd[H5S_MAX_RANK];
    if (nd > 4 || nd < 0) nd = -1;
    else H5Sget_simple_extent_dims(s, hd, NULL);
    for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
    H5Sclose(s);
    H5Dclose(d);
    return nd;
}

typedef struct {
    char **names;
    int n, cap;
} name_list;

static herr_t rv_member_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g;
    (void)info;
    name_list *l = op;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = at_realloc(l->names, (size_t)l->cap * sizeof *l->names, "rv names");
    }
    l->names[l->n++] = at_strdup(name, "rv name");
    return 0;
}

int rv_members(const rv_file *f, const char *rel, char ***names) {
    *names = NULL;
    if (!rv_exists(f, rel)) return 0;
    hid_t g = H5Gopen2(rv_root(f), rel, H5P_DEFAULT);
    if (g < 0) return 0;
    name_list l = {0};
    hid_t cpl = H5Gget_create_plist(g);
    unsigned flags = 0;
    H5Pget_link_creation_order(cpl, &flags);
    H5Pclose(cpl);
    H5_index_t idx = (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    hsize_t pos = 0;
    if (H5Literate(g, idx, H5_ITER_INC, &pos, rv_member_cb, &l) < 0) {
        pos = 0;
        rv_free_names(l.names, l.n);
        l = (name_list){0};
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &pos, rv_member_cb, &l);
    }
    H5Gclose(g);
    *names = l.names;
    return l.n;
}

void rv_free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static hid_t rv_attr_open(const rv_file *f, const char *rel, const char *name) {
    const char *obj = rel && rel[0] ? rel : ".";
    if (rel && rel[0] && !rv_exists(f, rel)) return -1;
    if (H5Aexists_by_name(rv_root(f), obj, name, H5P_DEFAULT) <= 0) return -1;
    return H5Aopen_by_name(rv_root(f), obj, name, H5P_DEFAULT, H5P_DEFAULT);
}

int rv_attr_str(const rv_file *f, const char *rel, const char *name, char **out) {
    *out = NULL;
    hid_t a = rv_attr_open(f, rel, name);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    int ok = 0;
    if (H5Tget_class(t) == H5T_STRING && H5Sget_simple_extent_npoints(s) == 1) {
        if (H5Tis_variable_str(t) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            char *p = NULL;
            if (H5Aread(a, mt, &p) >= 0 && p) {
                *out = at_strdup(p, "rv attr");
                ok = 1;
            }
            if (p) H5free_memory(p);
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(t);
            char *buf = at_calloc(n + 1, 1, "rv attr");
            hid_t mt = H5Tcopy(t);
            if (H5Aread(a, mt, buf) >= 0) {
                *out = buf;
                ok = 1;
            } else {
                free(buf);
            }
            H5Tclose(mt);
        }
    }
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

int rv_attr_f64(const rv_file *f, const char *rel, const char *name, double *out) {
    hid_t a = rv_attr_open(f, rel, name);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    int ok = 0;
    H5T_class_t c = H5Tget_class(t);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    if ((c == H5T_INTEGER || c == H5T_FLOAT) && n >= 1 && n < (1 << 20)) {
        double *v = at_malloc((size_t)n * sizeof *v, "rv attr");
        if (H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0) {
            *out = v[0];
            ok = 1;
        }
        free(v);
    }
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static int rv_read(const rv_file *f, const char *rel, int64_t r0, int64_t r1, hid_t mem,
                   H5T_class_t want, void *out, at_err *err) {
    int64_t dims[4];
    int nd = rv_dims(f, rel, dims);
    if (nd < 1)
        return at_err_set(err, AT_EUSER, "%s: dataset /%s is missing", f->where, rel);
    if (r0 < 0 || r1 > dims[0] || r0 > r1)
        return at_err_set(err, AT_EUSER, "%s: /%s has %lld rows; rows %lld:%lld were asked for",
                          f->where, rel, (long long)dims[0], (long long)r0, (long long)r1);
    if (r0 == r1) return 0;
    hid_t d = H5Dopen2(rv_root(f), rel, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    int rc = 0;
    if (c != H5T_INTEGER && !(c == H5T_FLOAT && want == H5T_FLOAT)) {
        rc = at_err_set(err, AT_EUSER, "%s: /%s is not %s", f->where, rel,
                        want == H5T_FLOAT ? "numeric" : "an integer dataset");
    } else {
        hid_t fs = H5Dget_space(d);
        hsize_t start[4] = {0}, count[4];
        for (int i = 0; i < nd; i++) count[i] = (hsize_t)dims[i];
        start[0] = (hsize_t)r0;
        count[0] = (hsize_t)(r1 - r0);
        hid_t ms = H5Screate_simple(nd, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(d, mem, ms, fs, H5P_DEFAULT, out) < 0)
            rc = at_err_set(err, AT_EUSER, "%s: cannot read /%s rows %lld:%lld", f->where, rel,
                            (long long)r0, (long long)r1);
        H5Sclose(ms);
        H5Sclose(fs);
    }
    H5Dclose(d);
    return rc;
}

int rv_read_f32(const rv_file *f, const char *rel, int64_t r0, int64_t r1, float *out,
                at_err *err) {
    return rv_read(f, rel, r0, r1, H5T_NATIVE_FLOAT, H5T_FLOAT, out, err);
}

int rv_read_i64(const rv_file *f, const char *rel, int64_t r0, int64_t r1, int64_t *out,
                at_err *err) {
    return rv_read(f, rel, r0, r1, H5T_NATIVE_INT64, H5T_INTEGER, out, err);
}

int render_methods(const rv_file *f, char ***names, const char **kind_dir) {
    *kind_dir = NULL;
    *names = NULL;
    if (rv_exists(f, "attributions")) *kind_dir = "attributions";
    else if (rv_exists(f, "influence")) *kind_dir = "influence";
    else return 0;
    return rv_members(f, *kind_dir, names);
}

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

static int data_open(data_src *d, const rv_file *f, const render_opts *o, int need_train,
                     int h, int w, at_err *err) {
    memset(d, 0, sizeof *d);
    char *split = NULL, *train_split = NULL;
    int rc = 0;
    if (o->data) d->path = at_strdup(o->data, "render data");
    else if (!rv_attr_str(f, "", "data_path", &d->path))
        return at_err_set(err, AT_EUSER, "%s: root attribute data_path is missing (give --data D.h5)",
                          f->where);
    if (!rv_attr_str(f, "", "data_split", &split)) {
        rc = at_err_set(err, AT_EUSER, "%s: root attribute data_split is missing", f->where);
        goto out;
    }
    if (h5_reader_open(&d->test, d->path, split, &d->ti, err)) {
        if (o->data) at_err_prefix(err, "render: --data: ");
        else at_err_prefix(err, "%s names its data (moved? give --data D.h5): ", f->where);
        rc = err->code;
        goto out;
    }
    if (d->ti.n_feat_dims != 2 || d->ti.feat_shape[0] != h || d->ti.feat_shape[1] != w) {
        rc = at_err_set(err, AT_EUSER,
                        "%s split '%s': images of %lld features per row, not the (%d, %d) images "
                        "the results have", d->path, split, (long long)d->ti.n_features, h, w);
        goto out;
    }
    if (need_train) {
        if (!rv_attr_str(f, "", "train_split", &train_split)) {
            rc = at_err_set(err, AT_EUSER, "%s: root attribute train_split is missing", f->where);
            goto out;
        }
        if (h5_reader_open(&d->train, d->path, train_split, &d->ri, err)) {
            rc = err->code;
            goto out;
        }
        if (d->ri.n_features != d->ti.n_features) {
            rc = at_err_set(err, AT_EUSER, "%s: split '%s' has %lld features per row, split '%s' %lld",
                            d->path, train_split, (long long)d->ri.n_features, split,
                            (long long)d->ti.n_features);
            goto out;
        }
    }
out:
    free(split);
    free(train_split);
    return rc;
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

static int samples_range(const render_opts *o, int64_t n, const char *where, int64_t *s0,
                         int64_t *s1, at_err *err) {
    *s0 = o->s0;
    *s1 = o->s1 == INT64_MAX ? n : o->s1 < 0 ? (o->s0 + 8 < n ? o->s0 + 8 : n) : o->s1;
    if (*s0 < 0 || *s0 >= n || *s1 > n || *s1 <= *s0)
        return at_err_set(err, AT_EUSER,
                          "render: --samples %lld:%lld is out of range: %s has %lld samples "
                          "(positions 0 to %lld; expected A:B with 0 <= A < B <= %lld)",
                          (long long)o->s0, (long long)*s1, where, (long long)n,
                          (long long)(n - 1), (long long)n);
    return 0;
}

static int render_attr(const rv_file *f, const render_opts *o, const char *dir,
                       render_info *ri, at_err *err) {
    char rel[1200];
    snprintf(rel, sizeof rel, "%s/%s/scores", dir, o->method);
    int64_t dims[4];
    int nd = rv_dims(f, rel, dims);
    if (nd != 3) {
        char shape[128] = "";
        size_t len = 0;
        for (int i = 0; i < nd && len < sizeof shape; i++)
            len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", i ? ", " : "",
                                    (long long)dims[i]);
        if (nd < 0)
            return at_err_set(err, AT_EUSER, "%s: method '%s' has no dataset /%s", f->where,
                              o->method, rel);
        return at_err_set(err, AT_EUSER,
                          "%s: method '%s' has scores of shape (%s) (/%s): render draws "
                          "images only, scores (N, H, W); these inputs are not images",
                          f->where, o->method, shape, rel);
    }
    int64_t n = dims[0];
    int h = (int)dims[1], w = (int)dims[2];
    int64_t s0, s1;
    if (samples_range(o, n, f->where, &s0, &s1, err)) return err->code;
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
    if ((rc = rv_read_f32(f, rel, s0, s1, scores, err))) goto out;
    if ((rc = rv_read_i64(f, "sample", s0, s1, rows, err))) goto out;
    if ((rc = data_open(&ds, f, o, 0, h, w, err))) goto out;
    for (int k = 0; k < cnt; k++)
        if ((rc = data_row(ds.test, &ds.ti, ds.path, rows[k], imgs + k * D, err))) goto out;

    double shared = robust_max(scores, cnt * D);
    canvas_init(&cv, (int)W, (int)H);
    for (int k = 0; k < cnt; k++) {
        int col = k % cols, row = k / cols;
        int x0 = PAD + col * (int)(cell_w + PAD), y0 = PAD + row * (int)(cell_h + PAD);
        double m = o->scale == RENDER_SCALE_SHARED ? shared : robust_max(scores + k * D, D);
        draw_input(&cv, x0, y0, imgs + k * D, h, w, z);
        draw_overlay(&cv, x0 + w * z + GAP, y0, imgs + k * D, scores + k * D, h, w, z, m, o->alpha);
    }
    /* the colour bar: t from -1 (left) to +1 (right) over the inner width */
    int bx = PAD, bw = (int)W - 2 * PAD, by = (int)H - PAD - BAR_H;
    for (int x = 0; x < bw; x++) {
        double t = bw > 1 ? -1.0 + 2.0 * x / (bw - 1) : 0, col[3];
        cmap(t, col);
        uint8_t rgb[3] = {to_u8(col[0]), to_u8(col[1]), to_u8(col[2])};
        fill(&cv, bx + x, by, 1, BAR_H, rgb);
    }
    rc = png_write(&cv, o->out, err);
    if (!rc && ri) {
        ri->influence = 0;
        ri->s0 = s0;
        ri->s1 = s1;
        ri->width = (int)W;
        ri->height = (int)H;
        ri->scale_max = o->scale == RENDER_SCALE_SHARED ? shared : 0;
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

static int render_infl(const rv_file *f, const render_opts *o, render_info *ri, at_err *err) {
    char top_rel[1200], opp_rel[1200];
    snprintf(top_rel, sizeof top_rel, "influence/%s/topk_index", o->method);
    snprintf(opp_rel, sizeof opp_rel, "influence/%s/opponents_index", o->method);
    int64_t dt[4], dp[4], dtest[4];
    if (rv_dims(f, top_rel, dt) != 2 || rv_dims(f, opp_rel, dp) != 2 || dt[1] < 1 ||
        dp[0] != dt[0] || dp[1] != dt[1])
        return at_err_set(err, AT_EUSER,
                          "%s: influence method '%s' has no top-k lists (/%s and /%s, (N_test, K) "
                          "with K >= 1; train_data.top_k was 0?)", f->where, o->method, top_rel,
                          opp_rel);
    if (rv_dims(f, "test", dtest) != 1 || dtest[0] != dt[0])
        return at_err_set(err, AT_EUSER, "%s: /test is missing or not %lld long", f->where,
                          (long long)dt[0]);
    int64_t n = dt[0];
    int K = (int)dt[1], k_show = o->top > 0 && o->top < K ? o->top : K;
    int64_t s0, s1;
    if (samples_range(o, n, f->where, &s0, &s1, err)) return err->code;
    int cnt = (int)(s1 - s0), z = o->zoom;

    data_src ds;
    memset(&ds, 0, sizeof ds);
    /* the image shape comes from the data: open it first */
    char *dp_path = NULL, *split = NULL;
    int h = 0, w = 0, rc = 0;
    {
        h5_reader *r = NULL;
        h5_dataset_info inf;
        if (o->data) dp_path = at_strdup(o->data, "render data");
        else if (!rv_attr_str(f, "", "data_path", &dp_path))
            return at_err_set(err, AT_EUSER, "%s: root attribute data_path is missing (give --data D.h5)",
                              f->where);
        if (!rv_attr_str(f, "", "data_split", &split)) {
            free(dp_path);
            return at_err_set(err, AT_EUSER, "%s: root attribute data_split is missing", f->where);
        }
        rc = h5_reader_open(&r, dp_path, split, &inf, err);
        if (rc && o->data) at_err_prefix(err, "render: --data: ");
        else if (rc) at_err_prefix(err, "%s names its data (moved? give --data D.h5): ", f->where);
        else if (inf.n_feat_dims != 2)
            rc = at_err_set(err, AT_EUSER,
                            "%s: method '%s': the data %s split '%s' has flat rows of %lld features, "
                            "not images (N, H, W): render draws images only", f->where, o->method,
                            dp_path, split, (long long)inf.n_features);
        else {
            h = (int)inf.feat_shape[0];
            w = (int)inf.feat_shape[1];
        }
        if (r) h5_reader_close(r);
        free(dp_path);
        free(split);
        if (rc) return rc;
    }
    int64_t tw = (int64_t)w * z + 2 * FRAME, th = (int64_t)h * z + 2 * FRAME;
    int64_t W = PAD + tw + 2 * PAD + 2 * (k_show * tw + (k_show - 1) * GAP) + 2 * PAD + PAD;
    int64_t H = PAD + cnt * (th + PAD);
    if (check_size(W, H, "samples", err)) return err->code;

    int64_t D = (int64_t)h * w;
    int64_t *test_rows = at_malloc((size_t)cnt * sizeof *test_rows, "render rows");
    int64_t *top = at_malloc((size_t)(cnt * K) * sizeof *top, "render topk");
    int64_t *opp = at_malloc((size_t)(cnt * K) * sizeof *opp, "render opponents");
    float *img = at_malloc((size_t)D * sizeof *img, "render image");
    canvas cv = {0};
    if ((rc = rv_read_i64(f, "test", s0, s1, test_rows, err))) goto out;
    if ((rc = rv_read_i64(f, top_rel, s0, s1, top, err))) goto out;
    if ((rc = rv_read_i64(f, opp_rel, s0, s1, opp, err))) goto out;
    if ((rc = data_open(&ds, f, o, 1, h, w, err))) goto out;
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

int render_png(const render_opts *o, render_info *info, at_err *err) {
    rv_file f;
    int rc = rv_open(&f, o->results, o->point, err);
    if (!rc) {
        char **names = NULL;
        const char *dir = NULL;
        int n = render_methods(&f, &names, &dir), found = 0;
        char list[2048] = "";
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            if (o->method && strcmp(names[i], o->method) == 0) found = 1;
            if (len + 8 < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                        names[i]);
        }
        if (!dir)
            rc = at_err_set(err, AT_EUSER,
                            "%s: no /attributions or /influence group: nothing to render", f.where);
        else if (!o->method)
            rc = at_err_set(err, AT_EUSER, "render: --method is required; %s has: %s", f.where,
                            list);
        else if (!found)
            rc = at_err_set(err, AT_EUSER, "render: %s has no method '%s' in /%s; its methods: %s",
                            f.where, o->method, dir, list);
        else if (strcmp(dir, "influence") == 0)
            rc = render_infl(&f, o, info, err);
        else
            rc = render_attr(&f, o, dir, info, err);
        rv_free_names(names, n);
    }
    rv_close(&f);
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

/* "A:B" or "A" (= A:A+1); B may be omitted ("A:" = to the end, s1 = -2). */
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
        *s1 = -2;
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
    long x;
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
    if (o.s1 == -2) o.s1 = INT64_MAX; /* "A:": to the end */
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
