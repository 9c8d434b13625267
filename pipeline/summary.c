/* summary.c — a results file read into an sm_summary. See summary.h. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "summary.h"
#include "tda_truth.h"

#define SM_BLOCK_ELEMS ((int64_t)1 << 22) /* scores read per block (16 MiB) */

/* ------------------------------------------------------------ small things */

static void hclose(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    default: break;
    }
    *id = -1;
}

static char *sm_strdup(const char *s) { return at_strdup(s ? s : "", "summary"); }

static char *sm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sm_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = at_malloc((size_t)n + 1, "summary text");
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of x[0..n) (x is reordered); NaN when n = 0. */
static double sm_median(double *x, int64_t n) {
    if (n <= 0) return NAN;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* ------------------------------------------------------------ attributes */

/* The attribute named name, or NULL. */
static const sm_attr *sm_attr_find(const sm_attrs *as, const char *name) {
    for (int i = 0; i < as->n; i++)
        if (strcmp(as->a[i].name, name) == 0) return &as->a[i];
    return NULL;
}

double sm_attr_num(const sm_attrs *as, const char *name, double dflt) {
    const sm_attr *a = sm_attr_find(as, name);
    return a && a->is_num ? a->num : dflt;
}

const char *sm_attr_text(const sm_attrs *as, const char *name, const char *dflt) {
    const sm_attr *a = sm_attr_find(as, name);
    return a ? a->text : dflt;
}

static void attrs_free(sm_attrs *as) {
    for (int i = 0; i < as->n; i++) {
        free(as->a[i].name);
        free(as->a[i].text);
        free(as->a[i].vals);
    }
    free(as->a);
    as->a = NULL;
    as->n = 0;
}

static sm_attr *attrs_push(sm_attrs *as, const char *name) {
    as->a = at_realloc(as->a, (size_t)(as->n + 1) * sizeof *as->a, "summary attrs");
    sm_attr *a = &as->a[as->n++];
    memset(a, 0, sizeof *a);
    a->name = sm_strdup(name);
    a->num = NAN;
    a->n_vals = 1;
    return a;
}

static void attrs_push_text(sm_attrs *as, const char *name, const char *text) {
    sm_attr *a = attrs_push(as, name);
    a->text = sm_strdup(text);
    char *end;
    double v = strtod(text, &end);
    if (end != text && *end == '\0') {
        a->num = v;
        a->is_num = 1;
    }
}

/* Numbers as text: integers without a fraction, the rest %.6g. */
static void num_text(double v, char *out, size_t cap) {
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e15)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.6g", v);
}

/* Read one attribute into a (strings joined by ", "; numbers as float64). */
static void attr_read(hid_t attr, sm_attr *a) {
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    H5T_class_t cls = H5Tget_class(type);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    if (n < 0) n = 0;
    if (cls == H5T_STRING) {
        int vlen = H5Tis_variable_str(type) > 0;
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mem, H5Tget_cset(type));
        size_t sz = H5Tget_size(type);
        char *joined = NULL;
        if (vlen) {
            H5Tset_size(mem, H5T_VARIABLE);
            char **v = at_calloc((size_t)(n ? n : 1), sizeof *v, "summary attr");
            if (n > 0 && H5Aread(attr, mem, v) >= 0) {
                size_t len = 1;
                for (hssize_t i = 0; i < n; i++) len += (v[i] ? strlen(v[i]) : 0) + 2;
                joined = at_calloc(len, 1, "summary attr");
                for (hssize_t i = 0; i < n; i++) {
                    if (i) strcat(joined, ", ");
                    if (v[i]) strcat(joined, v[i]);
                }
                H5Dvlen_reclaim(mem, space, H5P_DEFAULT, v);
            }
            free(v);
        } else {
            H5Tset_size(mem, sz + 1);
            char *buf = at_calloc((size_t)(n ? n : 1) * (sz + 1), 1, "summary attr");
            if (n > 0 && H5Aread(attr, mem, buf) >= 0) {
                joined = at_calloc((size_t)n * (sz + 2) + 1, 1, "summary attr");
                for (hssize_t i = 0; i < n; i++) {
                    if (i) strcat(joined, ", ");
                    strcat(joined, buf + (size_t)i * (sz + 1));
                }
            }
            free(buf);
        }
        a->text = joined ? joined : sm_strdup("");
        a->n_vals = (int)(n ? n : 1);
        H5Tclose(mem);
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
        double *v = at_calloc((size_t)(n ? n : 1), sizeof *v, "summary attr");
        if (n > 0 && H5Aread(attr, H5T_NATIVE_DOUBLE, v) < 0) n = 0;
        a->n_vals = (int)n;
        if (n == 1 && H5Sget_simple_extent_ndims(space) == 0) {
            a->num = v[0];
            a->is_num = 1;
            char t[64];
            num_text(v[0], t, sizeof t);
            a->text = sm_strdup(t);
            free(v);
        } else {
            size_t cap = 16 + 26 * (size_t)(n < 8 ? n : 8);
            char *t = at_calloc(cap, 1, "summary attr");
            strcat(t, "[");
            for (hssize_t i = 0; i < n && i < 8; i++) {
                char x[32];
                num_text(v[i], x, sizeof x);
                if (i) strcat(t, ", ");
                strcat(t, x);
            }
            if (n > 8) strcat(t, ", ...");
            strcat(t, "]");
            a->text = t;
            a->vals = v;
            if (n == 1) {
                a->num = v[0];
                a->is_num = 1;
            }
        }
    } else {
        a->text = sm_strdup("(unsupported type)");
    }
    H5Tclose(type);
    H5Sclose(space);
}

static herr_t attr_iter(hid_t loc, const char *name, const H5A_info_t *info, void *op) {
    (void)info;
    sm_attrs *as = op;
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0) return 0;
    sm_attr *a = attrs_push(as, name);
    attr_read(attr, a);
    H5Aclose(attr);
    return 0;
}

/* Every attribute of the object at path (relative to loc), in name order. */
static void attrs_read(hid_t loc, const char *path, sm_attrs *as) {
    if (H5Lexists(loc, path, H5P_DEFAULT) <= 0 && strcmp(path, ".") != 0) return;
    hid_t obj = H5Oopen(loc, path, H5P_DEFAULT);
    if (obj < 0) return;
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_iter, as);
    H5Oclose(obj);
}

/* ------------------------------------------------------------ datasets */

/* 1 when path (relative to loc, possibly several levels) exists. */
static int path_exists(hid_t loc, const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (buf[0] && H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
        *p = '/';
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

static int dset_shape(hid_t loc, const char *path, int64_t shape[SM_MAX_DIMS]) {
    if (!path_exists(loc, path)) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name(loc, path, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
        return 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    if (nd < 0 || nd > SM_MAX_DIMS) return nd > SM_MAX_DIMS ? SM_MAX_DIMS + 1 : 0;
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
    return nd == 0 ? -1 : nd; /* -1: a scalar */
}

/* Rows [r0, r1) of a numeric dataset (rank 1 to SM_MAX_DIMS) converted to
 * mem_type. Returns 0, 1 when absent, or AT_EUSER. */
static int dset_rows(hid_t loc, const char *file, const char *path, hid_t mem_type, int64_t r0,
                     int64_t r1, void *out, at_err *err) {
    int64_t shape[SM_MAX_DIMS] = {0};
    int nd = dset_shape(loc, path, shape);
    if (nd == 0) return 1;
    if (nd < 1 || nd > SM_MAX_DIMS)
        return at_err_set(err, AT_EUSER, "%s: dataset %s: expected 1 to %d dimensions", file,
                          path, SM_MAX_DIMS);
    if (r0 < 0 || r1 > shape[0] || r0 > r1)
        return at_err_set(err, AT_EUSER, "%s: dataset %s: rows %lld:%lld outside its %lld rows",
                          file, path, (long long)r0, (long long)r1, (long long)shape[0]);
    if (r1 == r0) return 0;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    hid_t type = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(type);
    H5Tclose(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        H5Dclose(d);
        return at_err_set(err, AT_EUSER, "%s: dataset %s: expected numbers, found another type",
                          file, path);
    }
    hid_t fs = H5Dget_space(d);
    hsize_t start[SM_MAX_DIMS] = {0}, count[SM_MAX_DIMS];
    for (int i = 0; i < nd; i++) count[i] = (hsize_t)shape[i];
    start[0] = (hsize_t)r0;
    count[0] = (hsize_t)(r1 - r0);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(nd, count, NULL);
    herr_t rc = H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    if (rc < 0)
        return at_err_set(err, AT_EUSER, "%s: dataset %s: cannot read rows %lld:%lld", file, path,
                          (long long)r0, (long long)r1);
    return 0;
}

/* A 1-D string dataset: n strings (malloc'd), or -1 (err set). */
static int dset_strings(hid_t loc, const char *file, const char *path, char ***out,
                        at_err *err) {
    *out = NULL;
    hid_t d = H5Dopen2(loc, path, H5P_DEFAULT);
    if (d < 0) {
        at_err_set(err, AT_EUSER, "%s: dataset %s is missing", file, path);
        return -1;
    }
    hid_t type = H5Dget_type(d), sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int ok = H5Tget_class(type) == H5T_STRING && H5Sget_simple_extent_ndims(sp) == 1;
    char **v = NULL;
    if (ok) {
        v = at_calloc((size_t)(n ? n : 1), sizeof *v, "summary strings");
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (H5Tis_variable_str(type) > 0) {
            H5Tset_size(mem, H5T_VARIABLE);
            char **raw = at_calloc((size_t)(n ? n : 1), sizeof *raw, "summary strings");
            ok = n == 0 || H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0;
            for (hssize_t i = 0; ok && i < n; i++) v[i] = sm_strdup(raw[i]);
            if (ok && n) H5Dvlen_reclaim(mem, sp, H5P_DEFAULT, raw);
            free(raw);
        } else {
            size_t sz = H5Tget_size(type);
            H5Tset_size(mem, sz + 1);
            char *buf = at_calloc((size_t)(n ? n : 1) * (sz + 1), 1, "summary strings");
            ok = n == 0 || H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
            for (hssize_t i = 0; ok && i < n; i++) v[i] = sm_strdup(buf + (size_t)i * (sz + 1));
            free(buf);
        }
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Sclose(sp);
    H5Dclose(d);
    if (!ok) {
        if (v)
            for (hssize_t i = 0; i < n; i++) free(v[i]);
        free(v);
        at_err_set(err, AT_EUSER, "%s: dataset %s: expected a 1-D array of strings", file, path);
        return -1;
    }
    *out = v;
    return (int)n;
}

/* Names of the links of group path (relative to loc), name order; types 1 =
 * groups only, 2 = datasets only, 3 = both. Returns the count (malloc'd). */
typedef struct {
    char **names;
    int n;
    int want;
} link_list;

static herr_t link_iter(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)info;
    link_list *l = op;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0) return 0;
    int kind = oi.type == H5O_TYPE_GROUP ? 1 : oi.type == H5O_TYPE_DATASET ? 2 : 0;
    if (!(kind & l->want)) return 0;
    l->names = at_realloc(l->names, (size_t)(l->n + 1) * sizeof *l->names, "summary links");
    l->names[l->n++] = sm_strdup(name);
    return 0;
}

static int list_links(hid_t loc, const char *path, int want, char ***names) {
    link_list l = {NULL, 0, want};
    *names = NULL;
    if (!path_exists(loc, path)) return 0;
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) return 0;
    hsize_t idx = 0;
    H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, link_iter, &l);
    H5Gclose(g);
    *names = l.names;
    return l.n;
}

static void free_strs(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* ------------------------------------------------------------ opening */

/* Why HDF5 cannot open path: a directory, empty, no HDF5 signature, or a
 * signature but truncated or corrupt. */
static void unopenable(const char *path, char *out, size_t cap) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    struct stat st;
    FILE *f = NULL;
    if (stat(path, &st) != 0) {
        snprintf(out, cap, "%s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "it is a directory");
    } else if (st.st_size == 0) {
        snprintf(out, cap, "it is empty (0 bytes)");
    } else if (!(f = fopen(path, "rb"))) {
        snprintf(out, cap, "%s", strerror(errno));
    } else {
        int found = 0;
        for (long off = 0; !found && off + 8 <= (long)st.st_size; off = off ? 2 * off : 512) {
            unsigned char b[8];
            found = fseek(f, off, SEEK_SET) == 0 && fread(b, 1, 8, f) == 8 &&
                    memcmp(b, sig, 8) == 0;
        }
        snprintf(out, cap, "%s",
                 found ? "it has an HDF5 signature, so it is probably truncated or corrupt"
                       : "not an HDF5 file (no HDF5 signature)");
    }
    if (f) fclose(f);
}

static hid_t open_file(const char *path, at_err *err) {
    hid_t f = -1;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char why[256];
        unopenable(path, why, sizeof why);
        at_err_set(err, AT_EUSER, "%s: cannot open as an attrib results file: %s", path, why);
    }
    return f;
}

/* ------------------------------------------------------------ statistics */

/* Sum of the row Spearman correlations of a and b (n rows of d; ties get
 * their average rank, tda_spearman), and the rows that counted (both sides
 * not constant). */
static void row_spearman_sum(const float *a, const float *b, int64_t n, int64_t d,
                             double *sum, int64_t *count) {
    double *ra = at_malloc(2 * (size_t)d * sizeof *ra, "spearman"), *rb = ra + d;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < d; k++) ra[k] = a[i * d + k], rb[k] = b[i * d + k];
        double c = tda_spearman(ra, rb, d);
        if (!isnan(c)) {
            *sum += c;
            (*count)++;
        }
    }
    free(ra);
}

static double dset_mean(hid_t loc, const char *file, const char *path, at_err *err) {
    int64_t shape[SM_MAX_DIMS] = {0};
    int nd = dset_shape(loc, path, shape);
    if (nd < 1) return NAN;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (n == 0) return NAN;
    double *v = at_malloc((size_t)n * sizeof *v, "summary mean");
    double m = NAN;
    if (dset_rows(loc, file, path, H5T_NATIVE_DOUBLE, 0, shape[0], v, err) == 0) {
        double s = 0;
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            if (!isnan(v[i])) s += v[i], k++;
        m = k ? s / (double)k : NAN;
    }
    free(v);
    return m;
}

/* ------------------------------------------------------------ reading */

static int64_t row_elems(const sm_method *me) {
    int64_t e = 1;
    for (int i = 1; i < me->ndims; i++) e *= me->shape[i];
    return e;
}

/* A method's shape and top-k width; with light == 0 also its score
 * statistics, completeness, LOO and LDS. */
static int method_stats(hid_t base, const char *file, sm_method *me, int light, at_err *err) {
    char p[1024];
    snprintf(p, sizeof p, "%s/scores", me->group);
    int nd = dset_shape(base, p, me->shape);
    if (nd < 2 || nd > SM_MAX_DIMS)
        return at_err_set(err, AT_EUSER, "%s: dataset %s: expected (N, ...) scores with 2 to %d "
                          "dimensions", file, p, SM_MAX_DIMS);
    me->ndims = nd;
    char pk[1024];
    snprintf(pk, sizeof pk, "%s/topk_index", me->group);
    int64_t sk[SM_MAX_DIMS] = {0};
    if (dset_shape(base, pk, sk) == 2) me->top_k = sk[1];
    me->mean_abs = me->frac_pos = me->frac_neg = NAN;
    me->delta_median_abs = me->delta_max_abs = me->delta_rel_median = NAN;
    if (light) return 0;
    int64_t d = row_elems(me), n = me->shape[0];
    int64_t br = d > 0 ? SM_BLOCK_ELEMS / d : n;
    if (br < 1) br = 1;
    float *buf = at_malloc((size_t)((br < n ? br : n) * d + 1) * sizeof *buf, "summary scores");
    double sabs = 0;
    int64_t pos = 0, neg = 0;
    for (int64_t r0 = 0; r0 < n; r0 += br) {
        int64_t r1 = r0 + br < n ? r0 + br : n;
        if (dset_rows(base, file, p, H5T_NATIVE_FLOAT, r0, r1, buf, err)) break;
        for (int64_t i = 0; i < (r1 - r0) * d; i++) {
            sabs += fabs((double)buf[i]);
            pos += buf[i] > 0;
            neg += buf[i] < 0;
        }
    }
    free(buf);
    if (err->code) return err->code;
    double tot = (double)n * (double)d;
    me->mean_abs = tot > 0 ? sabs / tot : NAN;
    me->frac_pos = tot > 0 ? (double)pos / tot : NAN;
    me->frac_neg = tot > 0 ? (double)neg / tot : NAN;

    /* completeness */
    char pd[1024], po[1024];
    snprintf(pd, sizeof pd, "%s/delta", me->group);
    snprintf(po, sizeof po, "%s/output_diff", me->group);
    int64_t sd[SM_MAX_DIMS] = {0};
    if (dset_shape(base, pd, sd) == 1 && sd[0] > 0) {
        me->has_delta = 1;
        double *dl = at_malloc((size_t)sd[0] * sizeof *dl, "summary delta");
        double *od = at_malloc((size_t)sd[0] * sizeof *od, "summary delta");
        int64_t so[SM_MAX_DIMS] = {0};
        int have_od = dset_shape(base, po, so) == 1 && so[0] == sd[0];
        if (!dset_rows(base, file, pd, H5T_NATIVE_DOUBLE, 0, sd[0], dl, err) &&
            (!have_od || !dset_rows(base, file, po, H5T_NATIVE_DOUBLE, 0, sd[0], od, err))) {
            int64_t k = 0;
            for (int64_t i = 0; have_od && i < sd[0]; i++)
                if (od[i] != 0 && isfinite(od[i]) && isfinite(dl[i]))
                    od[k++] = fabs(dl[i]) / fabs(od[i]);
            if (have_od) me->delta_rel_median = sm_median(od, k);
            double mx = 0;
            for (int64_t i = 0; i < sd[0]; i++) {
                dl[i] = fabs(dl[i]);
                if (dl[i] > mx || isnan(dl[i])) mx = dl[i];
            }
            me->delta_max_abs = mx;
            me->delta_median_abs = sm_median(dl, sd[0]);
        }
        free(dl);
        free(od);
    }

    /* influence: LOO and LDS */
    snprintf(pk, sizeof pk, "%s/loo", me->group);
    attrs_read(base, pk, &me->loo);
    snprintf(pk, sizeof pk, "%s/lds", me->group);
    attrs_read(base, pk, &me->lds);
    return err->code;
}

/* "section.key" -> value of the effective job's two-level scalar lines. */
static void job_settings(const char *yaml, sm_attrs *all) {
    if (!yaml) return;
    char section[1024] = "";
    const char *line = yaml;
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[1024];
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol ? eol + 1 : line + len;
        if (buf[0] == '#' || buf[0] == '\0') continue;
        char *colon = strchr(buf, ':');
        if (!colon) continue;
        if (buf[0] != ' ') {
            *colon = '\0';
            snprintf(section, sizeof section, "%s", buf);
            continue;
        }
        if (strncmp(buf, "  ", 2) != 0 || buf[2] == ' ' || buf[2] == '-') continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ') v++;
        if (!*v) continue; /* a nested mapping */
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        char key[2100];
        snprintf(key, sizeof key, "%s.%s", section, buf + 2);
        attrs_push_text(all, key, v);
    }
}

static const char *JOB_KEYS[] = {
    "data.split", "data.rows", "run.scheduler", "run.block_rows", "run.step_block",
    "run.seed", "train_data.split", "train_data.rows",
    "train_data.top_k", "train_data.block_rows", "metrics.curves", "metrics.agreement",
    "metrics.infidelity", "metrics.sensitivity", "output.compression",
};

static void fill_shortcuts(sm_summary *s) {
    s->format = sm_attr_text(&s->root, "format", NULL);
    s->attrib_version = sm_attr_text(&s->root, "attrib_version", NULL);
    s->content_text = sm_attr_text(&s->root, "content", NULL);
    s->job_file = sm_attr_text(&s->root, "job_file", NULL);
    s->job_yaml = sm_attr_text(&s->root, "job_yaml", NULL);
    s->model_path = sm_attr_text(&s->root, "model_path", NULL);
    s->model_sha256 = sm_attr_text(&s->root, "model_sha256", NULL);
    s->data_path = sm_attr_text(&s->root, "data_path", NULL);
    s->data_split = sm_attr_text(&s->root, "data_split", NULL);
    s->train_split = sm_attr_text(&s->root, "train_split", NULL);
    s->scheduler = sm_attr_text(&s->root, "scheduler", NULL);
    s->format_version = (int64_t)sm_attr_num(&s->root, "format_version", -1);
}

/* Root attributes and the kind of file; refuses what is not attrib-results. */
static int read_root(sm_summary *s, hid_t base, at_err *err) {
    attrs_read(base, ".", &s->root);
    fill_shortcuts(s);
    const char *where = s->point ? "point" : "file";
    if (!s->format)
        return at_err_set(err, AT_EUSER,
                          "%s%s%s: not an attrib results file (no root attribute 'format'; "
                          "expected format = \"attrib-results\", what attrib run writes)",
                          s->path, s->point ? " --point " : "", s->point ? s->point : "");
    if (strcmp(s->format, "attrib-results") != 0)
        return at_err_set(err, AT_EUSER,
                          "%s: not an attrib results file (format = \"%s\", expected "
                          "\"attrib-results\", what attrib run writes)", s->path, s->format);
    if (s->format_version != 1)
        return at_err_set(err, AT_EUSER,
                          "%s: results format_version %lld is not supported (expected 1)",
                          s->path, (long long)s->format_version);
    if (s->content_text && strcmp(s->content_text, "sweep") == 0) {
        if (s->point)
            return at_err_set(err, AT_EUSER, "%s: point %s is itself a sweep (%s content)",
                              s->path, s->point, where);
        s->content = SM_SWEEP;
    } else if (s->content_text && strcmp(s->content_text, "training-data attribution") == 0) {
        s->content = SM_INFLUENCE;
    } else if (!s->content_text || strcmp(s->content_text, "feature attribution") == 0) {
        s->content = SM_FEATURE;
    } else {
        return at_err_set(err, AT_EUSER, "%s: root attribute content = \"%s\": expected "
                          "\"training-data attribution\", \"sweep\" or none", s->path,
                          s->content_text);
    }
    return 0;
}

/* A plain file (or point) below base; light: no statistics (sm_read_light). */
static int read_plain(sm_summary *s, hid_t base, int light, at_err *err) {
    /* job settings */
    sm_attrs all = {0};
    job_settings(s->job_yaml, &all);
    for (size_t k = 0; k < sizeof JOB_KEYS / sizeof JOB_KEYS[0]; k++) {
        const char *v = sm_attr_text(&all, JOB_KEYS[k], NULL);
        /* metrics that are off say nothing */
        if (v && !strncmp(JOB_KEYS[k], "metrics.", 8) && (!strcmp(v, "false") || !strcmp(v, "0")))
            continue;
        if (v) attrs_push_text(&s->job, JOB_KEYS[k], v);
    }
    attrs_free(&all);

    /* timing and load */
    for (int i = 0; i < s->root.n; i++) {
        const sm_attr *a = &s->root.a[i];
        if (strncmp(a->name, "time_", 5) == 0 && a->is_num) {
            sm_attr *t = attrs_push(&s->timing, a->name);
            t->text = sm_strdup(a->text);
            t->num = a->num;
            t->is_num = 1;
        }
    }
    s->n_ranks = (int)sm_attr_num(&s->root, "n_ranks", sm_attr_num(&s->root, "ranks", -1));
    s->units_resumed = (int64_t)sm_attr_num(&s->root, "units_resumed", -1);
    s->units_min = s->units_max = s->units_mean = s->units_max_over_mean = NAN;
    const sm_attr *up = sm_attr_find(&s->root, "units_per_rank");
    if (up && up->n_vals > 0 && (up->vals || up->is_num)) {
        s->n_units_per_rank = up->n_vals;
        s->units_per_rank = at_malloc((size_t)up->n_vals * sizeof(double), "summary units");
        double sum = 0, mn = INFINITY, mx = -INFINITY;
        for (int i = 0; i < up->n_vals; i++) {
            double v = up->vals ? up->vals[i] : up->num;
            s->units_per_rank[i] = v;
            sum += v;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
        s->units_min = mn;
        s->units_max = mx;
        s->units_mean = sum / up->n_vals;
        s->units_max_over_mean = s->units_mean > 0 ? mx / s->units_mean : NAN;
    }

    /* axes */
    int64_t sh[SM_MAX_DIMS] = {0};
    const char *rows_axis = s->content == SM_INFLUENCE ? "test" : "sample";
    s->n_rows = dset_shape(base, rows_axis, sh) == 1 ? sh[0] : -1;
    s->n_train = s->content == SM_INFLUENCE && dset_shape(base, "train", sh) == 1 ? sh[0] : -1;
    s->n_classes = dset_shape(base, "class", sh) == 1 ? sh[0] : -1;

    /* methods */
    const char *top = s->content == SM_INFLUENCE ? "influence" : "attributions";
    char **names = NULL;
    int n = list_links(base, top, 1, &names);
    s->methods = at_calloc((size_t)(n ? n : 1), sizeof *s->methods, "summary methods");
    for (int m = 0; m < n && !err->code; m++) {
        sm_method *me = &s->methods[s->n_methods++];
        me->name = sm_strdup(names[m]);
        me->group = sm_printf("%s/%s", top, names[m]);
        attrs_read(base, me->group, &me->attrs);
        me->kind = sm_strdup(sm_attr_text(&me->attrs, "kind", "?"));
        method_stats(base, s->path, me, light, err);
    }
    free_strs(names, n);
    if (err->code || light) return err->code;

    /* metrics: the union of dataset names, then the means */
    for (int m = 0; m < s->n_methods; m++) {
        char p[1024];
        snprintf(p, sizeof p, "metrics/%s", s->methods[m].name);
        char **ds = NULL;
        int nd = list_links(base, p, 2, &ds);
        for (int k = 0; k < nd; k++) {
            int found = 0;
            for (int j = 0; j < s->n_metric_names; j++)
                found |= strcmp(s->metric_names[j], ds[k]) == 0;
            if (!found) {
                s->metric_names = at_realloc(s->metric_names,
                                             (size_t)(s->n_metric_names + 1) * sizeof(char *),
                                             "summary metrics");
                s->metric_names[s->n_metric_names++] = sm_strdup(ds[k]);
            }
        }
        free_strs(ds, nd);
    }
    for (int a = 1; a < s->n_metric_names; a++) /* insertion sort by name */
        for (int b = a; b > 0 && strcmp(s->metric_names[b - 1], s->metric_names[b]) > 0; b--) {
            char *t = s->metric_names[b];
            s->metric_names[b] = s->metric_names[b - 1];
            s->metric_names[b - 1] = t;
        }
    for (int m = 0; m < s->n_methods && !err->code; m++) {
        sm_method *me = &s->methods[m];
        me->metric_mean = at_malloc((size_t)(s->n_metric_names + 1) * sizeof(double),
                                    "summary metrics");
        for (int k = 0; k < s->n_metric_names; k++) {
            char p[1024];
            snprintf(p, sizeof p, "metrics/%s/%s", me->name, s->metric_names[k]);
            me->metric_mean[k] = dset_mean(base, s->path, p, err);
        }
    }

    /* agreement */
    int nm = s->n_methods, any = 0;
    double *mats[3] = {NULL, NULL, NULL};
    static const char *AGREE[3] = {"spearman", "kendall", "top_k_overlap"};
    for (int q = 0; q < 3; q++) {
        mats[q] = at_malloc((size_t)(nm * nm + 1) * sizeof(double), "summary agreement");
        for (int i = 0; i < nm * nm; i++) mats[q][i] = NAN;
        for (int a = 0; a < nm; a++) mats[q][a * nm + a] = 1.0;
        for (int a = 0; a < nm && !err->code; a++)
            for (int b = 0; b < nm; b++) {
                if (a == b) continue;
                char p[1024];
                snprintf(p, sizeof p, "metrics/%s/agreement/%s/%s", s->methods[a].name,
                         s->methods[b].name, AGREE[q]);
                if (!path_exists(base, p)) continue;
                double v = dset_mean(base, s->path, p, err);
                mats[q][a * nm + b] = mats[q][b * nm + a] = v;
                any = 1;
            }
    }
    if (any) {
        s->agree = mats[0];
        s->agree_kendall = mats[1];
        s->agree_topk = mats[2];
    } else {
        for (int q = 0; q < 3; q++) free(mats[q]);
    }
    return err->code;
}

/* For a sweep: how each method common to all points moved against point 0. */
static int sweep_compare(sm_summary *s, hid_t file, at_err *err) {
    sm_summary *p0 = &s->points[0];
    s->sweep_methods = at_calloc((size_t)(p0->n_methods + 1), sizeof *s->sweep_methods,
                                 "summary sweep");
    for (int m = 0; m < p0->n_methods && !err->code; m++) {
        const sm_method *m0 = &p0->methods[m];
        int in_all = 1;
        for (int p = 1; p < s->n_points; p++) in_all &= sm_method_index(&s->points[p], m0->name) >= 0;
        if (!in_all) continue;
        sm_sweep_method *sw = &s->sweep_methods[s->n_sweep_methods++];
        sw->name = sm_strdup(m0->name);
        sw->spearman = at_malloc((size_t)s->n_points * sizeof(double), "summary sweep");
        sw->rel_l2 = at_malloc((size_t)s->n_points * sizeof(double), "summary sweep");
        int64_t d = row_elems(m0), n = m0->shape[0];
        int64_t br = d > 0 ? SM_BLOCK_ELEMS / d : n;
        if (br < 1) br = 1;
        if (br > n) br = n;
        float *a = at_malloc((size_t)(br * d + 1) * sizeof(float), "summary sweep");
        float *b = at_malloc((size_t)(br * d + 1) * sizeof(float), "summary sweep");
        /* per point: the method's index there (-1: another shape, NaN) and
         * its sums, each accumulated in row order */
        int P = s->n_points;
        int *mi = at_malloc((size_t)P * sizeof *mi, "summary sweep");
        double *ssum = at_calloc((size_t)P, sizeof *ssum, "summary sweep");
        double *num = at_calloc((size_t)P, sizeof *num, "summary sweep");
        int64_t *cnt = at_calloc((size_t)P, sizeof *cnt, "summary sweep");
        double den = 0; /* ||S_0||^2, the same for every point */
        for (int p = 0; p < P; p++) {
            const sm_summary *pp = &s->points[p];
            mi[p] = sm_method_index(pp, m0->name);
            const sm_method *mp = &pp->methods[mi[p]];
            int same = mp->ndims == m0->ndims;
            for (int i = 0; same && i < m0->ndims; i++) same = mp->shape[i] == m0->shape[i];
            if (!same) {
                mi[p] = -1;
                if (!sw->note)
                    sw->note = sm_printf("scores of point %s have another shape than point %s's",
                                         pp->point, p0->point);
            }
        }
        /* point 0's block is read once and compared with every point's */
        char pa[1200];
        snprintf(pa, sizeof pa, "%s/%s/scores", p0->base, m0->group);
        for (int64_t r0 = 0; r0 < n && !err->code; r0 += br) {
            int64_t r1 = r0 + br < n ? r0 + br : n;
            if (dset_rows(file, s->path, pa, H5T_NATIVE_FLOAT, r0, r1, a, err)) break;
            for (int64_t i = 0; i < (r1 - r0) * d; i++) den += (double)a[i] * (double)a[i];
            for (int p = 0; p < P && !err->code; p++) {
                if (mi[p] < 0) continue;
                const sm_summary *pp = &s->points[p];
                char pb[1200];
                snprintf(pb, sizeof pb, "%s/%s/scores", pp->base, pp->methods[mi[p]].group);
                if (dset_rows(file, s->path, pb, H5T_NATIVE_FLOAT, r0, r1, b, err)) break;
                row_spearman_sum(b, a, r1 - r0, d, &ssum[p], &cnt[p]);
                for (int64_t i = 0; i < (r1 - r0) * d; i++) {
                    double x = (double)b[i] - (double)a[i];
                    num[p] += x * x;
                }
            }
        }
        for (int p = 0; p < P; p++) {
            sw->spearman[p] = mi[p] >= 0 && cnt[p] ? ssum[p] / (double)cnt[p] : NAN;
            sw->rel_l2[p] = mi[p] >= 0 && den > 0 ? sqrt(num[p] / den) : NAN;
        }
        free(mi);
        free(ssum);
        free(num);
        free(cnt);
        free(a);
        free(b);
    }
    return err->code;
}

static int read_sweep(sm_summary *s, hid_t base, int light, at_err *err) {
    char **names = NULL;
    int n = dset_strings(base, s->path, "sweep/name", &names, err);
    if (n < 0) return err->code;
    if (n == 0) {
        free_strs(names, 0);
        return at_err_set(err, AT_EUSER, "%s: dataset /sweep/name is empty: a sweep without "
                          "points", s->path);
    }
    s->n_points = n;
    s->point_names = names;
    char **ds = NULL;
    int nk = list_links(base, "sweep", 2, &ds);
    s->keys = at_calloc((size_t)(nk + 1), sizeof *s->keys, "summary sweep");
    char ***cols = at_calloc((size_t)(nk + 1), sizeof *cols, "summary sweep");
    for (int k = 0; k < nk && !err->code; k++) {
        if (strcmp(ds[k], "name") == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "sweep/%s", ds[k]);
        /* the index's dimension scale /sweep/point (int64) and any other
         * non-text dataset are not swept keys */
        hid_t d = H5Dopen2(base, p, H5P_DEFAULT), t = d < 0 ? -1 : H5Dget_type(d);
        int is_text = t >= 0 && H5Tget_class(t) == H5T_STRING;
        hclose(&t);
        hclose(&d);
        if (!is_text) continue;
        char **v = NULL;
        int nv = dset_strings(base, s->path, p, &v, err);
        if (nv < 0) break;
        if (nv != n) {
            free_strs(v, nv);
            at_err_set(err, AT_EUSER, "%s: dataset /sweep/%s has %d values, /sweep/name %d",
                       s->path, ds[k], nv, n);
            break;
        }
        cols[s->n_keys] = v;
        s->keys[s->n_keys++] = sm_strdup(ds[k]);
    }
    free_strs(ds, nk);
    /* values (n_points, n_keys) take the strings over */
    s->values = at_calloc((size_t)(n * s->n_keys + 1), sizeof *s->values, "summary sweep");
    for (int k = 0; k < s->n_keys; k++) {
        for (int i = 0; i < n; i++) s->values[i * s->n_keys + k] = cols[k][i];
        free(cols[k]);
    }
    free(cols);
    if (err->code) return err->code;
    s->points = at_calloc((size_t)n, sizeof *s->points, "summary points");
    for (int p = 0; p < n && !err->code; p++) {
        sm_summary *pp = &s->points[p];
        pp->path = sm_strdup(s->path);
        pp->point = sm_strdup(names[p]);
        pp->base = sm_printf("/points/%s", names[p]);
        if (!path_exists(base, pp->base + 1)) {
            at_err_set(err, AT_EUSER, "%s: /sweep/name lists point %s but group %s is missing",
                       s->path, names[p], pp->base);
            break;
        }
        hid_t g = H5Gopen2(base, pp->base, H5P_DEFAULT);
        if (!read_root(pp, g, err)) read_plain(pp, g, light, err);
        H5Gclose(g);
    }
    if (!err->code && !s->attrib_version) s->attrib_version = s->points[0].attrib_version;
    if (!err->code && !light) sweep_compare(s, base, err);
    return err->code;
}

/* sm_read (light 0) and sm_read_light (light 1). */
static int read_file(sm_summary *s, const char *path, const char *point, int light,
                     at_err *err) {
    memset(s, 0, sizeof *s);
    s->path = sm_strdup(path);
    hid_t f = open_file(path, err);
    if (f < 0) return err->code;
    hid_t base = -1;
    if (point) {
        /* a point of a sweep: check the file is one, and that it has the point */
        sm_summary whole;
        memset(&whole, 0, sizeof whole);
        whole.path = s->path;
        if (read_root(&whole, f, err) == 0 && whole.content != SM_SWEEP)
            at_err_set(err, AT_EUSER, "%s: --point %s: the file is not a sweep (content = \"%s\"); "
                       "inspect it without --point", path, point,
                       whole.content_text ? whole.content_text : "feature attribution");
        char **names = NULL;
        int n = err->code ? 0 : dset_strings(f, path, "sweep/name", &names, err);
        int found = 0;
        for (int i = 0; i < n; i++) found |= strcmp(names[i], point) == 0;
        if (!err->code && !found) {
            char *list = sm_join((const char *const *)names, n);
            at_err_set(err, AT_EUSER, "%s: --point %s: no such point; the points are: %s", path,
                       point, list);
            free(list);
        }
        free_strs(names, n < 0 ? 0 : n);
        attrs_free(&whole.root);
        if (err->code) {
            hclose(&f);
            return err->code;
        }
        s->point = sm_strdup(point);
        s->base = sm_printf("/points/%s", point);
        base = H5Gopen2(f, s->base, H5P_DEFAULT);
        if (base < 0) {
            hclose(&f);
            return at_err_set(err, AT_EUSER, "%s: --point %s: group %s is missing", path, point,
                              s->base);
        }
    } else {
        s->base = sm_strdup("/");
        base = H5Gopen2(f, "/", H5P_DEFAULT);
    }
    if (!read_root(s, base, err)) {
        if (s->content == SM_SWEEP)
            read_sweep(s, base, light, err);
        else
            read_plain(s, base, light, err);
    }
    hclose(&base);
    hclose(&f);
    return err->code;
}

int sm_read(sm_summary *s, const char *path, const char *point, at_err *err) {
    return read_file(s, path, point, 0, err);
}

int sm_read_light(sm_summary *s, const char *path, const char *point, at_err *err) {
    return read_file(s, path, point, 1, err);
}

static void method_free(sm_method *me) {
    free(me->name);
    free(me->kind);
    free(me->group);
    attrs_free(&me->attrs);
    attrs_free(&me->loo);
    attrs_free(&me->lds);
    free(me->metric_mean);
}

void sm_free(sm_summary *s) {
    for (int m = 0; m < s->n_methods; m++) method_free(&s->methods[m]);
    free(s->methods);
    free_strs(s->metric_names, s->n_metric_names);
    free(s->agree);
    free(s->agree_kendall);
    free(s->agree_topk);
    attrs_free(&s->job);
    attrs_free(&s->timing);
    free(s->units_per_rank);
    if (s->points)
        for (int p = 0; p < s->n_points; p++) sm_free(&s->points[p]);
    free(s->points);
    if (s->values)
        for (int i = 0; i < s->n_points * s->n_keys; i++) free(s->values[i]);
    free(s->values);
    free_strs(s->keys, s->n_keys);
    free_strs(s->point_names, s->n_points);
    for (int m = 0; m < s->n_sweep_methods; m++) {
        free(s->sweep_methods[m].name);
        free(s->sweep_methods[m].spearman);
        free(s->sweep_methods[m].rel_l2);
        free(s->sweep_methods[m].note);
    }
    free(s->sweep_methods);
    attrs_free(&s->root); /* last: the shortcuts point into it */
    free(s->path);
    free(s->point);
    free(s->base);
    memset(s, 0, sizeof *s);
}

int sm_method_index(const sm_summary *s, const char *name) {
    for (int m = 0; m < s->n_methods; m++)
        if (strcmp(s->methods[m].name, name) == 0) return m;
    return -1;
}

char *sm_join(const char *const *names, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(names[i]) + 2;
    char *t = at_calloc(len, 1, "summary list");
    for (int i = 0; i < n; i++) {
        if (i) strcat(t, ", ");
        strcat(t, names[i]);
    }
    return t;
}

char *sm_method_list(const sm_summary *s) {
    const char **names = at_calloc((size_t)s->n_methods + 1, sizeof *names, "summary list");
    for (int m = 0; m < s->n_methods; m++) names[m] = s->methods[m].name;
    char *t = sm_join(names, s->n_methods);
    free(names);
    return t;
}

/* Open the file and the summary's base group. Returns 0 or err. */
static int open_base(const sm_summary *s, hid_t *f, hid_t *base, at_err *err) {
    *f = open_file(s->path, err);
    if (*f < 0) return err->code;
    *base = H5Gopen2(*f, s->base ? s->base : "/", H5P_DEFAULT);
    if (*base < 0) {
        hclose(f);
        return at_err_set(err, AT_EUSER, "%s: group %s is missing", s->path, s->base);
    }
    return 0;
}

int sm_scores_rows(const sm_summary *s, int m, int64_t r0, int64_t r1, float *out,
                   at_err *err) {
    AT_CHECK(m >= 0 && m < s->n_methods);
    char p[1024];
    snprintf(p, sizeof p, "%s/scores", s->methods[m].group);
    hid_t f, base;
    if (open_base(s, &f, &base, err)) return err->code;
    int rc = dset_rows(base, s->path, p, H5T_NATIVE_FLOAT, r0, r1, out, err);
    if (rc == 1) rc = at_err_set(err, AT_EUSER, "%s: dataset %s is missing", s->path, p);
    hclose(&base);
    hclose(&f);
    return rc;
}

static int read_any(const sm_summary *s, const char *dset, hid_t type, int64_t r0, int64_t r1,
                    void *out, at_err *err) {
    hid_t f, base;
    if (open_base(s, &f, &base, err)) return err->code;
    int rc = dset_rows(base, s->path, dset, type, r0, r1, out, err);
    hclose(&base);
    hclose(&f);
    return rc;
}

int sm_read_i64(const sm_summary *s, const char *dset, int64_t r0, int64_t r1, int64_t *out,
                at_err *err) {
    return read_any(s, dset, H5T_NATIVE_INT64, r0, r1, out, err);
}

int sm_read_f64(const sm_summary *s, const char *dset, int64_t r0, int64_t r1, double *out,
                at_err *err) {
    return read_any(s, dset, H5T_NATIVE_DOUBLE, r0, r1, out, err);
}

int sm_dataset_shape(const sm_summary *s, const char *dset, int64_t shape[SM_MAX_DIMS]) {
    at_err err = {0};
    hid_t f, base;
    if (open_base(s, &f, &base, &err)) return 0;
    int nd = dset_shape(base, dset, shape);
    hclose(&base);
    hclose(&f);
    return nd;
}

int sm_read_labels(const char *data_path, const char *split, const int64_t *rows, int n,
                   int32_t *out, at_err *err) {
    hid_t f = H5Fopen(data_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char why[256];
        unopenable(data_path, why, sizeof why);
        return at_err_set(err, AT_EUSER, "%s: cannot open the dataset file for the labels: %s",
                          data_path, why);
    }
    char p[300];
    snprintf(p, sizeof p, "%s/labels", split);
    int64_t shape[SM_MAX_DIMS] = {0};
    int nd = dset_shape(f, p, shape);
    if (nd != 1) {
        H5Fclose(f);
        return at_err_set(err, AT_EUSER, "%s: dataset /%s: expected a 1-D label array", data_path,
                          p);
    }
    for (int i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= shape[0]) {
            H5Fclose(f);
            return at_err_set(err, AT_EUSER, "%s: dataset /%s has %lld rows; row %lld is outside",
                              data_path, p, (long long)shape[0], (long long)rows[i]);
        }
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    int rc = 0;
    if (n > 0) {
        hsize_t *coord = at_malloc((size_t)n * sizeof *coord, "labels");
        for (int i = 0; i < n; i++) coord[i] = (hsize_t)rows[i];
        H5Sselect_elements(fs, H5S_SELECT_SET, (size_t)n, coord);
        hsize_t cnt = (hsize_t)n;
        hid_t ms = H5Screate_simple(1, &cnt, NULL);
        if (H5Dread(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, out) < 0)
            rc = at_err_set(err, AT_EUSER, "%s: dataset /%s: cannot read labels", data_path, p);
        H5Sclose(ms);
        free(coord);
    }
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    return rc;
}
