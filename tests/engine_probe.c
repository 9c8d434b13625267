/* engine_probe.c — run attrib's engine on one batch and write every quantity
 * PyTorch can check (tests/check_torch_models.py).
 *
 * usage: engine_probe MODEL.h5 IN.h5 OUT.h5 [RESAVED.h5]
 *
 * With RESAVED.h5, the loaded model is also written back with h5_model_save
 * (attrib's own writer), so a test can compare its architecture text and
 * content hash with what tools/export_torch.py wrote.
 *
 * IN.h5:
 *   /x          (N, D) float32   inputs (token ids as numbers for token models)
 *   /labels     (N) int32
 *   /v/<name>   float64, the tensor's shape: the direction of the curvature
 *               products, by parameter tensor name (a missing tensor, and
 *               every buffer, is 0 along v)
 *   root attribute `layers` (string, optional): comma-separated layer names
 *               whose per-example gradients to write ("" or absent = every
 *               layer with trainable tensors)
 * OUT.h5 (loss = mean cross-entropy over the batch):
 *   /logits (N, C) float32, /losses (N) float32, /loss (1) float64
 *   /dx (N, D) float32              d loss / d x (not for token models)
 *   /grad/<name> float32            d loss / d tensor, every trainable tensor
 *   /per_example/<name> (N, ...) float32
 *                                   d loss_n / d tensor for the selected layers
 *   /hvp/<name>, /gnvp/<name> float64  (H v) and (G v), H the Hessian and G
 *                                   the Gauss-Newton matrix of loss, every
 *                                   trainable tensor
 * Exit status 0, or 2 with a message on stderr.
 */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "h5io.h"

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("engine_probe: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* The string attribute name of obj (variable or fixed length), malloc'd, or
 * NULL when absent. */
static char *attr_str(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), ft = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(ft) != H5T_STRING) die("attribute %s is not a string", name);
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) < 0) die("cannot read attribute %s", name);
        out = at_strdup(s ? s : "", "attribute text");
        H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ft);
        H5Tset_size(mt, n + 1);
        out = at_calloc(n + 1, 1, "attribute text");
        if (H5Aread(a, mt, out) < 0) die("cannot read attribute %s", name);
    }
    H5Tclose(mt);
    H5Tclose(ft);
    H5Aclose(a);
    return out;
}

/* Write a dataset of n dims (dims) of float32 (f32) or float64 values. */
static void put(hid_t loc, const char *name, int ndim, const hsize_t *dims, const void *data,
                int f64) {
    herr_t rc = f64 ? H5LTmake_dataset_double(loc, name, ndim, dims, data)
                    : H5LTmake_dataset_float(loc, name, ndim, dims, data);
    if (rc < 0) die("cannot write dataset %s", name);
}

/* Write the per-tensor blocks of vec (n_params, float32 or float64) for every
 * trainable tensor of m into group grp. */
static void put_tensors(hid_t f, const char *grp, const eng_model *m, const void *vec, int f64) {
    hid_t g = H5Gcreate2(f, grp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) die("cannot create group %s", grp);
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (!T->trainable) continue;
        hsize_t dims[4];
        for (int d = 0; d < T->ndim; d++) dims[d] = (hsize_t)T->shape[d];
        const char *p = (const char *)vec + T->off * (f64 ? sizeof(double) : sizeof(float));
        put(g, T->name, T->ndim, dims, p, f64);
    }
    H5Gclose(g);
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) die("usage: engine_probe MODEL.h5 IN.h5 OUT.h5 [RESAVED.h5]");
    h5io_quiet();
    eng_set_threads(1);
    at_err err = {0};
    eng_model m = {0};
    h5_model_info info;
    if (h5_model_load(argv[1], &m, &info, &err)) die("%s", err.msg);
    if (argc == 5) {
        h5_model_info out = {.n_input_dims = info.n_input_dims};
        memcpy(out.input_shape, info.input_shape, sizeof out.input_shape);
        h5_attr src = {.name = "source", .text = "tests/engine_probe.c (re-saved)"};
        if (h5_model_save(argv[4], &m, &out, &src, 1, &err)) die("%s", err.msg);
        if (strcmp(out.sha256, info.sha256) != 0)
            die("%s: re-saved content_sha256 %s differs from the file's %s", argv[4], out.sha256,
                info.sha256);
    }
    const int D = m.in_features, C = m.out_features;

    /* ---- inputs ---- */
    hid_t fin = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fin < 0) die("%s: cannot open", argv[2]);
    int nd = 0;
    hsize_t xd[2] = {0, 0};
    if (H5LTget_dataset_ndims(fin, "x", &nd) < 0 || nd != 2 ||
        H5LTget_dataset_info(fin, "x", xd, NULL, NULL) < 0 || (int)xd[1] != D)
        die("%s: /x must be (N, %d)", argv[2], D);
    const int N = (int)xd[0];
    float *x = at_malloc((size_t)N * D * sizeof *x, "x");
    int32_t *labels = at_malloc((size_t)N * sizeof *labels, "labels");
    if (H5LTread_dataset_float(fin, "x", x) < 0) die("%s: cannot read /x", argv[2]);
    hsize_t ld[1];
    if (H5LTget_dataset_info(fin, "labels", ld, NULL, NULL) < 0 || (int)ld[0] != N ||
        H5LTread_dataset(fin, "labels", H5T_NATIVE_INT32, labels) < 0)
        die("%s: /labels must be (%d) integers", argv[2], N);
    for (int n = 0; n < N; n++)
        if (labels[n] < 0 || labels[n] >= C) die("label %d of row %d is not a class", labels[n], n);
    if (eng_model_check_input(&m, x, N, &err)) die("%s: /x: %s", argv[2], err.msg);
    double *v = at_calloc(m.n_params, sizeof *v, "v");
    if (H5Lexists(fin, "v", H5P_DEFAULT) > 0) {
        hid_t gv = H5Gopen2(fin, "v", H5P_DEFAULT);
        for (int t = 0; t < m.n_tensors; t++) {
            const eng_tensor *T = &m.tensors[t];
            if (!T->trainable || H5Lexists(gv, T->name, H5P_DEFAULT) <= 0) continue;
            hsize_t dims[4];
            int tn = 0;
            size_t numel = 1;
            if (H5LTget_dataset_ndims(gv, T->name, &tn) < 0 || tn != T->ndim ||
                H5LTget_dataset_info(gv, T->name, dims, NULL, NULL) < 0)
                die("%s: /v/%s: expected %d dims", argv[2], T->name, T->ndim);
            for (int d = 0; d < tn; d++) numel *= dims[d];
            if (numel != T->numel || H5LTread_dataset_double(gv, T->name, v + T->off) < 0)
                die("%s: /v/%s: expected %zu values", argv[2], T->name, T->numel);
        }
        H5Gclose(gv);
    }
    char *layers_attr = attr_str(fin, "layers");
    H5Fclose(fin);

    /* ---- batch loss, logits, gradients ---- */
    eng_loss loss = {.kind = ENG_LOSS_XENT, .label_smoothing = 0};
    eng_workspace ws;
    eng_workspace_init(&ws, &m, N, ENG_F32);
    float *logits = at_malloc((size_t)N * C * sizeof *logits, "logits");
    float *losses = at_malloc((size_t)N * sizeof *losses, "losses");
    float *dlog = at_calloc((size_t)N * C, sizeof *dlog, "dlogits");
    float *dx = m.token_input ? NULL : at_malloc((size_t)N * D * sizeof *dx, "dx");
    float *dparams = at_calloc(m.n_params, sizeof *dparams, "dparams");
    memcpy(logits, eng_model_forward(&m, &ws, x, N), (size_t)N * C * sizeof *logits);
    eng_loss_forward(&loss, losses, logits, labels, NULL, N, C);
    double mean = 0;
    for (int n = 0; n < N; n++) mean += losses[n];
    mean /= N;
    eng_loss_backward(&loss, dlog, logits, labels, NULL, N, C, 1.0 / N);
    eng_model_backward(&m, &ws, x, dlog, N, dx, dparams);

    /* ---- per-example gradients: d loss_n / d theta, so dlogits unscaled ---- */
    char *names[ENG_MAX_LAYERS];
    int n_names = 0;
    for (char *s = layers_attr ? strtok(layers_attr, ",") : NULL; s; s = strtok(NULL, ",")) {
        while (*s == ' ') s++;
        if (*s && n_names < ENG_MAX_LAYERS) names[n_names++] = s;
    }
    eng_param_sel sel;
    if (eng_param_sel_layers(&m, (const char *const *)names, n_names, &sel, &err))
        die("%s", err.msg);
    float *dlog1 = at_calloc((size_t)N * C, sizeof *dlog1, "dlogits per example");
    float *pex = at_malloc((size_t)N * sel.n * sizeof *pex, "per-example gradients");
    eng_model_forward(&m, &ws, x, N);
    eng_loss_backward(&loss, dlog1, logits, labels, NULL, N, C, 1.0);
    eng_model_backward(&m, &ws, x, dlog1, N, NULL, NULL);
    eng_grad_per_example(&m, &ws, m.params, x, N, &sel, pex);

    /* ---- curvature products ---- */
    eng_curv cv;
    eng_curv_init(&cv, &m, N);
    double *hv = at_malloc(m.n_params * sizeof *hv, "hv");
    double *gv = at_malloc(m.n_params * sizeof *gv, "gv");
    eng_hvp(&m, &cv, &loss, x, labels, N, v, hv);
    eng_gnvp(&m, &cv, &loss, x, labels, N, v, gv);

    /* ---- output ---- */
    hid_t f = H5Fcreate(argv[3], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) die("%s: cannot create", argv[3]);
    put(f, "logits", 2, (hsize_t[]){(hsize_t)N, (hsize_t)C}, logits, 0);
    put(f, "losses", 1, (hsize_t[]){(hsize_t)N}, losses, 0);
    put(f, "loss", 1, (hsize_t[]){1}, &mean, 1);
    if (dx) put(f, "dx", 2, (hsize_t[]){(hsize_t)N, (hsize_t)D}, dx, 0);
    put_tensors(f, "grad", &m, dparams, 0);
    put_tensors(f, "hvp", &m, hv, 1);
    put_tensors(f, "gnvp", &m, gv, 1);
    hid_t gp = H5Gcreate2(f, "per_example", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    float *blk = at_malloc((size_t)N * sel.n * sizeof *blk, "per-example block");
    size_t col = 0;
    for (int k = 0; k < sel.n_tensors; k++) {
        const eng_tensor *T = &m.tensors[sel.tensor[k]];
        for (int n = 0; n < N; n++)
            memcpy(blk + (size_t)n * T->numel, pex + (size_t)n * sel.n + col,
                   T->numel * sizeof *blk);
        hsize_t dims[5] = {(hsize_t)N};
        for (int d = 0; d < T->ndim; d++) dims[1 + d] = (hsize_t)T->shape[d];
        put(gp, T->name, T->ndim + 1, dims, blk, 0);
        col += T->numel;
    }
    H5Gclose(gp);
    if (H5Fclose(f) < 0) die("%s: cannot close", argv[3]);
    printf("engine_probe: %s: N=%d, D=%d, C=%d, %zu parameters, mean loss %.6f, "
           "%d per-example tensors (%zu values)\n",
           argv[1], N, D, C, m.n_params, mean, sel.n_tensors, sel.n);

    free(blk); free(hv); free(gv); free(pex); free(dlog1); free(dparams); free(dx);
    free(dlog); free(losses); free(logits); free(v); free(labels); free(x); free(layers_attr);
    eng_curv_free(&cv);
    eng_workspace_free(&ws);
    eng_model_free(&m);
    return 0;
}
