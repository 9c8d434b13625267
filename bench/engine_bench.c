/* engine_bench.c — forward+backward speed of the engine as a fraction of
 * the OpenBLAS SGEMM rate measured in the same run, and the memory plan.
 *
 *   engine_bench [batch] [seconds]      (defaults 256, 2.0; one thread)
 *
 * Models: the MLP 784-256-256-10 (jobs/train_mlp.yaml), the LeNet-style CNN
 * of jobs/train_cnn.yaml (conv 32, pool, conv 64, pool, linear 128, linear
 * 10) and the residual CNN of jobs/train_resnet.yaml (conv 16, pool, conv
 * 32, pool, a block of two 32-channel convs on 7x7 planes, linear 64,
 * linear 10), all on (1, 28, 28). The step is
 * what training does: forward, cross-entropy, backward to every parameter
 * (no input gradient). FLOPs count the GEMM work of linear and conv layers
 * (2 per multiply-add: forward, weight gradient, and input gradient for all
 * but the first layer); pointwise layers are not counted. Prints one line
 * per model: ms per step, GFLOP/s, and the ratio to SGEMM. */
#define _GNU_SOURCE
#include <sched.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "engine.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* GFLOP/s of cblas_sgemm on n x n x n, best of repeats over `secs`. */
static double sgemm_rate(int n, double secs) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e30, t_end = now() + secs;
    do {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
    } while (now() < t_end);
    free(a); free(b); free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* GEMM FLOPs of one training step (forward + backward, no input grad). */
static double step_flops(const eng_model *m, int N) {
    double f = 0.0;
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        double mac = 0.0;
        if (L->kind == ENG_LAYER_LINEAR)
            mac = (double)L->in_numel * L->out_features;
        else if (L->kind == ENG_LAYER_CONV2D)
            mac = (double)L->g.OC * L->g.OH * L->g.OW * L->g.C * L->g.KH * L->g.KW;
        else
            continue;
        f += 2.0 * N * mac * (i == 0 ? 2.0 : 3.0);
    }
    return f;
}

typedef struct {
    double step_s, gflops, hvp_ratio;
    eng_memory mem;
} bench_result;

static bench_result bench(const eng_layer *spec, int n, const int *shape, int nd, int N,
                          double secs) {
    eng_model m;
    at_err err = {0};
    if (eng_model_init(&m, spec, n, shape, nd, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    eng_model_init_params(&m, 1);
    eng_workspace ws;
    eng_workspace_init(&ws, &m, N, ENG_F32);
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    float *grads = calloc(m.n_params, sizeof(float));
    float *dl = malloc((size_t)N * m.out_features * sizeof(float));
    int32_t *y = malloc((size_t)N * sizeof(int32_t));
    for (size_t k = 0; k < (size_t)N * m.in_features; k++) x[k] = at_rng_uniform(3, 9, k, 0);
    for (int k = 0; k < N; k++) y[k] = k % m.out_features;
    eng_loss loss = {ENG_LOSS_XENT, 0.0};
    double best = 1e30, t_end = now() + secs;
    int steps = 0;
    do {
        double t0 = now();
        const float *z = eng_model_forward(&m, &ws, x, N);
        memset(dl, 0, (size_t)N * m.out_features * sizeof(float));
        eng_loss_backward(&loss, dl, z, y, NULL, N, m.out_features, 1.0 / N);
        memset(grads, 0, m.n_params * sizeof(float));
        eng_model_backward(&m, &ws, x, dl, N, NULL, grads);
        double dt = now() - t0;
        if (dt < best) best = dt;
        steps++;
    } while (now() < t_end || steps < 3);
    bench_result r = {best, step_flops(&m, N) / best / 1e9, 0.0, ws.mem};
    /* one Hessian-vector product of the same mean loss (complex step) */
    eng_curv cv;
    eng_curv_init(&cv, &m, N);
    double *v = malloc(m.n_params * sizeof(double)), *hv = malloc(m.n_params * sizeof(double));
    for (size_t k = 0; k < m.n_params; k++) v[k] = at_rng_uniform_f64(5, 9, k, 0) - 0.5;
    double hbest = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        eng_hvp(&m, &cv, &loss, x, y, N, v, hv);
        double dt = now() - t0;
        if (dt < hbest) hbest = dt;
    }
    r.hvp_ratio = hbest / best;
    eng_curv_free(&cv);
    eng_workspace_free(&ws);
    eng_model_free(&m);
    free(v); free(hv); free(x); free(grads); free(dl); free(y);
    return r;
}

static void report(const char *name, const bench_result *r, int N, double peak) {
    char acts[32], tot[32], par[32];
    at_human_bytes((double)r->mem.activations, acts, sizeof acts);
    at_human_bytes((double)r->mem.total, tot, sizeof tot);
    at_human_bytes((double)r->mem.params, par, sizeof par);
    printf("%-6s batch %d: %.2f ms/step, %.1f GFLOP/s, %.2f of SGEMM; HVP %.1f x a step "
           "(memory: params %s, workspace %s of which activations %s)\n",
           name, N, r->step_s * 1e3, r->gflops, r->gflops / peak, r->hvp_ratio, par, tot, acts);
}

/* The SGEMM rate is measured before and after each model and the best is
 * kept, so a busy moment cannot inflate a ratio. */
int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 256;
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    eng_set_threads(1);
    eng_layer mlp[5] = {{.kind = ENG_LAYER_LINEAR, .out_features = 256, .bias = 1},
                        {.kind = ENG_LAYER_RELU},
                        {.kind = ENG_LAYER_LINEAR, .out_features = 256, .bias = 1},
                        {.kind = ENG_LAYER_RELU},
                        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    /* jobs/train_cnn.yaml (LeNet-style) */
    eng_layer cnn[10] = {
        {.kind = ENG_LAYER_CONV2D, .out_features = 32, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_CONV2D, .out_features = 64, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out_features = 128, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    /* jobs/train_resnet.yaml: conv 16, pool, conv 32, pool, a residual
     * block of two 32-channel convs on 7x7 planes, linear 64, linear 10 */
    eng_layer res[15] = {
        {.kind = ENG_LAYER_CONV2D, .out_features = 16, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_CONV2D, .out_features = 32, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_CONV2D, .out_features = 32, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_CONV2D, .out_features = 32, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_ADD, .n_src = 2, .src = {8, 5}},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out_features = 64, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    double peak = sgemm_rate(1024, secs);
    bench_result a = bench(mlp, 5, (int[]){784}, 1, N, secs);
    peak = fmax(peak, sgemm_rate(1024, secs));
    bench_result b = bench(cnn, 10, (int[]){1, 28, 28}, 3, N, secs);
    peak = fmax(peak, sgemm_rate(1024, secs));
    bench_result c = bench(res, 15, (int[]){1, 28, 28}, 3, N, secs);
    peak = fmax(peak, sgemm_rate(1024, secs));
    printf("sgemm 1024^3: %.1f GFLOP/s (1 thread, best of 4 measurements)\n", peak);
    report("mlp", &a, N, peak);
    report("cnn", &b, N, peak);
    report("resnet", &c, N, peak);
    return 0;
}
