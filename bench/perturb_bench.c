/* perturb_bench.c — throughput of the perturbation family on one core.
 *
 * Workloads (the targets are for 2 ranks on this 2-core machine;
 * this program measures one core, so compare 2 x its inputs/s):
 *   occlusion         CNN conv(1->16, 3x3) relu pool2 conv(16->32, 3x3) relu
 *                     pool2 flatten linear(1568->10) on 1x28x28, windows
 *                     1x4x4 at stride 4 (49 windows)
 *   shapley_sampling  25 permutations of 49 4x4 patches, MLP 784-256-256-10
 *   kernel_shap       200 coalitions of the same patches and MLP
 * Inputs: uniform random pixels (every patch differs from the baseline 0,
 * the worst case), and "sparse" ones with only the central 16x16 pixels
 * non-zero (like a centred object: the other patches equal the baseline
 * and cost nothing). Units of 64 rows as the pipeline cuts them, engine
 * batches of up to 2048 rows, one BLAS thread. Not a test: it prints.
 *
 * Prints inputs/s by wall time and by the process's CPU time: on a shared
 * machine the second is what one free core would do.
 *
 * usage: perturb_bench [n_inputs]
 */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Best of 2 repeats: inputs/s by wall time, and by CPU time in *cpu_rate. */
static double bench(double *cpu_rate, mth_spec *s, const eng_model *m, const float *x, int n,
                    const int32_t *target, int block_rows) {
    const int D = m->in_features;
    float *baseline = calloc((size_t)D, sizeof(float));
    mth_scratch sc;
    mth_scratch_init(&sc, m, 2048);
    double *acc = malloc(sizeof(double) * (size_t)block_rows * s->width);
    float *scores = malloc(sizeof(float) * (size_t)block_rows * D);
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 2; rep++) {
        double t0 = at_now(), u0 = cpu_now();
        for (int r0 = 0; r0 < n; r0 += block_rows) {
            int R = n - r0 < block_rows ? n - r0 : block_rows;
            mth_rows rows = {.x = x + (size_t)r0 * D,
                             .baseline = baseline,
                             .target = target,
                             .R = R,
                             .row0 = r0};
            memset(acc, 0, sizeof(double) * (size_t)R * s->width);
            mth_run_unit(s, m, &sc, &rows, 0, s->n_cols, acc);
            mth_finalize(s, m, &sc, &rows, acc, scores);
        }
        double t = at_now() - t0, u = cpu_now() - u0;
        if (t < best) best = t;
        if (u < best_cpu) best_cpu = u;
    }
    *cpu_rate = n / best_cpu;
    mth_scratch_free(&sc);
    free(baseline);
    free(acc);
    free(scores);
    return n / best;
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 512, block_rows = 64, D = 784;
    openblas_set_num_threads(1);
    eng_set_threads(1);
    at_err err = {0};
    float *dense = malloc(sizeof(float) * (size_t)n * D),
          *sparse = calloc((size_t)n * D, sizeof(float));
    for (size_t i = 0; i < (size_t)n * D; i++) {
        dense[i] = at_rng_uniform(2, 3, 0, i);
        int y = (int)(i % D) / 28, xx = (int)(i % D) % 28;
        if (y >= 6 && y < 22 && xx >= 6 && xx < 22) sparse[i] = dense[i];
    }
    int32_t target[64];
    for (int r = 0; r < 64; r++) target[r] = r % 10;

    eng_layer cnn_specs[] = {{.kind = ENG_LAYER_CONV2D,
                              .out_features = 16,
                              .kernel = {3, 3},
                              .padding = {1, 1},
                              .bias = 1},
                             {.kind = ENG_LAYER_RELU},
                             {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
                             {.kind = ENG_LAYER_CONV2D,
                              .out_features = 32,
                              .kernel = {3, 3},
                              .padding = {1, 1},
                              .bias = 1},
                             {.kind = ENG_LAYER_RELU},
                             {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
                             {.kind = ENG_LAYER_FLATTEN},
                             {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model cnn;
    if (eng_model_init(&cnn, cnn_specs, 8, (int[]){1, 28, 28}, 3, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    eng_model_init_params(&cnn, 0);
    eng_layer mlp_specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 256, .bias = 1},
                             {.kind = ENG_LAYER_RELU},
                             {.kind = ENG_LAYER_LINEAR, .out_features = 256, .bias = 1},
                             {.kind = ENG_LAYER_RELU},
                             {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model mlp;
    if (eng_model_init(&mlp, mlp_specs, 5, (int[]){D}, 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    eng_model_init_params(&mlp, 0);

    mth_spec occ = {.kind = MTH_OCCLUSION,
                    .D = D,
                    .ndim = 3,
                    .shape = {1, 28, 28},
                    .window = {1, 4, 4},
                    .stride = {1, 4, 4}};
    int32_t *grp = malloc(sizeof(int32_t) * D);
    const int P = mth_groups_grid(2, (int[]){28, 28}, (int[]){4, 4}, grp);
    mth_spec sh = {.kind = MTH_SHAPLEY_SAMPLING,
                   .D = D,
                   .ndim = 1,
                   .shape = {D},
                   .n_samples = 25,
                   .n_groups = P,
                   .seed = 1};
    mth_spec ks = {.kind = MTH_KERNEL_SHAP,
                   .D = D,
                   .ndim = 1,
                   .shape = {D},
                   .n_samples = 200,
                   .n_groups = P,
                   .seed = 1};
    sh.group = malloc(sizeof(int32_t) * D);
    ks.group = malloc(sizeof(int32_t) * D);
    memcpy(sh.group, grp, sizeof(int32_t) * D);
    memcpy(ks.group, grp, sizeof(int32_t) * D);
    free(grp);
    mth_spec *specs[3] = {&occ, &sh, &ks};
    const eng_model *models[3] = {&cnn, &mlp, &mlp};
    const char *names[3] = {"occlusion_cnn_4x4", "shapley_25perm_49patch_mlp",
                            "kernel_shap_200coal_49patch_mlp"};
    const double targets[3] = {1900, 880, 600};
    printf("inputs/s on 1 core (wall / CPU time), x2 for 2 ranks; target is for 2 ranks\n");
    for (int k = 0; k < 3; k++) {
        if (mth_plan(specs[k], models[k], &err)) {
            fprintf(stderr, "%s: %s\n", names[k], err.msg);
            return 1;
        }
        double cd, cs;
        double vd = bench(&cd, specs[k], models[k], dense, n, target, block_rows);
        double vs = bench(&cs, specs[k], models[k], sparse, n, target, block_rows);
        printf("%-32s dense  wall %7.1f cpu %7.1f  x2 cpu %7.1f  target %5.0f\n", names[k], vd, cd,
               2 * cd, targets[k]);
        printf("%-32s sparse wall %7.1f cpu %7.1f  x2 cpu %7.1f\n", "", vs, cs, 2 * cs);
        mth_spec_free(specs[k]);
    }
    eng_model_free(&cnn);
    eng_model_free(&mlp);
    free(dense);
    free(sparse);
    return 0;
}
