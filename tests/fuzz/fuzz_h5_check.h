/* fuzz_h5_check.h — what the HDF5 fuzz targets (fuzz_h5.c, fuzz_h5_raw.c)
 * do with a file once it exists: run every loader of io/h5io.c on it and
 * check what they promise (h5io.h):
 *   - each call returns 0, or AT_EUSER/AT_EIO with a message that names the
 *     file (never AT_EINTERNAL, never a crash, an abort or a sanitizer
 *     report);
 *   - h5_model_load: on success a built model whose input and class counts
 *     match its info and whose weights are all finite; on failure the model
 *     zeroed;
 *   - h5_reader_open: on success consistent info (rows >= 0, 1 or 2 feature
 *     dims whose product is n_features >= 1, 1..H5IO_MAX_CLASSES classes);
 *     reads of rows inside the split succeed or fail cleanly, into buffers
 *     of exactly the requested size (ASan sees any overrun);
 *   - h5_dataset_mean: finite means, or an error; the wrong n_features is an
 *     error, never a read past the caller's buffer;
 *   - no HDF5 identifier is left open after any call (file, group, dataset,
 *     dataspace, datatype, attribute, property list).
 * Reads are only attempted when they are small (the harness must not spend
 * minutes reading a declared 10^12-row split of fill values). */
#ifndef ATTRIB_FUZZ_H5_CHECK_H
#define ATTRIB_FUZZ_H5_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5io.h"

static const char *const FUZZ_SPLITS[] = {
    "test", "train", "", "/test", "test/images", "nope", "architecture", "state_dict"};
enum { FUZZ_N_SPLITS = sizeof FUZZ_SPLITS / sizeof FUZZ_SPLITS[0] };

static void fuzz_fail(const char *what, const char *path, const char *detail) {
    fprintf(stderr, "fuzz_h5: %s (file %s)%s%s\n", what, path, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* Open HDF5 identifiers of the kinds our code creates. */
typedef struct {
    hsize_t n[7];
} fuzz_ids;

static fuzz_ids fuzz_count_ids(void) {
    static const H5I_type_t types[7] = {H5I_FILE,     H5I_GROUP, H5I_DATASET,    H5I_DATASPACE,
                                        H5I_DATATYPE, H5I_ATTR,  H5I_GENPROP_LST};
    fuzz_ids c;
    for (int i = 0; i < 7; i++) {
        c.n[i] = 0;
        H5Inmembers(types[i], &c.n[i]);
    }
    return c;
}

static void fuzz_check_ids(const fuzz_ids *before, const char *call, const char *path) {
    static const char *const names[7] = {"file",     "group",     "dataset",      "dataspace",
                                         "datatype", "attribute", "property list"};
    fuzz_ids now = fuzz_count_ids();
    for (int i = 0; i < 7; i++)
        if (now.n[i] != before->n[i]) {
            char d[160];
            snprintf(d, sizeof d, "%s: %llu %s identifier(s) before, %llu after", call,
                     (unsigned long long)before->n[i], names[i], (unsigned long long)now.n[i]);
            fuzz_fail("HDF5 identifier leak", path, d);
        }
}

/* FUZZ_H5_VERBOSE=1: say what each loader returned. */
static void fuzz_say(const char *call, int rc, const at_err *e) {
    static int v = -1;
    if (v < 0) v = getenv("FUZZ_H5_VERBOSE") && strcmp(getenv("FUZZ_H5_VERBOSE"), "0") != 0;
    if (v) fprintf(stderr, "  %s -> %d%s%s\n", call, rc, rc ? ": " : "", rc ? e->msg : "");
}

/* rc/err of a failed call: a user or I/O error with a message naming path. */
static void fuzz_check_error(int rc, const at_err *e, const char *call, const char *path) {
    char d[AT_ERR_MSG + 64];
    snprintf(d, sizeof d, "%s returned %d: %s", call, rc, e->msg);
    if (rc != AT_EUSER && rc != AT_EIO) fuzz_fail("unexpected error code", path, d);
    if (e->code != rc) fuzz_fail("error record code differs from the return code", path, d);
    if (!e->msg[0]) fuzz_fail("error without a message", path, d);
    if (!strstr(e->msg, path)) fuzz_fail("error message does not name the file", path, d);
}

static void fuzz_check_model(const char *path) {
    eng_model m;
    h5_model_info info;
    at_err e = {0};
    fuzz_ids ids = fuzz_count_ids();
    int rc = h5_model_load(path, &m, &info, &e);
    fuzz_say("h5_model_load", rc, &e);
    fuzz_check_ids(&ids, "h5_model_load", path);
    if (rc != 0) {
        fuzz_check_error(rc, &e, "h5_model_load", path);
        const unsigned char *b = (const unsigned char *)&m;
        for (size_t i = 0; i < sizeof m; i++)
            if (b[i]) fuzz_fail("model not zeroed after a failed load", path, e.msg);
        return;
    }
    int64_t D = 1;
    for (int i = 0; i < info.n_input_dims; i++) D *= info.input_shape[i];
    if (m.n_layers < 1 || !m.params || m.in_features != D || m.out_features != info.n_classes ||
        strlen(info.sha256) != 64)
        fuzz_fail("loaded model inconsistent with its info", path, NULL);
    for (size_t i = 0; i < m.n_params; i++)
        if (!isfinite(m.params[i])) fuzz_fail("loaded model has a non-finite weight", path, NULL);
    eng_model_free(&m);
}

static void fuzz_check_reader(const char *path, const char *split, unsigned pick) {
    h5_reader *r = NULL;
    h5_dataset_info info;
    at_err e = {0};
    fuzz_ids ids = fuzz_count_ids();
    int rc = h5_reader_open(&r, path, split, &info, &e);
    fuzz_say(split, rc, &e);
    if (rc != 0) {
        fuzz_check_ids(&ids, "h5_reader_open", path);
        fuzz_check_error(rc, &e, "h5_reader_open", path);
        if (r) fuzz_fail("h5_reader_open failed but returned a reader", path, e.msg);
        return;
    }
    int64_t prod = 1;
    for (int i = 0; i < info.n_feat_dims; i++) prod *= info.feat_shape[i];
    if (!r || info.n_rows < 0 || info.n_feat_dims < 1 || info.n_feat_dims > 2 ||
        info.n_features < 1 || prod != info.n_features || info.n_classes < 1 ||
        info.n_classes > H5IO_MAX_CLASSES)
        fuzz_fail("h5_reader_open: inconsistent dataset info", path, NULL);
    /* a few rows, sized exactly */
    int64_t n = info.n_rows, D = info.n_features;
    if (n > 0 && D <= (1 << 20)) {
        int64_t r0 = (int64_t)(pick % 7) % n, r1 = r0 + 1 + (int64_t)(pick / 7 % 4);
        if (r1 > n) r1 = n;
        if ((r1 - r0) * D <= (1 << 20)) {
            float *x = malloc((size_t)((r1 - r0) * D) * sizeof *x);
            int32_t *y = malloc((size_t)(r1 - r0) * sizeof *y);
            at_err e2 = {0};
            rc = h5_reader_read(r, r0, r1, x, y, &e2);
            fuzz_say("h5_reader_read", rc, &e2);
            if (rc) fuzz_check_error(rc, &e2, "h5_reader_read", path);
            free(y);
            free(x);
        }
    }
    h5_reader_close(r);
    fuzz_check_ids(&ids, "h5_reader_open/read/close", path);

    /* the mean over the split, with the right and a wrong feature count */
    if (n <= (1 << 16) && D <= (1 << 16) && n * D <= (1 << 22)) {
        for (int wrong = 0; wrong < 2; wrong++) {
            int64_t nf = D + wrong;
            double *mean = malloc((size_t)nf * sizeof *mean);
            at_err e3 = {0};
            rc = h5_dataset_mean(path, split, mean, nf, &e3);
            fuzz_say(wrong ? "h5_dataset_mean (wrong D)" : "h5_dataset_mean", rc, &e3);
            fuzz_check_ids(&ids, "h5_dataset_mean", path);
            if (rc) {
                fuzz_check_error(rc, &e3, "h5_dataset_mean", path);
            } else {
                if (wrong) fuzz_fail("h5_dataset_mean accepted a wrong feature count", path, NULL);
                for (int64_t j = 0; j < nf; j++)
                    if (!isfinite(mean[j]))
                        fuzz_fail("h5_dataset_mean: non-finite mean", path, NULL);
            }
            free(mean);
        }
    }
}

static void fuzz_check_class_names(const char *path) {
    char *names[8];
    fuzz_ids ids = fuzz_count_ids();
    int n = h5_dataset_class_names(path, names, 8);
    fuzz_check_ids(&ids, "h5_dataset_class_names", path);
    if (n < 0 || n > 8) fuzz_fail("h5_dataset_class_names: count out of range", path, NULL);
    for (int i = 0; i < n; i++) free(names[i]);
}

/* Every loader on path; pick chooses the split and the rows read. */
static void fuzz_check_file(const char *path, unsigned pick) {
    static int quiet = 0;
    if (!quiet) {
        h5io_quiet();
        quiet = 1;
    }
    fuzz_check_model(path);
    fuzz_check_reader(path, FUZZ_SPLITS[pick % FUZZ_N_SPLITS], pick / FUZZ_N_SPLITS);
    fuzz_check_class_names(path);
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
        fuzz_fail("an HDF5 file or object is still open after the loaders", path, NULL);
}

/* A per-process scratch file in /dev/shm (or $TMPDIR, /tmp). */
static const char *fuzz_scratch_path(void) {
    static char path[512];
    if (!path[0]) {
        const char *dir = "/dev/shm";
        FILE *probe = NULL;
        char test[512];
        snprintf(test, sizeof test, "%s/attrib-fuzz-probe-%ld", dir, (long)getpid());
        if ((probe = fopen(test, "wb")) != NULL) {
            fclose(probe);
            remove(test);
        } else {
            dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        }
        snprintf(path, sizeof path, "%s/attrib-fuzz-%ld.h5", dir, (long)getpid());
    }
    return path;
}

#endif
