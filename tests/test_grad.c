/* test_grad.c — every engine op's backward against central finite
 * differences of an independent double-precision reference forward.
 *
 * For each op: (1) the float32 forward must match the naive float64
 * reference; (2) for a scalar loss L = sum(r * out) with random r, the op's
 * backward (dout = r) must match dL/d(input or parameter) by central
 * differences of the float64 reference (h = 1e-6). Tolerance: 2e-4 of the
 * largest gradient magnitude (float32 backward vs exact derivative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"

#include "check.h"

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(7, 99, k, 0) - 1.0; }

/* max |a - b| / max(|b|, floor) */
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 1e-12;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

/* ---------------------------------------------------- double references */

static void linear_ref(double *out, const double *in, const double *w, const double *b,
                       int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; i++) s += in[n * IC + i] * w[o * IC + i];
            out[n * OC + o] = s;
        }
}

static double xent_ref(const double *z, const int32_t *y, int N, int C) {
    double tot = 0.0;
    for (int n = 0; n < N; n++) {
        double mx = z[n * C];
        for (int c = 1; c < C; c++) mx = fmax(mx, z[n * C + c]);
        double s = 0.0;
        for (int c = 0; c < C; c++) s += exp(z[n * C + c] - mx);
        tot += -(z[n * C + y[n]] - mx - log(s));
    }
    return tot / N;
}

/* ------------------------------------------------------------ op tests */

static void test_linear(void) {
    const int N = 5, IC = 7, OC = 4;
    double in[35], w[28], b[4], r[20], out[20];
    float inf[35], wf[28], bf[4], rf[20], outf[20];
    for (int i = 0; i < N * IC; i++) inf[i] = (float)(in[i] = urand(i));
    for (int i = 0; i < OC * IC; i++) wf[i] = (float)(w[i] = urand(100 + i));
    for (int i = 0; i < OC; i++) bf[i] = (float)(b[i] = urand(200 + i));
    for (int i = 0; i < N * OC; i++) rf[i] = (float)(r[i] = urand(300 + i));
    eng_linear_forward(outf, inf, wf, bf, N, IC, OC);
    linear_ref(out, in, w, b, N, IC, OC);
    EXPECT(rel_err(outf, out, (size_t)N * OC) < 1e-6, "linear forward");

    float din[35] = {0}, dw[28] = {0}, db[4] = {0};
    eng_linear_backward(din, dw, db, rf, inf, wf, N, IC, OC);
    const double h = 1e-6;
    double g_in[35], g_w[28], g_b[4];
    double *vars[3] = {in, w, b}, *grads[3] = {g_in, g_w, g_b};
    int sizes[3] = {N * IC, OC * IC, OC};
    for (int v = 0; v < 3; v++)
        for (int k = 0; k < sizes[v]; k++) {
            double keep = vars[v][k], lp = 0, lm = 0;
            vars[v][k] = keep + h;
            linear_ref(out, in, w, b, N, IC, OC);
            for (int i = 0; i < N * OC; i++) lp += r[i] * out[i];
            vars[v][k] = keep - h;
            linear_ref(out, in, w, b, N, IC, OC);
            for (int i = 0; i < N * OC; i++) lm += r[i] * out[i];
            vars[v][k] = keep;
            grads[v][k] = (lp - lm) / (2 * h);
        }
    EXPECT(rel_err(din, g_in, 35) < 2e-4, "linear d/din: %g", rel_err(din, g_in, 35));
    EXPECT(rel_err(dw, g_w, 28) < 2e-4, "linear d/dw: %g", rel_err(dw, g_w, 28));
    EXPECT(rel_err(db, g_b, 4) < 2e-4, "linear d/db: %g", rel_err(db, g_b, 4));
    /* accumulation: a second backward doubles the gradients */
    float din2[35];
    memcpy(din2, din, sizeof din);
    eng_linear_backward(din2, NULL, NULL, rf, inf, wf, N, IC, OC);
    for (int i = 0; i < 35; i++) EXPECT(fabsf(din2[i] - 2 * din[i]) <= 1e-6f * fabsf(din[i]) + 1e-7f, "linear backward accumulates");
}

static void test_relu(void) {
    const int n = 40;
    double in[40], r[40], g[40];
    float inf[40], rf[40], outf[40], din[40] = {0};
    for (int i = 0; i < n; i++) {
        in[i] = urand(400 + i);
        if (fabs(in[i]) < 0.01) in[i] = 0.5; /* stay away from the kink */
        inf[i] = (float)in[i];
        rf[i] = (float)(r[i] = urand(500 + i));
    }
    eng_relu_forward(outf, inf, n);
    for (int i = 0; i < n; i++) EXPECT(outf[i] == (in[i] > 0 ? inf[i] : 0.0f), "relu forward");
    eng_relu_backward(din, rf, inf, n);
    const double h = 1e-6;
    for (int k = 0; k < n; k++) {
        double lp = r[k] * fmax(in[k] + h, 0.0), lm = r[k] * fmax(in[k] - h, 0.0);
        g[k] = (lp - lm) / (2 * h);
    }
    EXPECT(rel_err(din, g, n) < 2e-4, "relu d/din: %g", rel_err(din, g, n));
}

static void test_xent(void) {
    const int N = 4, C = 6;
    double z[24], g[24];
    float zf[24], probs[24], dz[24] = {0}, losses[4];
    int32_t y[4] = {0, 5, 2, 2};
    for (int i = 0; i < N * C; i++) zf[i] = (float)(z[i] = 3.0 * urand(600 + i));
    double l = eng_softmax_xent_forward(probs, losses, zf, y, N, C);
    EXPECT(fabs(l - xent_ref(z, y, N, C)) < 1e-5 * fabs(l), "xent forward %g vs %g", l,
           xent_ref(z, y, N, C));
    double lsum = 0;
    for (int n = 0; n < N; n++) lsum += losses[n];
    EXPECT(fabs(lsum / N - l) < 1e-5, "xent per-row losses");
    eng_softmax_xent_backward(dz, probs, y, N, C, 1.0f / N);
    const double h = 1e-6;
    for (int k = 0; k < N * C; k++) {
        double keep = z[k];
        z[k] = keep + h;
        double lp = xent_ref(z, y, N, C);
        z[k] = keep - h;
        double lm = xent_ref(z, y, N, C);
        z[k] = keep;
        g[k] = (lp - lm) / (2 * h);
    }
    EXPECT(rel_err(dz, g, 24) < 2e-4, "xent d/dlogits: %g", rel_err(dz, g, 24));
}

/* Whole-model backward: an MLP 6-8-5-3 with ReLUs, loss = mean xent. */
static double mlp_ref_loss(const eng_model *m, const double *p, const double *x,
                           const int32_t *y, int N) {
    double a[64 * 8], bbuf[64 * 8];
    double *cur = a, *nxt = bbuf;
    memcpy(cur, x, sizeof(double) * N * m->in_features);
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        if (L->kind == ENG_LAYER_LINEAR)
            linear_ref(nxt, cur, p + L->w_off, L->bias ? p + L->b_off : NULL, N,
                       L->in_features, L->out_features);
        else
            for (int k = 0; k < N * L->out_features; k++) nxt[k] = fmax(cur[k], 0.0);
        double *t = cur; cur = nxt; nxt = t;
    }
    return xent_ref(cur, y, N, m->out_features);
}

static void test_model(void) {
    eng_layer_spec specs[] = {{ENG_LAYER_LINEAR, 8, 1}, {ENG_LAYER_RELU, 0, 0},
                              {ENG_LAYER_LINEAR, 5, 1}, {ENG_LAYER_RELU, 0, 0},
                              {ENG_LAYER_LINEAR, 3, 0}};
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, specs, 5, 6, &err) == 0, "model init: %s", err.msg);
    EXPECT(m.n_params == 6 * 8 + 8 + 8 * 5 + 5 + 5 * 3, "param count %zu", m.n_params);
    eng_model_init_params(&m, 3);
    const int N = 4;
    double x[24], p[200];
    float xf[24];
    int32_t y[4] = {1, 0, 2, 1};
    for (int i = 0; i < N * 6; i++) xf[i] = (float)(x[i] = urand(700 + i));
    for (size_t i = 0; i < m.n_params; i++) p[i] = m.params[i];
    eng_workspace ws;
    eng_workspace_init(&ws, &m, N);
    const float *logits = eng_model_forward(&m, &ws, xf, N);
    float probs[12], dlog[12] = {0}, dx[24], dp[200] = {0};
    eng_softmax_xent_forward(probs, NULL, logits, y, N, 3);
    eng_softmax_xent_backward(dlog, probs, y, N, 3, 1.0f / N);
    eng_model_backward(&m, &ws, xf, dlog, N, dx, dp);
    const double h = 1e-6;
    double gx[24], gp[200];
    for (int k = 0; k < N * 6; k++) {
        double keep = x[k];
        x[k] = keep + h;
        double lp = mlp_ref_loss(&m, p, x, y, N);
        x[k] = keep - h;
        double lm = mlp_ref_loss(&m, p, x, y, N);
        x[k] = keep;
        gx[k] = (lp - lm) / (2 * h);
    }
    for (size_t k = 0; k < m.n_params; k++) {
        double keep = p[k];
        p[k] = keep + h;
        double lp = mlp_ref_loss(&m, p, x, y, N);
        p[k] = keep - h;
        double lm = mlp_ref_loss(&m, p, x, y, N);
        p[k] = keep;
        gp[k] = (lp - lm) / (2 * h);
    }
    EXPECT(rel_err(dx, gx, 24) < 2e-4, "model d/dx: %g", rel_err(dx, gx, 24));
    EXPECT(rel_err(dp, gp, m.n_params) < 2e-4, "model d/dparams: %g", rel_err(dp, gp, m.n_params));

    /* dx == NULL skips the input gradient but still accumulates params */
    float dp2[200] = {0};
    eng_model_forward(&m, &ws, xf, N);
    eng_model_backward(&m, &ws, xf, dlog, N, NULL, dp2);
    for (size_t k = 0; k < m.n_params; k++) EXPECT(dp2[k] == dp[k], "params grad without dx");

    /* shape errors name the layer */
    eng_layer_spec bad[] = {{ENG_LAYER_LINEAR, 0, 1}};
    eng_model m2;
    at_err e2 = {0};
    EXPECT(eng_model_init(&m2, bad, 1, 4, &e2) == AT_EUSER && strstr(e2.msg, "layer 0"),
           "bad layer message: %s", e2.msg);
    eng_workspace_free(&ws);
    eng_model_free(&m);
}

static void test_sgd(void) {
    eng_sgd opt;
    eng_sgd_init(&opt, 2, 0.1f, 0.9f, 0.01f);
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    eng_sgd_step(&opt, p, g);
    eng_sgd_step(&opt, p, g);
    /* by hand, PyTorch semantics */
    double pp[2] = {1.0, -2.0}, v[2] = {0, 0}, gg[2] = {0.5, 0.25};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 2; i++) {
            double gi = gg[i] + 0.01 * pp[i];
            v[i] = 0.9 * v[i] + gi;
            pp[i] -= 0.1 * v[i];
        }
    for (int i = 0; i < 2; i++) EXPECT(fabs(p[i] - pp[i]) < 1e-6, "sgd step %d: %g vs %g", i, p[i], pp[i]);
    eng_sgd_free(&opt);
}

/* Training on a separable toy problem must reach high accuracy, and two
 * runs with the same seed must give identical weights. */
static void test_train_deterministic(void) {
    eng_layer_spec specs[] = {{ENG_LAYER_LINEAR, 16, 1}, {ENG_LAYER_RELU, 0, 0},
                              {ENG_LAYER_LINEAR, 2, 1}};
    const int n = 512;
    float *x = malloc(sizeof(float) * n * 2);
    int32_t *y = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) {
        x[2 * i] = (float)urand(1000 + i);
        x[2 * i + 1] = (float)urand(5000 + i);
        y[i] = x[2 * i] * x[2 * i + 1] > 0; /* XOR-like quadrants */
    }
    float *w[2];
    double acc = 0;
    for (int run = 0; run < 2; run++) {
        eng_model m;
        at_err err = {0};
        eng_model_init(&m, specs, 3, 2, &err);
        eng_model_init_params(&m, 11);
        eng_workspace ws;
        eng_workspace_init(&ws, &m, 32);
        eng_sgd opt;
        eng_sgd_init(&opt, m.n_params, 0.1f, 0.9f, 0.0f);
        float *grads = malloc(sizeof(float) * m.n_params);
        for (int e = 0; e < 60; e++) eng_train_epoch(&m, &ws, &opt, grads, x, y, n, 32, 5, e, NULL);
        double loss;
        eng_evaluate(&m, &ws, x, y, n, &loss, &acc, NULL);
        w[run] = malloc(sizeof(float) * m.n_params);
        memcpy(w[run], m.params, sizeof(float) * m.n_params);
        if (run == 1) EXPECT(memcmp(w[0], w[1], sizeof(float) * m.n_params) == 0, "training is deterministic");
        free(grads);
        eng_sgd_free(&opt);
        eng_workspace_free(&ws);
        eng_model_free(&m);
    }
    EXPECT(acc > 0.95, "toy training accuracy %.3f", acc);
    free(w[0]); free(w[1]); free(x); free(y);
}

int main(void) {
    eng_set_threads(1);
    test_linear();
    test_relu();
    test_xent();
    test_model();
    test_sgd();
    test_train_deterministic();
    return check_report("test_grad");
}
