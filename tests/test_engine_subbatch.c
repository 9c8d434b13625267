/* test_engine_subbatch.c — the drivers' cache-sized sub-batches (docs/engine.md,
 * "Convolutional networks: cache-sized sub-batches").
 *
 * Runs of per-example layers with a conv are run a few examples at a time;
 * the backward too when neither parameter gradients nor a hook are asked
 * for. The oracles:
 *  - the backward with a hook that always declines (eng_model_backward_hook)
 *    runs every layer on the whole batch with the same kernels: input
 *    gradients and every layer's output gradient must be the same bytes;
 *  - each example alone (a batch of 1) gives the same logits and input
 *    gradients to float32 rounding (the whole-batch linear GEMMs may sum in
 *    another order at 1 row): relative error <= 1e-5;
 *  - eng_backward_to(stop) leaves layer stop's output gradient equal, to the
 *    byte, to the full backward's.
 * Models: (A) 1x40x40 input, a conv-relu run whose skip connection crosses a
 * whole-batch linear layer into an add, a max pool, a conv with a residual
 * add inside the run, an avg pool, flatten, linear: about 205 KB per example
 * per run, so 2 examples per sub-batch and batches of 5 end in a partial
 * sub-batch; (B) the small CNN of bench/README.md at 1x28x28 (1 example per
 * sub-batch). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core.h"
#include "engine.h"

static int declines(void *ctx, const eng_model *m, int layer, const float *in, const float *out,
                    const float *dout, float *din, int N) {
    (void)ctx, (void)m, (void)layer, (void)in, (void)out, (void)dout, (void)din, (void)N;
    return 0;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void check_model(const char *name, const eng_layer *spec, int n_layers, const int *shape,
                        int N) {
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, spec, n_layers, shape, 3, &err) == 0, "%s: %s", name, err.msg);
    eng_model_init_params(&m, 7);
    const int D = m.in_features, C = m.out_features;
    eng_workspace ws, w1;
    eng_workspace_init(&ws, &m, N, ENG_F32);
    eng_workspace_init(&w1, &m, 1, ENG_F32);
    float *x = malloc(sizeof(float) * (size_t)N * D), *dl = malloc(sizeof(float) * (size_t)N * C);
    float *dx = malloc(sizeof(float) * (size_t)N * D), *dxh = malloc(sizeof(float) * (size_t)N * D);
    float *lg = malloc(sizeof(float) * (size_t)N * C), *dx1 = malloc(sizeof(float) * D);
    for (size_t i = 0; i < (size_t)N * D; i++) x[i] = at_rng_uniform(11, 1, i, 0) - 0.3f;
    for (size_t i = 0; i < (size_t)N * C; i++) dl[i] = at_rng_uniform(11, 2, i, 0) - 0.5f;

    memcpy(lg, eng_model_forward(&m, &ws, x, N), sizeof(float) * (size_t)N * C);
    /* whole batch (hook path) first, then the sub-batched backward */
    eng_model_backward_hook(&m, &ws, x, dl, N, dxh, declines, NULL);
    size_t gsz = 0;
    for (int i = 0; i < m.n_layers; i++) gsz += (size_t)N * m.layers[i].out_numel;
    float *gh = malloc(sizeof(float) * gsz);
    size_t at = 0;
    for (int i = 0; i < m.n_layers; i++) {
        size_t n = (size_t)N * m.layers[i].out_numel;
        memcpy(gh + at, eng_ws_grad(&ws, i), n * sizeof(float));
        at += n;
    }
    eng_model_backward(&m, &ws, x, dl, N, dx, NULL);
    EXPECT(memcmp(dx, dxh, sizeof(float) * (size_t)N * D) == 0,
           "%s: sub-batched input gradient differs from the whole-batch one", name);
    at = 0;
    for (int i = 0; i < m.n_layers; i++) {
        size_t n = (size_t)N * m.layers[i].out_numel;
        EXPECT(memcmp(gh + at, eng_ws_grad(&ws, i), n * sizeof(float)) == 0,
               "%s: layer %d output gradient differs from the whole-batch one", name, i);
        at += n;
    }
    /* stop at each layer: its output gradient is the full backward's */
    for (int s = 0; s < m.n_layers - 1; s++) {
        eng_backward_to(&m, &ws, m.params, x, dl, N, s, NULL, NULL);
        size_t off = 0;
        for (int i = 0; i < s; i++) off += (size_t)N * m.layers[i].out_numel;
        EXPECT(memcmp(gh + off, eng_ws_grad(&ws, s),
                      (size_t)N * m.layers[s].out_numel * sizeof(float)) == 0,
               "%s: eng_backward_to(stop %d) output gradient differs", name, s);
    }
    /* each example alone */
    double e_lg = 0, e_dx = 0;
    for (int n = 0; n < N; n++) {
        const float *l1 = eng_model_forward(&m, &w1, x + (size_t)n * D, 1);
        double e = rel_err(lg + (size_t)n * C, l1, (size_t)C);
        if (e > e_lg) e_lg = e;
        eng_model_backward(&m, &w1, x + (size_t)n * D, dl + (size_t)n * C, 1, dx1, NULL);
        e = rel_err(dx + (size_t)n * D, dx1, (size_t)D);
        if (e > e_dx) e_dx = e;
    }
    EXPECT(e_lg <= 1e-5, "%s: batch logits vs one example at a time: rel err %.3g", name, e_lg);
    EXPECT(e_dx <= 1e-5, "%s: batch input gradients vs one example at a time: rel err %.3g",
           name, e_dx);
    printf("%s: N %d, logits rel err %.2g, dx rel err %.2g (batch vs one at a time)\n", name, N,
           e_lg, e_dx);
    free(x), free(dl), free(dx), free(dxh), free(lg), free(dx1), free(gh);
    eng_workspace_free(&ws);
    eng_workspace_free(&w1);
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    /* (A) */
    eng_layer a[10] = {
        {.kind = ENG_LAYER_CONV2D, .out_features = 8, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_LINEAR, .out_features = 40, .bias = 1}, /* on the last dim */
        {.kind = ENG_LAYER_ADD, .n_src = 2, .src = {2, 1}},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_CONV2D, .out_features = 8, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_ADD, .n_src = 2, .src = {5, 4}},
        {.kind = ENG_LAYER_AVGPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    check_model("residual", a, 10, (int[]){1, 40, 40}, 5);
    /* (B) */
    eng_layer b[8] = {
        {.kind = ENG_LAYER_CONV2D, .out_features = 16, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_CONV2D, .out_features = 32, .kernel = {3, 3}, .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    check_model("small_cnn", b, 8, (int[]){1, 28, 28}, 3);
    return check_report("test_engine_subbatch");
}
