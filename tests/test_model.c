/* test_model.c — whole models through the drivers: an MLP, a CNN with a
 * residual block and batch norm, and a pre-LN transformer over token ids.
 *
 * For each model, in float64 (the same kernels as float32):
 *  1. the gradient of the mean cross-entropy w.r.t. every parameter and the
 *     input equals central finite differences of the loss (h = 1e-6);
 *  2. the float32 gradient agrees with the float64 one (~1e-4);
 *  3. per-example gradients: each equals the gradient of that example's
 *     loss alone, and they sum to N times the mean-loss gradient;
 *  4. layer outputs and output gradients are exposed (eng_ws_act/grad).
 * Curvature, on a tiny tanh/GELU network whose Hessian is formed
 * explicitly, column by column, from central differences of float64
 * gradients (independent of the complex step): eng_hvp matches H v, H is
 * symmetric; eng_gnvp matches J^T H_loss J v with J formed from finite
 * differences of the logits; G is positive semi-definite along v. Also:
 * shape errors name the layer. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"

#include "check.h"

static double urand(uint64_t k, uint64_t s) { return 2.0 * at_rng_uniform_f64(11, s, k, 0) - 1.0; }

/* ------------------------------------------------------------- models */

static int build_mlp(eng_model *m, at_err *err) {
    eng_layer s[9] = {{.kind = ENG_LAYER_FLATTEN},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 7, .bias = 1},
                      {.kind = ENG_LAYER_GELU},
                      {.kind = ENG_LAYER_DROPOUT, .p = 0.3}, /* identity */
                      {.kind = ENG_LAYER_LINEAR, .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_TANH},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 6, .bias = 1},
                      {.kind = ENG_LAYER_SOFTPLUS},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 4, .bias = 0}};
    return eng_model_init(m, s, 9, (int[]){2, 3}, 2, err);
}

static int build_cnn(eng_model *m, at_err *err) {
    eng_layer s[12] = {
        {.kind = ENG_LAYER_CONV2D, .name = "c1", .out_features = 3, .kernel = {3, 3},
         .padding = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_BATCHNORM2D, .name = "bn1", .affine = 1},
        {.kind = ENG_LAYER_SILU, .name = "a1"},
        {.kind = ENG_LAYER_MAXPOOL2D, .name = "p1", .kernel = {2, 2}},
        /* residual block: conv -> relu -> conv, 1x1 projection shortcut */
        {.kind = ENG_LAYER_CONV2D, .name = "r.c1", .out_features = 4, .kernel = {3, 3},
         .padding = {2, 2}, .dilation = {2, 2}, .bias = 1},
        {.kind = ENG_LAYER_RELU, .name = "r.a"},
        {.kind = ENG_LAYER_CONV2D, .name = "r.c2", .out_features = 4, .kernel = {3, 1},
         .padding = {1, 0}, .bias = 0},
        {.kind = ENG_LAYER_CONV2D, .name = "r.sc", .n_src = 1, .src = {3}, .out_features = 4,
         .kernel = {1, 1}, .bias = 1},
        {.kind = ENG_LAYER_ADD, .name = "r", .n_src = 2, .src = {6, 7}},
        {.kind = ENG_LAYER_AVGPOOL2D, .name = "p2", .kernel = {2, 2}, .stride = {1, 1},
         .count_include_pad = 1},
        {.kind = ENG_LAYER_GAP, .name = "gap"},
        {.kind = ENG_LAYER_LINEAR, .name = "fc", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 12, (int[]){2, 6, 6}, 3, err);
}

static int build_transformer(eng_model *m, at_err *err) {
    eng_layer s[13] = {
        {.kind = ENG_LAYER_EMBEDDING, .name = "tok", .num_embeddings = 6, .out_features = 8},
        {.kind = ENG_LAYER_POSEMB, .name = "pos", .num_embeddings = 7},
        {.kind = ENG_LAYER_LAYERNORM, .name = "b0.ln1", .affine = 1},
        {.kind = ENG_LAYER_ATTENTION, .name = "b0.attn", .heads = 2, .causal = 1, .bias = 1},
        {.kind = ENG_LAYER_ADD, .name = "b0.add1", .n_src = 2, .src = {1, 3}},
        {.kind = ENG_LAYER_LAYERNORM, .name = "b0.ln2", .affine = 1},
        {.kind = ENG_LAYER_LINEAR, .name = "b0.fc1", .out_features = 12, .bias = 1},
        {.kind = ENG_LAYER_GELU_TANH, .name = "b0.act"},
        {.kind = ENG_LAYER_LINEAR, .name = "b0.fc2", .out_features = 8, .bias = 1},
        {.kind = ENG_LAYER_ADD, .name = "b0.add2", .n_src = 2, .src = {4, 8}},
        {.kind = ENG_LAYER_LAYERNORM, .name = "ln_f", .affine = 1},
        {.kind = ENG_LAYER_SEQ_MEAN, .name = "pool"},
        {.kind = ENG_LAYER_LINEAR, .name = "head", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 13, (int[]){5}, 1, err);
}

/* Random parameters (also non-trivial norm weights and running stats). */
static void randomise(eng_model *m, uint64_t seed) {
    eng_model_init_params(m, seed);
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        for (size_t k = 0; k < T->numel; k++) {
            float *p = m->params + T->off + k;
            double u = urand(T->off + k, seed + 1);
            if (strstr(T->name, "running_var"))
                *p = (float)(0.5 + 0.5 * (u + 1.0));
            else
                *p += (float)(0.3 * u);
        }
    }
}

static void inputs(const eng_model *m, int N, float *x, int32_t *y, uint64_t seed) {
    for (int n = 0; n < N; n++) {
        for (int d = 0; d < m->in_features; d++) {
            uint64_t k = (uint64_t)n * m->in_features + d;
            x[k] = m->token_input ? (float)at_rng_below((uint64_t)m->vocab, seed, 5, k, 0)
                                  : (float)urand(k, seed + 7);
        }
        y[n] = (int32_t)at_rng_below((uint64_t)m->out_features, seed, 6, (uint64_t)n, 0);
    }
}

/* Mean cross-entropy loss in float64 at params p on x. */
static double loss_f64(const eng_model *m, eng_workspace *ws, const double *p,
                       const double *x, const int32_t *y, int N) {
    const double *z = eng_forward_f64(m, ws, p, x, N);
    double l[16];
    eng_loss ls = {ENG_LOSS_XENT, 0.0};
    eng_loss_forward_f64(&ls, l, z, y, NULL, N, m->out_features);
    double s = 0.0;
    for (int n = 0; n < N; n++) s += l[n];
    return s / N;
}

/* float64 gradient of the mean loss: dp (n_params), dx (N, D) or NULL. */
static void grad_f64(const eng_model *m, eng_workspace *ws, const double *p, const double *x,
                     const int32_t *y, int N, const eng_loss *ls, double *dp, double *dx) {
    const double *z = eng_forward_f64(m, ws, p, x, N);
    double dl[64];
    memset(dl, 0, sizeof dl);
    eng_loss_backward_f64(ls, dl, z, y, NULL, N, m->out_features, 1.0 / N);
    memset(dp, 0, m->n_params * sizeof(double));
    eng_backward_f64(m, ws, p, x, dl, N, dx, dp);
}

static double max_abs(const double *a, size_t n) {
    double r = 0.0;
    for (size_t i = 0; i < n; i++) r = fmax(r, fabs(a[i]));
    return r;
}

static void check_model(const char *name, eng_model *m) {
    const int N = 3;
    const size_t P = m->n_params, D = (size_t)m->in_features;
    eng_loss xent = {ENG_LOSS_XENT, 0.0};
    randomise(m, 3);
    float *xf = calloc(N * D, sizeof(float));
    int32_t y[3];
    inputs(m, N, xf, y, 9);
    double *p = malloc(P * sizeof(double)), *x = malloc(N * D * sizeof(double));
    double *dp = malloc(P * sizeof(double)), *dx = malloc(N * D * sizeof(double));
    for (size_t k = 0; k < P; k++) p[k] = m->params[k];
    for (size_t k = 0; k < N * D; k++) x[k] = xf[k];
    eng_workspace wd, wf;
    eng_workspace_init(&wd, m, N, ENG_F64);
    eng_workspace_init(&wf, m, N, ENG_F32);
    grad_f64(m, &wd, p, x, y, N, &xent, dp, m->token_input ? NULL : dx);

    /* 1. finite differences, every trainable parameter and every input */
    const double h = 1e-6;
    double worst = 0.0, scale = max_abs(dp, P);
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (!T->trainable) continue;
        for (size_t k = T->off; k < T->off + T->numel; k++) {
            double keep = p[k];
            p[k] = keep + h;
            double lp = loss_f64(m, &wd, p, x, y, N);
            p[k] = keep - h;
            double lm = loss_f64(m, &wd, p, x, y, N);
            p[k] = keep;
            worst = fmax(worst, fabs((lp - lm) / (2 * h) - dp[k]));
        }
    }
    EXPECT(worst <= 1e-6 * scale, "%s: parameter gradient vs finite differences: %.3g of %.3g",
           name, worst, scale);
    if (!m->token_input) {
        worst = 0.0;
        double sx = max_abs(dx, N * D);
        for (size_t k = 0; k < N * D; k++) {
            double keep = x[k];
            x[k] = keep + h;
            double lp = loss_f64(m, &wd, p, x, y, N);
            x[k] = keep - h;
            double lm = loss_f64(m, &wd, p, x, y, N);
            x[k] = keep;
            worst = fmax(worst, fabs((lp - lm) / (2 * h) - dx[k]));
        }
        EXPECT(worst <= 1e-6 * sx, "%s: input gradient vs finite differences: %.3g of %.3g",
               name, worst, sx);
    }

    /* 2. float32 drivers agree with float64 */
    float *gf = calloc(P, sizeof(float)), dl32[16] = {0};
    const float *z32 = eng_model_forward(m, &wf, xf, N);
    eng_loss_backward(&xent, dl32, z32, y, NULL, N, m->out_features, 1.0 / N);
    eng_model_backward(m, &wf, xf, dl32, N, NULL, gf);
    worst = 0.0;
    for (size_t k = 0; k < P; k++) worst = fmax(worst, fabs(gf[k] - dp[k]));
    EXPECT(worst <= 2e-4 * scale, "%s: float32 gradient vs float64: %.3g of %.3g", name, worst,
           scale);

    /* 3. per-example gradients of every trainable tensor */
    eng_param_sel sel;
    at_err err = {0};
    EXPECT(eng_param_sel_layers(m, NULL, 0, &sel, &err) == 0, "%s: selection: %s", name,
           err.msg);
    const double *z = eng_forward_f64(m, &wd, p, x, N);
    double dl[16] = {0};
    eng_loss_backward_f64(&xent, dl, z, y, NULL, N, m->out_features, 1.0); /* unscaled */
    eng_backward_f64(m, &wd, p, x, dl, N, NULL, NULL);
    double *g = malloc(N * sel.n * sizeof(double)), *g1 = malloc(P * sizeof(double));
    eng_grad_per_example_f64(m, &wd, p, x, N, &sel, g);
    /* 4. exposed activations and output gradients: the last layer's output
     * gradient is dlogits, its output the logits */
    const double *gl = eng_ws_grad(&wd, m->n_layers - 1);
    const double *al = eng_ws_act(&wd, m->n_layers - 1);
    EXPECT(gl[0] == dl[0] && al[0] == z[0], "%s: eng_ws_grad/act of the last layer", name);

    double wsum = 0.0, wone = 0.0;
    for (int n = 0; n < N; n++) {
        grad_f64(m, &wd, p, x + n * D, y + n, 1, &xent, g1, NULL);
        size_t col = 0;
        for (int s = 0; s < sel.n_tensors; s++) {
            const eng_tensor *T = &m->tensors[sel.tensor[s]];
            for (size_t k = 0; k < T->numel; k++)
                wone = fmax(wone, fabs(g[n * sel.n + col + k] - g1[T->off + k]));
            col += T->numel;
        }
    }
    size_t col = 0;
    for (int s = 0; s < sel.n_tensors; s++) {
        const eng_tensor *T = &m->tensors[sel.tensor[s]];
        for (size_t k = 0; k < T->numel; k++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += g[n * sel.n + col + k];
            wsum = fmax(wsum, fabs(sum - N * dp[T->off + k]));
        }
        col += T->numel;
    }
    EXPECT(wone <= 1e-10 * N * scale, "%s: per-example vs one-example gradient: %.3g", name,
           wone);
    EXPECT(wsum <= 1e-10 * N * scale, "%s: per-example gradients sum to N x mean: %.3g", name,
           wsum);

    printf("%s: %d layers, %zu params, gradients checked\n", name, m->n_layers, P);
    eng_workspace_free(&wd);
    eng_workspace_free(&wf);
    free(xf); free(p); free(x); free(dp); free(dx); free(gf); free(g); free(g1);
}

/* ----------------------------------------------------------- curvature */

static void check_curvature(void) {
    eng_layer s[5] = {{.kind = ENG_LAYER_LINEAR, .out_features = 4, .bias = 1},
                      {.kind = ENG_LAYER_TANH},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1},
                      {.kind = ENG_LAYER_GELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, s, 5, (int[]){3}, 1, &err) == 0, "tiny: %s", err.msg);
    randomise(&m, 21);
    const int N = 4;
    const size_t P = m.n_params;
    float xf[12];
    int32_t y[4];
    inputs(&m, N, xf, y, 23);
    double x[12], *p = malloc(P * sizeof(double)), *gp = malloc(P * sizeof(double)),
                  *gm = malloc(P * sizeof(double)), *H = malloc(P * P * sizeof(double));
    for (int k = 0; k < 12; k++) x[k] = xf[k];
    for (size_t k = 0; k < P; k++) p[k] = m.params[k];
    eng_workspace wd;
    eng_workspace_init(&wd, &m, N, ENG_F64);
    eng_curv cv;
    eng_curv_init(&cv, &m, N);
    for (int li = 0; li < 3; li++) {
        eng_loss ls = {li == 2 ? ENG_LOSS_MSE : ENG_LOSS_XENT, li == 1 ? 0.1 : 0.0};
        /* explicit Hessian: column k = (g(p + h e_k) - g(p - h e_k)) / 2h */
        const double h = 1e-5;
        for (size_t k = 0; k < P; k++) {
            double keep = p[k];
            p[k] = keep + h;
            grad_f64(&m, &wd, p, x, y, N, &ls, gp, NULL);
            p[k] = keep - h;
            grad_f64(&m, &wd, p, x, y, N, &ls, gm, NULL);
            p[k] = keep;
            for (size_t r = 0; r < P; r++) H[r * P + k] = (gp[r] - gm[r]) / (2 * h);
        }
        double *v = malloc(P * sizeof(double)), *hv = malloc(P * sizeof(double));
        double *e = malloc(P * sizeof(double)), *hcol = malloc(P * P * sizeof(double));
        for (size_t k = 0; k < P; k++) v[k] = urand(k, 31 + li);
        eng_hvp(&m, &cv, &ls, xf, y, N, v, hv);
        double worst = 0.0, scale = 0.0;
        for (size_t r = 0; r < P; r++) {
            double ref = 0.0;
            for (size_t k = 0; k < P; k++) ref += H[r * P + k] * v[k];
            worst = fmax(worst, fabs(ref - hv[r]));
            scale = fmax(scale, fabs(ref));
        }
        EXPECT(worst <= 1e-6 * scale, "loss %d: H v vs explicit Hessian: %.3g of %.3g", li,
               worst, scale);
        /* complex-step Hessian, column by column: symmetric to rounding */
        for (size_t k = 0; k < P; k++) {
            memset(e, 0, P * sizeof(double));
            e[k] = 1.0;
            eng_hvp(&m, &cv, &ls, xf, y, N, e, hcol + k * P);
        }
        double asym = 0.0, hmax = max_abs(hcol, P * P);
        for (size_t r = 0; r < P; r++)
            for (size_t k = 0; k < P; k++)
                asym = fmax(asym, fabs(hcol[k * P + r] - hcol[r * P + k]));
        EXPECT(asym <= 1e-12 * hmax, "loss %d: complex-step Hessian asymmetry %.3g of %.3g", li,
               asym, hmax);

        /* Gauss-Newton: J (N*C, P) by central differences of the logits */
        const int C = m.out_features;
        double *J = malloc((size_t)N * C * P * sizeof(double)), zp[12], zm[12];
        for (size_t k = 0; k < P; k++) {
            double keep = p[k];
            p[k] = keep + h;
            memcpy(zp, eng_forward_f64(&m, &wd, p, x, N), sizeof zp);
            p[k] = keep - h;
            memcpy(zm, eng_forward_f64(&m, &wd, p, x, N), sizeof zm);
            p[k] = keep;
            for (int r = 0; r < N * C; r++) J[(size_t)r * P + k] = (zp[r] - zm[r]) / (2 * h);
        }
        const double *z = eng_forward_f64(&m, &wd, p, x, N);
        double u[12];
        for (int n = 0; n < N; n++) { /* u = H_loss J v / N */
            double jv[3], pr[3], mx = z[n * C], ssum = 0.0, pj = 0.0;
            for (int c = 0; c < C; c++) {
                jv[c] = 0.0;
                for (size_t k = 0; k < P; k++) jv[c] += J[(size_t)(n * C + c) * P + k] * v[k];
                mx = fmax(mx, z[n * C + c]);
            }
            for (int c = 0; c < C; c++) ssum += exp(z[n * C + c] - mx);
            for (int c = 0; c < C; c++) {
                pr[c] = exp(z[n * C + c] - mx) / ssum;
                pj += pr[c] * jv[c];
            }
            for (int c = 0; c < C; c++)
                u[n * C + c] = (ls.kind == ENG_LOSS_MSE ? 2.0 / C * jv[c] : pr[c] * (jv[c] - pj)) / N;
        }
        double *gv = malloc(P * sizeof(double));
        eng_gnvp(&m, &cv, &ls, xf, y, N, v, gv);
        worst = scale = 0.0;
        double vgv = 0.0;
        for (size_t k = 0; k < P; k++) {
            double ref = 0.0;
            for (int r = 0; r < N * C; r++) ref += J[(size_t)r * P + k] * u[r];
            worst = fmax(worst, fabs(ref - gv[k]));
            scale = fmax(scale, fabs(ref));
            vgv += v[k] * gv[k];
        }
        EXPECT(worst <= 1e-6 * scale, "loss %d: G v vs J^T H_loss J v: %.3g of %.3g", li, worst,
               scale);
        EXPECT(vgv >= 0.0, "loss %d: v^T G v = %g < 0", li, vgv);
        free(v); free(hv); free(e); free(hcol); free(J); free(gv);
    }
    printf("curvature: H v and G v of a %zu-parameter network checked\n", P);
    eng_curv_free(&cv);
    eng_workspace_free(&wd);
    eng_model_free(&m);
    free(p); free(gp); free(gm); free(H);
}

/* ------------------------------------------------------------- errors */

static void check_shape_errors(void) {
    eng_model m;
    at_err err = {0};
    eng_layer conv = {.kind = ENG_LAYER_CONV2D, .name = "conv1", .out_features = 8,
                      .kernel = {3, 3}};
    EXPECT(eng_model_init(&m, &conv, 1, (int[]){28, 28}, 2, &err) == AT_EUSER &&
               strstr(err.msg, "layer 'conv1' (#0, conv2d): expects input (C, H, W), got (28, 28)"),
           "conv on 2-D input: %s", err.msg);
    err = (at_err){0};
    eng_layer add[2] = {{.kind = ENG_LAYER_LINEAR, .out_features = 3},
                        {.kind = ENG_LAYER_ADD, .name = "res", .n_src = 2, .src = {0, -1}}};
    EXPECT(eng_model_init(&m, add, 2, (int[]){4}, 1, &err) == AT_EUSER &&
               strstr(err.msg, "layer 'res' (#1, add): adds inputs of different shapes (3) and (4)"),
           "add shapes: %s", err.msg);
    err = (at_err){0};
    eng_layer attn[2] = {{.kind = ENG_LAYER_EMBEDDING, .num_embeddings = 5, .out_features = 6},
                         {.kind = ENG_LAYER_ATTENTION, .heads = 4}};
    EXPECT(eng_model_init(&m, attn, 2, (int[]){3}, 1, &err) == AT_EUSER &&
               strstr(err.msg, "layer 'layers.1' (#1, attention): heads is 4"),
           "heads: %s", err.msg);
    err = (at_err){0};
    eng_layer pool = {.kind = ENG_LAYER_MAXPOOL2D, .name = "p", .kernel = {5, 5}};
    EXPECT(eng_model_init(&m, &pool, 1, (int[]){1, 4, 4}, 3, &err) == AT_EUSER &&
               strstr(err.msg, "does not fit"),
           "pool too big: %s", err.msg);
    err = (at_err){0};
    eng_layer big[2] = {{.kind = ENG_LAYER_LINEAR, .out_features = 1 << 30},
                        {.kind = ENG_LAYER_LINEAR, .name = "w", .out_features = 1 << 30}};
    EXPECT(eng_model_build(&m, big, 2, (int[]){1 << 30}, 1, &err) == 0 && m.params == NULL &&
               m.n_params == ((size_t)1 << 61),
           "2^61 parameters are counted, not allocated: %s", err.msg);
    if (!err.code) eng_model_free(&m);
    eng_layer huge = {.kind = ENG_LAYER_LINEAR, .name = "w", .out_features = 1 << 30};
    EXPECT(eng_model_build(&m, &huge, 1, (int[]){1 << 10, 8}, 2, &err) == AT_EUSER &&
               strstr(err.msg, "layer 'w' (#0, linear): output has 1.1e+12 elements per example"),
           "huge output: %s", err.msg);
    err = (at_err){0};
    eng_layer wide = {.kind = ENG_LAYER_CONV2D, .name = "c", .out_features = 1 << 30,
                      .kernel = {1 << 16, 1 << 16}};
    EXPECT(eng_model_build(&m, &wide, 1, (int[]){1 << 10, 1 << 16, 1 << 16}, 3, &err) == AT_EUSER,
           "2^72-element conv weight must be refused");
    err = (at_err){0};
    eng_layer emb2[3] = {{.kind = ENG_LAYER_EMBEDDING, .num_embeddings = 5, .out_features = 4},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_EMBEDDING, .name = "e2", .n_src = 1,
                          .src = {ENG_SRC_INPUT}, .num_embeddings = 2, .out_features = 4}};
    EXPECT(eng_model_init(&m, emb2, 3, (int[]){6}, 1, &err) == AT_EUSER &&
               strstr(err.msg, "layer 'e2' (#2, embedding): an embedding must be the first layer"),
           "second embedding (found by fuzz_h5): %s", err.msg);
    err = (at_err){0};
    eng_layer fwd[2] = {{.kind = ENG_LAYER_RELU, .n_src = 1, .src = {1}}, {.kind = ENG_LAYER_RELU}};
    EXPECT(eng_model_init(&m, fwd, 2, (int[]){4}, 1, &err) == AT_EUSER &&
               strstr(err.msg, "expected an earlier layer"),
           "forward reference: %s", err.msg);
}

int main(void) {
    eng_set_threads(1);
    at_err err = {0};
    eng_model m;
    if (build_mlp(&m, &err) == 0) { check_model("mlp", &m); eng_model_free(&m); }
    EXPECT(!err.code, "mlp: %s", err.msg);
    if (build_cnn(&m, &err) == 0) { check_model("cnn", &m); eng_model_free(&m); }
    EXPECT(!err.code, "cnn: %s", err.msg);
    if (build_transformer(&m, &err) == 0) { check_model("transformer", &m); eng_model_free(&m); }
    EXPECT(!err.code, "transformer: %s", err.msg);
    check_curvature();
    check_shape_errors();
    return check_report("test_model");
}
