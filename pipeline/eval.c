/* eval.c — `attrib eval` (accuracy and loss of a model on a split) and
 * `attrib import` (dataset conversion). Both run in one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "pipeline.h"

static int parse_rows(const char *s, int64_t *r0, int64_t *r1) {
    char *end;
    *r0 = 0;
    *r1 = -1;
    const char *colon = strchr(s, ':');
    if (!colon) return -1;
    if (colon != s) {
        *r0 = strtoll(s, &end, 10);
        if (end != colon || *r0 < 0) return -1;
    }
    if (colon[1]) {
        *r1 = strtoll(colon + 1, &end, 10);
        if (*end || *r1 <= *r0) return -1;
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *split = "test", *out = NULL, *rows = NULL;
    at_err err = {0};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        const char **dst = NULL;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            printf("usage: attrib eval --model M.h5 --data D.h5 [--split test] [--rows A:B] [-o LOGITS.h5]\n"
                   "Prints the accuracy and mean cross-entropy of the model on the split; with -o\n"
                   "writes the logits (docs/format.md) to compare against another framework.\n");
            return 0;
        }
        if (strcmp(s, "--model") == 0) dst = &model;
        else if (strcmp(s, "--data") == 0) dst = &data;
        else if (strcmp(s, "--split") == 0) dst = &split;
        else if (strcmp(s, "--rows") == 0) dst = &rows;
        else if (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) dst = &out;
        if (!dst) {
            at_err_set(&err, AT_EUSER, "eval: unknown argument '%s' (see attrib eval --help)", s);
            break;
        }
        if (i + 1 >= argc) {
            at_err_set(&err, AT_EUSER, "eval: %s needs a value", s);
            break;
        }
        *dst = argv[++i];
    }
    if (!err.code && (!model || !data))
        at_err_set(&err, AT_EUSER, "eval: --model and --data are required (see attrib eval --help)");
    int64_t r0 = 0, r1 = -1;
    if (!err.code && rows && parse_rows(rows, &r0, &r1))
        at_err_set(&err, AT_EUSER, "eval: --rows %s: expected A:B with 0 <= A < B (either may be omitted)", rows);
    if (err.code) {
        cli_error(&err);
        return err.code;
    }

    eng_model m = {0};
    h5_model_info mi;
    h5_reader *rd = NULL;
    h5_dataset_info info;
    float *x = NULL, *logits = NULL;
    int32_t *y = NULL;
    eng_workspace ws = {0};
    eng_set_threads(1);
    if (h5_model_load(model, &m, &mi, &err)) goto out;
    if (h5_reader_open(&rd, data, split, &info, &err)) goto out;
    if (m.in_features != info.n_features) {
        at_err_set(&err, AT_EUSER, "model %s takes %d input features but %s split '%s' has %lld",
                   model, m.in_features, data, split, (long long)info.n_features);
        goto out;
    }
    if (r1 < 0) r1 = info.n_rows;
    if (r0 >= info.n_rows || r1 > info.n_rows) {
        at_err_set(&err, AT_EUSER, "eval: --rows %lld:%lld outside split '%s' (%lld rows)",
                   (long long)r0, (long long)r1, split, (long long)info.n_rows);
        goto out;
    }
    int64_t n = r1 - r0;
    x = at_malloc((size_t)n * info.n_features * sizeof(float), "eval images");
    y = at_malloc((size_t)n * sizeof(int32_t), "eval labels");
    logits = at_malloc((size_t)n * m.out_features * sizeof(float), "eval logits");
    if (h5_reader_read(rd, r0, r1, x, y, &err)) goto out;
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m.out_features) {
            at_err_set(&err, AT_EUSER, "%s: /%s/labels[%lld] = %d is not a class of the model (0..%d)",
                       data, split, (long long)(r0 + i), y[i], m.out_features - 1);
            goto out;
        }
    at_err e2 = {0};
    if (eng_model_check_input(&m, x, n, &e2)) {
        at_err_set(&err, AT_EUSER, "%s split '%s' (rows from %lld): %s", data, split,
                   (long long)r0, e2.msg);
        goto out;
    }
    eng_workspace_init(&ws, &m, 1024, ENG_F32);
    double loss, acc;
    eng_evaluate(&m, &ws, x, y, (int)n, &loss, &acc, logits);
    printf("model %s (sha256 %.12s…) on %s split '%s' rows %lld:%lld: accuracy %.2f%%, "
           "mean cross-entropy %.4f\n",
           model, mi.sha256, data, split, (long long)r0, (long long)r1, 100 * acc, loss);
    if (out && h5_write_logits(out, logits, y, r0, n, m.out_features, &err) == 0)
        printf("wrote logits to %s\n", out);
out:
    if (err.code) cli_error(&err);
    if (rd) h5_reader_close(rd);
    if (ws.acts) eng_workspace_free(&ws);
    eng_model_free(&m);
    free(x); free(y); free(logits);
    return err.code;
}

int cmd_import(int argc, char **argv) {
    const char *what = NULL, *out = NULL, *from = "/usr/share/datasets/fashion-mnist";
    at_err err = {0};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: attrib import fashion-mnist --out D.h5 [--from DIR]\n"
                   "Converts the idx files of Debian's dataset-fashion-mnist (default DIR\n"
                   "/usr/share/datasets/fashion-mnist) into an attrib dataset: /train and /test\n"
                   "splits, float32 images in [0,1], int32 labels.\n");
            return 0;
        } else if (strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "-o") == 0) {
            if (i + 1 < argc) out = argv[++i];
        } else if (strcmp(argv[i], "--from") == 0) {
            if (i + 1 < argc) from = argv[++i];
        } else if (!what) {
            what = argv[i];
        } else {
            at_err_set(&err, AT_EUSER, "import: unexpected argument '%s'", argv[i]);
        }
    }
    if (!err.code && (!what || strcmp(what, "fashion-mnist") != 0))
        at_err_set(&err, AT_EUSER, "import: unknown dataset '%s' (supported: fashion-mnist, synthetic-tokens)",
                   what ? what : "");
    if (!err.code && !out) at_err_set(&err, AT_EUSER, "import: --out D.h5 is required");
    if (!err.code && h5_import_fashion_mnist(from, out, &err) == 0)
        printf("wrote %s (Fashion-MNIST: train 60000, test 10000 images 28x28)\n", out);
    if (err.code) cli_error(&err);
    return err.code;
}
