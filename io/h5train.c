/* h5train.c — checkpoint files and dataset files from memory. See h5train.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5train.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "h5io.h"
#include "h5shard.h"
#include "h5util.h"

#define CKPT_FORMAT "attrib-checkpoints"
#define CKPT_VERSION 1

/* A 1-D attribute of n strings. */
static int attr_strs(hid_t obj, const char *name, const char *const *v, int n) {
    hid_t t = h5u_str_type();
    int rc = h5u_attr_vec(obj, name, t, n, v);
    h5u_close(&t);
    return rc;
}

/* Creation property lists without modification times, so that the same
 * content gives the same bytes. */
static hid_t dcpl_untimed(void) {
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(p, 0);
    return p;
}

static hid_t group_new(hid_t loc, const char *name) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(p, 0);
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, p, H5P_DEFAULT);
    H5Pclose(p);
    return g;
}

/* A 1-D contiguous dataset of n elements. */
static int write_1d(hid_t loc, const char *name, hid_t type, int64_t n, const void *data) {
    hsize_t d = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &d, NULL), dcpl = dcpl_untimed();
    hid_t ds = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = ds < 0 || (n > 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0);
    h5u_close(&ds);
    h5u_close(&dcpl);
    h5u_close(&s);
    return rc ? -1 : 0;
}

/* ----------------------------------------------------------- checkpoints */

struct h5_ckpt_writer {
    char *path, *tmp;
    char *arch, *job_yaml;
    uint64_t seed;
    int in_ndim;
    int64_t in_shape[ENG_MAX_DIMS];
    int64_t n_classes;
    int k, cap;
    int32_t *epochs;         /* (cap) */
    double *lr, *loss, *acc; /* (cap) */
};

h5_ckpt_writer *h5_ckpt_writer_new(const char *path, const eng_model *m, uint64_t seed,
                                   const char *job_yaml) {
    AT_CHECK(path && path[0] && m);
    h5_ckpt_writer *w = at_calloc(1, sizeof *w, "checkpoint writer");
    w->path = at_strdup(path, "checkpoint path");
    w->tmp = h5u_tmp_path(path);
    w->arch = arch_emit(m);
    w->job_yaml = at_strdup(job_yaml ? job_yaml : "", "checkpoint job");
    w->seed = seed;
    w->in_ndim = m->in_ndim;
    for (int d = 0; d < m->in_ndim; d++) w->in_shape[d] = m->in_shape[d];
    w->n_classes = m->out_features;
    return w;
}

int h5_ckpt_writer_count(const h5_ckpt_writer *w) { return w->k; }

void h5_ckpt_writer_free(h5_ckpt_writer *w) {
    if (!w) return;
    free(w->path);
    free(w->tmp);
    free(w->arch);
    free(w->job_yaml);
    free(w->epochs);
    free(w->lr);
    free(w->loss);
    free(w->acc);
    free(w);
}

/* /checkpoints/<k>: attrs and the state dict of m. */
static int write_state(hid_t group, const char *path, int k, const eng_model *m, int epoch,
                       double lr, at_err *err) {
    char name[32];
    snprintf(name, sizeof name, "%d", k);
    hid_t g = group_new(group, name);
    hid_t sd = g < 0 ? -1 : group_new(g, "state_dict");
    char sha[65];
    h5_model_hash(m, sha);
    int32_t ep = epoch;
    int rc = 0;
    if (sd < 0 || h5u_attr_scalar(g, "epoch", H5T_NATIVE_INT32, &ep) < 0 ||
        h5u_attr_scalar(g, "lr", H5T_NATIVE_DOUBLE, &lr) < 0 || h5u_attr_str(g, "content_sha256", sha) < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot create /checkpoints/%d", path, k);
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (strchr(T->name, '/') || !strcmp(T->name, ".") || !T->name[0]) {
            rc = at_err_set(err, AT_EUSER,
                            "%s: tensor name '%s' cannot be an HDF5 dataset "
                            "name",
                            path, T->name);
            break;
        }
        hsize_t dims[4];
        for (int d = 0; d < T->ndim; d++) dims[d] = (hsize_t)T->shape[d];
        hid_t s = T->ndim ? H5Screate_simple(T->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
        hid_t dcpl = dcpl_untimed();
        hid_t ds = H5Dcreate2(sd, T->name, H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        h5u_close(&dcpl);
        if (ds < 0 || (T->numel && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                            m->params + T->off) < 0))
            rc = at_err_set(err, AT_EIO, "%s: cannot write /checkpoints/%d/state_dict/%s", path, k,
                            T->name);
        h5u_close(&ds);
        h5u_close(&s);
    }
    h5u_close(&sd);
    h5u_close(&g);
    return rc;
}

/* Build w->tmp holding checkpoints 0..w->k (the last one from m). */
static int build_file(h5_ckpt_writer *w, const eng_model *m, at_err *err) {
    const int K = w->k + 1;
    hid_t f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), prev = -1, g = -1;
    if (f < 0) return at_err_set(err, AT_EIO, "%s: cannot create %s", w->path, w->tmp);
    int rc = 0;
    int64_t version = CKPT_VERSION, nc = w->n_classes;
    if (h5u_attr_str(f, "format", CKPT_FORMAT) < 0 ||
        h5u_attr_scalar(f, "format_version", H5T_NATIVE_INT64, &version) < 0 ||
        h5u_attr_str(f, "architecture", w->arch) < 0 ||
        h5u_attr_vec(f, "input_shape", H5T_NATIVE_INT64, w->in_ndim, w->in_shape) < 0 ||
        h5u_attr_scalar(f, "n_classes", H5T_NATIVE_INT64, &nc) < 0 ||
        h5u_attr_scalar(f, "seed", H5T_NATIVE_UINT64, &w->seed) < 0 ||
        h5u_attr_str(f, "job_yaml", w->job_yaml) < 0 ||
        h5u_attr_str(f, "attrib_version", ATTRIB_VERSION) < 0 ||
        write_1d(f, "epochs", H5T_NATIVE_INT32, K, w->epochs) < 0 ||
        write_1d(f, "lr", H5T_NATIVE_DOUBLE, K, w->lr) < 0 ||
        write_1d(f, "train_loss", H5T_NATIVE_DOUBLE, K, w->loss) < 0 ||
        write_1d(f, "train_acc", H5T_NATIVE_DOUBLE, K, w->acc) < 0 ||
        (g = group_new(f, "checkpoints")) < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot write the root attributes and arrays of %s",
                        w->path, w->tmp);
    if (!rc && w->k > 0) {
        prev = H5Fopen(w->path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (prev < 0)
            rc = at_err_set(err, AT_EIO,
                            "%s: cannot reopen the checkpoint file to copy its "
                            "%d earlier checkpoints (was it removed?)",
                            w->path, w->k);
    }
    for (int i = 0; i < w->k && !rc; i++) {
        char src[48], dst[32];
        snprintf(src, sizeof src, "/checkpoints/%d", i);
        snprintf(dst, sizeof dst, "%d", i);
        if (H5Lexists(prev, src, H5P_DEFAULT) <= 0 ||
            H5Ocopy(prev, src, g, dst, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = at_err_set(err, AT_EIO, "%s: cannot copy %s into %s", w->path, src, w->tmp);
    }
    h5u_close(&prev);
    if (!rc) rc = write_state(g, w->path, w->k, m, w->epochs[w->k], w->lr[w->k], err);
    h5u_close(&g);
    int crc = h5u_close_written(&f, w->tmp, err);
    return rc ? rc : crc;
}

int h5_ckpt_writer_add(h5_ckpt_writer *w, const eng_model *m, int epoch, double lr,
                       double train_loss, double train_acc, at_err *err) {
    AT_CHECK(w && m && (size_t)m->out_features == (size_t)w->n_classes);
    if (w->k == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->epochs = realloc(w->epochs, (size_t)w->cap * sizeof *w->epochs);
        w->lr = realloc(w->lr, (size_t)w->cap * sizeof *w->lr);
        w->loss = realloc(w->loss, (size_t)w->cap * sizeof *w->loss);
        w->acc = realloc(w->acc, (size_t)w->cap * sizeof *w->acc);
        AT_CHECK(w->epochs && w->lr && w->loss && w->acc);
    }
    w->epochs[w->k] = epoch;
    w->lr[w->k] = lr;
    w->loss[w->k] = train_loss;
    w->acc[w->k] = train_acc;
    int rc = w->k == 0 ? h5u_mkdir_parents(w->path, err) : 0;
    if (!rc) rc = build_file(w, m, err);
    if (!rc) rc = h5_file_commit(w->tmp, w->path, err);
    if (rc) {
        unlink(w->tmp);
        return rc;
    }
    w->k++;
    return 0;
}

/* Open a checkpoint file and check format and version. */
static int ckpt_open(const char *path, hid_t *f, at_err *err) {
    struct stat st;
    *f = -1;
    if (stat(path, &st) != 0)
        return at_err_set(err, AT_EUSER, "%s: cannot open checkpoint file: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode) || H5Fis_hdf5(path) <= 0)
        return at_err_set(err, AT_EUSER,
                          "%s: not an HDF5 file (expected an attrib "
                          "checkpoint file)",
                          path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0)
        return at_err_set(err, AT_EUSER, "%s: HDF5 cannot open it (truncated or corrupt?)", path);
    char *fmt = NULL;
    int64_t version = 0;
    int rc = 0;
    if (h5u_attr_read_str(*f, "format", &fmt) != 1 || strcmp(fmt, CKPT_FORMAT) != 0)
        rc = at_err_set(err, AT_EUSER,
                        "%s: not an attrib checkpoint file (root attribute "
                        "format = '%s', expected '%s')",
                        path, fmt ? fmt : "(none)", CKPT_FORMAT);
    else if (h5u_attr_read_i64s(*f, "format_version", &version, 1) != 1 || version != CKPT_VERSION)
        rc = at_err_set(err, AT_EUSER,
                        "%s: checkpoint format_version %lld is not supported "
                        "(this attrib reads version %d)",
                        path, (long long)version, CKPT_VERSION);
    free(fmt);
    if (rc) h5u_close(f);
    return rc;
}

/* K from /epochs, checking the four per-checkpoint arrays agree. */
static int ckpt_len(hid_t f, const char *path, int *K, at_err *err) {
    static const char *const names[4] = {"epochs", "lr", "train_loss", "train_acc"};
    hssize_t n0 = -1;
    for (int i = 0; i < 4; i++) {
        hid_t d = H5Lexists(f, names[i], H5P_DEFAULT) > 0 ? H5Dopen2(f, names[i], H5P_DEFAULT) : -1;
        hid_t s = d < 0 ? -1 : H5Dget_space(d);
        hssize_t n =
            s < 0 || H5Sget_simple_extent_ndims(s) != 1 ? -1 : H5Sget_simple_extent_npoints(s);
        h5u_close(&s);
        h5u_close(&d);
        if (n < 0 || n > (1 << 24))
            return at_err_set(err, AT_EUSER, "%s: no 1-D dataset /%s", path, names[i]);
        if (i == 0) n0 = n;
        if (n != n0)
            return at_err_set(err, AT_EUSER, "%s: /%s has %lld entries, /epochs has %lld", path,
                              names[i], (long long)n, (long long)n0);
    }
    *K = (int)n0;
    return 0;
}

int h5_ckpt_count(const char *path, int *K, at_err *err) {
    AT_CHECK(path && K);
    hid_t f;
    int rc = ckpt_open(path, &f, err);
    if (!rc) rc = ckpt_len(f, path, K, err);
    h5u_close(&f);
    return rc;
}

int h5_ckpt_find_epoch(const char *path, int epoch, int *k, at_err *err) {
    AT_CHECK(path && k);
    hid_t f, d = -1;
    int K = 0, rc = ckpt_open(path, &f, err);
    if (!rc) rc = ckpt_len(f, path, &K, err);
    if (rc) {
        h5u_close(&f);
        return rc;
    }
    int32_t *ep = at_malloc((size_t)(K ? K : 1) * sizeof *ep, "checkpoint epochs");
    if ((d = H5Dopen2(f, "epochs", H5P_DEFAULT)) < 0 ||
        H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ep) < 0)
        rc = at_err_set(err, AT_EUSER, "%s: cannot read /epochs", path);
    *k = -1;
    for (int i = 0; !rc && i < K && *k < 0; i++)
        if (ep[i] == epoch) *k = i;
    if (!rc && *k < 0) {
        char list[256] = "";
        for (int i = 0; i < K && strlen(list) < sizeof list - 16; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? ", " : "",
                     (int)ep[i]);
        rc = at_err_set(err, AT_EUSER, "%s: no checkpoint of epoch %d (it holds epochs: %s)",
                        path, epoch, K ? list : "none");
    }
    h5u_close(&d);
    h5u_close(&f);
    free(ep);
    return rc;
}

/* Line number (1-based) where two texts first differ, and that line of each. */
static int first_diff_line(const char *a, const char *b, char *la, char *lb, size_t cap) {
    int line = 1;
    for (;;) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t na = ea ? (size_t)(ea - a) : strlen(a), nb = eb ? (size_t)(eb - b) : strlen(b);
        if (na != nb || memcmp(a, b, na) != 0 || !ea != !eb) {
            snprintf(la, cap, "%.*s", (int)na, a);
            snprintf(lb, cap, "%.*s", (int)nb, b);
            return line;
        }
        if (!ea) return 0;
        a = ea + 1;
        b = eb + 1;
        line++;
    }
}

static int count_links_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g;
    (void)name;
    (void)info;
    (*(int *)op)++;
    return 0;
}

int h5_ckpt_load(const char *path, int k, eng_model *m, int *epoch, double *lr, at_err *err) {
    AT_CHECK(path && m && m->params);
    hid_t f = -1, sd = -1, g = -1;
    char *arch = NULL, *want = NULL, *sha = NULL;
    int32_t *epochs = NULL;
    double *lrs = NULL;
    int K = 0, rc = ckpt_open(path, &f, err);
    if (!rc) rc = ckpt_len(f, path, &K, err);
    if (rc) goto done;
    want = arch_emit(m);
    if (h5u_attr_read_str(f, "architecture", &arch) != 1) {
        rc = at_err_set(err, AT_EUSER, "%s: no string attribute 'architecture'", path);
        goto done;
    }
    char la[160], lb[160];
    int line = first_diff_line(arch, want, la, lb, sizeof la);
    if (line) {
        rc = at_err_set(err, AT_EUSER,
                        "%s: the checkpoints are of another architecture "
                        "than the model: line %d is '%s' in the file, '%s' in the model",
                        path, line, la, lb);
        goto done;
    }
    int64_t shape[ENG_MAX_DIMS + 1];
    int nd = h5u_attr_read_i64s(f, "input_shape", shape, ENG_MAX_DIMS + 1);
    int same = nd == m->in_ndim;
    for (int d = 0; same && d < nd; d++) same = shape[d] == m->in_shape[d];
    if (!same) {
        char s[64];
        eng_shape_text(m->in_shape, m->in_ndim, s, sizeof s);
        rc = at_err_set(err, AT_EUSER, "%s: attribute input_shape is not the model's %s", path, s);
        goto done;
    }
    if (k < 0 || k >= K) {
        rc = at_err_set(err, AT_EUSER, "%s: no checkpoint %d (the file holds %d: 0..%d)", path, k,
                        K, K - 1);
        goto done;
    }
    char gname[64];
    snprintf(gname, sizeof gname, "/checkpoints/%d/state_dict", k);
    if (H5Lexists(f, "/checkpoints", H5P_DEFAULT) <= 0 || H5Lexists(f, gname, H5P_DEFAULT) <= 0 ||
        (sd = H5Gopen2(f, gname, H5P_DEFAULT)) < 0) {
        rc = at_err_set(err, AT_EUSER, "%s: no group %s", path, gname);
        goto done;
    }
    int n_links = 0;
    H5Literate(sd, H5_INDEX_NAME, H5_ITER_INC, NULL, count_links_cb, &n_links);
    for (int t = 0; t < m->n_tensors && !rc; t++) {
        const eng_tensor *T = &m->tensors[t];
        hid_t d = -1, s = -1, ty = -1;
        hsize_t dims[8];
        int r = -1;
        if (H5Lexists(sd, T->name, H5P_DEFAULT) > 0 &&
            (d = H5Dopen2(sd, T->name, H5P_DEFAULT)) >= 0) {
            s = H5Dget_space(d);
            ty = H5Dget_type(d);
            r = H5Sget_simple_extent_ndims(s);
            if (r >= 0 && r <= 8) H5Sget_simple_extent_dims(s, dims, NULL);
        }
        int ok = d >= 0 && H5Tget_class(ty) == H5T_FLOAT && H5Tget_size(ty) <= 8 && r == T->ndim;
        for (int i = 0; ok && i < r; i++) ok = dims[i] == (hsize_t)T->shape[i];
        if (d < 0) {
            rc = at_err_set(err, AT_EUSER, "%s: no dataset %s/%s (tensor of layer '%s')", path,
                            gname, T->name, m->layers[T->layer].name);
        } else if (!ok) {
            char ws[96] = "(", fs[96] = "(";
            for (int i = 0; i < T->ndim; i++)
                snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", i ? ", " : "",
                         (long long)T->shape[i]);
            for (int i = 0; i < r && r <= 8; i++)
                snprintf(fs + strlen(fs), sizeof fs - strlen(fs), "%s%llu", i ? ", " : "",
                         (unsigned long long)dims[i]);
            strcat(ws, ")");
            strcat(fs, ")");
            rc = at_err_set(err, AT_EUSER, "%s: dataset %s/%s: expected float32 %s, found %s%s",
                            path, gname, T->name, ws,
                            d >= 0 && H5Tget_class(ty) == H5T_FLOAT ? "float " : "non-float ", fs);
        } else if (T->numel && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                       m->params + T->off) < 0) {
            rc = at_err_set(err, AT_EUSER, "%s: cannot read dataset %s/%s", path, gname, T->name);
        }
        for (size_t i = 0; !rc && i < T->numel; i++)
            if (!isfinite(m->params[T->off + i]))
                rc = at_err_set(err, AT_EUSER,
                                "%s: dataset %s/%s holds a non-finite value "
                                "at element %zu",
                                path, gname, T->name, i);
        h5u_close(&ty);
        h5u_close(&s);
        h5u_close(&d);
    }
    if (!rc && n_links != m->n_tensors)
        rc = at_err_set(err, AT_EUSER, "%s: %s holds %d datasets, the model has %d tensors", path,
                        gname, n_links, m->n_tensors);
    if (rc) goto done;
    snprintf(gname, sizeof gname, "/checkpoints/%d", k);
    g = H5Gopen2(f, gname, H5P_DEFAULT);
    char have[65];
    h5_model_hash(m, have);
    if (g < 0 || h5u_attr_read_str(g, "content_sha256", &sha) != 1 || strcmp(sha, have) != 0) {
        rc = at_err_set(err, AT_EUSER,
                        "%s: %s: content_sha256 %s does not match its "
                        "parameters (%s): the file is damaged",
                        path, gname, sha ? sha : "(missing)", have);
        goto done;
    }
    epochs = at_malloc((size_t)K * sizeof *epochs, "checkpoint epochs");
    lrs = at_malloc((size_t)K * sizeof *lrs, "checkpoint lrs");
    hid_t de = H5Dopen2(f, "epochs", H5P_DEFAULT), dl = H5Dopen2(f, "lr", H5P_DEFAULT);
    if (de < 0 || dl < 0 ||
        H5Dread(de, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, epochs) < 0 ||
        H5Dread(dl, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lrs) < 0)
        rc = at_err_set(err, AT_EUSER, "%s: cannot read /epochs and /lr", path);
    h5u_close(&de);
    h5u_close(&dl);
    if (!rc && epoch) *epoch = epochs[k];
    if (!rc && lr) *lr = lrs[k];
done:
    h5u_close(&g);
    h5u_close(&sd);
    h5u_close(&f);
    free(arch);
    free(want);
    free(sha);
    free(epochs);
    free(lrs);
    return rc;
}

/* ------------------------------------------------------- dataset files */

static hid_t elem_type(h5_elem_type t) {
    switch (t) {
    case H5_ELEM_U8:
        return H5T_NATIVE_UINT8;
    case H5_ELEM_I32:
        return H5T_NATIVE_INT32;
    case H5_ELEM_F32:
        return H5T_NATIVE_FLOAT;
    }
    AT_CHECK(!"unknown element type");
    return -1;
}

static size_t elem_size(h5_elem_type t) { return t == H5_ELEM_U8 ? 1 : 4; }

/* /<split>/<name> (n, dims...) written whole, chunked by about 1 MiB of
 * rows, shuffle+deflate 4 (contiguous when n = 0). */
static int write_rows(hid_t g, const char *name, hid_t type, size_t esize, int64_t n, int n_dims,
                      const int64_t *dims, const void *data, const char *description) {
    hsize_t d[4], c[4];
    size_t row = esize;
    d[0] = (hsize_t)n;
    for (int i = 0; i < n_dims; i++) {
        d[1 + i] = c[1 + i] = (hsize_t)dims[i];
        row *= (size_t)dims[i];
    }
    hsize_t rows = row ? ((size_t)1 << 20) / row : 1;
    c[0] = rows < 1 ? 1 : rows > (hsize_t)n ? (hsize_t)n : rows;
    hid_t s = H5Screate_simple(1 + n_dims, d, NULL);
    hid_t dcpl = dcpl_untimed();
    if (n > 0 && row > 0) {
        H5Pset_chunk(dcpl, 1 + n_dims, c);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t ds = H5Dcreate2(g, name, type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = ds < 0 ||
             (n > 0 && row > 0 && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) ||
             (description && h5u_attr_str(ds, "description", description) < 0);
    h5u_close(&ds);
    h5u_close(&dcpl);
    h5u_close(&s);
    return rc ? -1 : 0;
}

int h5_dataset_write(const char *path, const char *source, const char *const *class_names,
                     int n_classes, const h5_split_data *splits, int n_splits, at_err *err) {
    AT_CHECK(path && source && class_names && n_classes >= 1 && splits && n_splits >= 1);
    for (int i = 0; i < n_splits; i++) {
        const h5_split_data *sp = &splits[i];
        AT_CHECK(sp->name && sp->name[0] && !strchr(sp->name, '/') && sp->n_rows >= 0);
        AT_CHECK((sp->n_dims == 1 || sp->n_dims == 2) &&
                 (sp->n_rows == 0 || (sp->images && sp->labels)));
        for (int64_t r = 0; r < sp->n_rows; r++)
            AT_CHECK(sp->labels[r] >= 0 && sp->labels[r] < n_classes);
        for (int e = 0; e < sp->n_extra; e++)
            AT_CHECK(sp->extra[e].n_dims >= 0 && sp->extra[e].n_dims <= 3);
    }
    char *tmp;
    hid_t f = h5u_create_tmp(path, &tmp, err);
    if (f < 0) {
        free(tmp);
        return err->code;
    }
    int rc = 0;
    int32_t version = 1;
    if (h5u_attr_str(f, "format", "attrib-dataset") < 0 ||
        h5u_attr_scalar(f, "format_version", H5T_NATIVE_INT32, &version) < 0 ||
        h5u_attr_str(f, "source", source) < 0 ||
        attr_strs(f, "class_names", class_names, n_classes) < 0 ||
        h5u_attr_str(f, "attrib_version", ATTRIB_VERSION) < 0)
        rc = at_err_set(err, AT_EIO, "%s: cannot write root attributes", path);
    for (int i = 0; i < n_splits && !rc; i++) {
        const h5_split_data *sp = &splits[i];
        hid_t g = group_new(f, sp->name);
        const char *bad = NULL;
        if (g < 0)
            bad = "";
        else if (write_rows(g, "images", H5T_NATIVE_FLOAT, 4, sp->n_rows, sp->n_dims, sp->dims,
                            sp->images, sp->images_description) < 0)
            bad = "images";
        else if (write_rows(g, "labels", H5T_NATIVE_INT32, 4, sp->n_rows, 0, NULL, sp->labels,
                            sp->labels_description) < 0)
            bad = "labels";
        for (int e = 0; e < sp->n_extra && !bad; e++) {
            const h5_split_extra *x = &sp->extra[e];
            if (write_rows(g, x->name, elem_type(x->type), elem_size(x->type), sp->n_rows,
                           x->n_dims, x->dims, x->data, x->description) < 0)
                bad = x->name;
        }
        if (bad)
            rc = at_err_set(err, AT_EIO, "%s: cannot write /%s%s%s", path, sp->name,
                            bad[0] ? "/" : "", bad);
        h5u_close(&g);
    }
    int crc = h5u_close_written(&f, path, err);
    if (!rc) rc = crc;
    if (!rc) rc = h5_file_commit(tmp, path, err);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}
