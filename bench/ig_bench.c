/* ig_bench.c — Integrated Gradients throughput against OpenBLAS SGEMM.
 *
 * Workload (issue #2): IG with 50 Gauss-Legendre steps on the MLP
 * 784-256-256-10, 1,000 inputs, one BLAS thread, units of 64 rows exactly as
 * the pipeline cuts them. Prints inputs/s, the GFLOP/s of the IG work
 * (forward + input-gradient backward flops) and its ratio to SGEMM measured
 * in the same run: (a) a large square SGEMM (peak), (b) SGEMM of the
 * workload's own first-layer shape. The executed GFLOP/s count what the
 * engine does (the affine first layer is reused along the path); the
 * nominal ones what a step-by-step IG would have to do at the same
 * inputs/s. Not a test: it prints, it never fails.
 *
 * usage: ig_bench [MODEL.h5-free: random weights] [n_inputs] [n_steps]
 */
#define _GNU_SOURCE
#include <sched.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

static double sgemm_gflops(int M, int N, int K, double min_seconds) {
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)K * N),
          *c = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = at_rng_uniform(1, 1, 0, i);
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = at_rng_uniform(1, 2, 0, i);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    int reps = 0;
    double t0 = at_now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        reps++;
        t = at_now() - t0;
    } while (t < min_seconds);
    free(a); free(b); free(c);
    return 2.0 * M * N * K * reps / t / 1e9;
}

int main(int argc, char **argv) {
    int n_inputs = argc > 1 ? atoi(argv[1]) : 1000;
    int n_steps = argc > 2 ? atoi(argv[2]) : 50;
    const int block_rows = 64, D = 784, H = 256, C = 10;
    openblas_set_num_threads(1);

    eng_layer specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = H, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = H, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    if (eng_model_init(&m, specs, 5, (int[]){D}, 1, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    eng_model_init_params(&m, 0);
    float *x = malloc(sizeof(float) * (size_t)n_inputs * D);
    for (size_t i = 0; i < (size_t)n_inputs * D; i++) x[i] = at_rng_uniform(2, 3, 0, i);
    float *baseline = calloc(D, sizeof(float));
    int32_t *target = malloc(sizeof(int32_t) * block_rows);
    for (int r = 0; r < block_rows; r++) target[r] = r % C;
    mth_spec s = {.kind = MTH_INTEGRATED_GRADIENTS, .n_steps = n_steps,
                  .quadrature = MTH_QUAD_GAUSS_LEGENDRE, .D = D};
    mth_plan(&s, &m, &err);
    mth_scratch sc;
    mth_scratch_init(&sc, &m, 2048);
    double *partial = malloc(sizeof(double) * block_rows * D);
    float *scores = malloc(sizeof(float) * block_rows * D);

    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = at_now();
        for (int r0 = 0; r0 < n_inputs; r0 += block_rows) {
            int R = n_inputs - r0 < block_rows ? n_inputs - r0 : block_rows;
            memset(partial, 0, sizeof(double) * R * D);
            mth_rows rows = {.x = x + (size_t)r0 * D, .baseline = baseline, .target = target,
                             .R = R, .row0 = r0};
            mth_run_unit(&s, &m, &sc, &rows, 0, n_steps, partial);
            mth_finalize(&s, &m, &sc, &rows, partial, scores);
        }
        double t = at_now() - t0;
        if (t < best) best = t;
    }
    /* Nominal: what IG costs computed step by step (forward + input-gradient
     * backward of every layer at every step). Executed: what the engine
     * does with the affine first layer reused (methods.h): per input W(x-b)
     * and one product with W, per step only the layers after the first. */
    double flops_per_point = 2.0 * (D * H + H * H + H * C)  /* forward */
                             + 2.0 * (C * H + H * H + H * D); /* input-gradient backward */
    double nominal_gflops = flops_per_point * n_steps * n_inputs / best / 1e9;
    double exec_per_input = sc.head >= 0
                                ? 2.0 * 2.0 * D * H + n_steps * 2.0 * 2.0 * (H * H + H * C)
                                : flops_per_point * n_steps;
    double ig_gflops = exec_per_input * n_inputs / best / 1e9;
    double peak = sgemm_gflops(2048, 2048, 2048, 1.0);
    double shaped = sgemm_gflops(block_rows * (2048 / block_rows), H, D, 1.0);
    printf("workload: IG, %d Gauss-Legendre steps, MLP %d-%d-%d-%d, %d inputs, 1 BLAS thread, "
           "units of %d rows\n", n_steps, D, H, H, C, n_inputs, block_rows);
    printf("ig_inputs_per_s            %10.1f   (1 core)\n", n_inputs / best);
    printf("ig_gflops                  %10.2f   (executed%s)\n", ig_gflops,
           sc.head >= 0 ? ", first layer reused" : "");
    printf("ig_nominal_gflops          %10.2f   (step by step: what the same inputs/s would need)\n",
           nominal_gflops);
    printf("sgemm_peak_gflops          %10.2f   (2048^3)\n", peak);
    printf("sgemm_layer1_gflops        %10.2f   (2048x256x784)\n", shaped);
    printf("ratio_ig_to_sgemm_peak     %10.3f\n", ig_gflops / peak);
    printf("ratio_ig_to_sgemm_layer1   %10.3f\n", ig_gflops / shaped);
    printf("ideal_2rank_inputs_per_s   %10.1f   (2 x 1 core; measure with bench/run_ig_bench.sh)\n",
           2 * n_inputs / best);
    mth_scratch_free(&sc);
    mth_spec_free(&s);
    eng_model_free(&m);
    free(x); free(baseline); free(target); free(partial); free(scores);
    return 0;
}
