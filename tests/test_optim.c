/* test_optim.c — optimizers and learning-rate schedules against independent
 * float64 implementations of PyTorch 1.13's formulas (torch/optim/sgd.py,
 * adam.py, adamw.py: _single_tensor_*; lr_scheduler.py: StepLR,
 * CosineAnnealingLR), the trainable mask, and a small training run
 * (loss goes down, same seed = same bytes).
 *
 * `test_optim --dump` prints every optimizer case (initial params, the
 * gradients and learning rates of each step, the engine's final params) and
 * schedule values as text; tests/check_train_optim_torch.py replays them
 * with torch.optim and torch.optim.lr_scheduler and compares. Run by hand
 * while developing:
 *   build/tests/test_optim --dump > /tmp/d.txt &&
 *   /usr/bin/python3 tests/check_train_optim_torch.py /tmp/d.txt
 * it agreed (torch 1.13: max |engine - torch| 2.4e-7 on params of scale
 * 1.4, StepLR identical, CosineAnnealingLR within 1e-15 relative) and it
 * runs in ctest as train_optim_torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"

#include "check.h"

#define NP 12 /* parameters of the toy model */
#define NSTEPS 5

/* Three tensors: w (2, 3) trainable, a buffer (3) that is not (like batch
 * norm running statistics), b (3) trainable. */
static void toy_model(eng_model *m, eng_tensor *t, float *params) {
    memset(m, 0, sizeof *m);
    memset(t, 0, 3 * sizeof *t);
    const size_t off[3] = {0, 6, 9}, numel[3] = {6, 3, 3};
    const int trainable[3] = {1, 0, 1};
    for (int k = 0; k < 3; k++) {
        snprintf(t[k].name, sizeof t[k].name, "toy.%d", k);
        t[k].ndim = 1;
        t[k].shape[0] = (int64_t)numel[k];
        t[k].off = off[k];
        t[k].numel = numel[k];
        t[k].trainable = trainable[k];
    }
    m->n_tensors = 3;
    m->tensors = t;
    m->n_params = NP;
    m->params = params;
}

static float p0(int i) { return (float)(2.0 * at_rng_uniform_f64(11, 5, (uint64_t)i, 0) - 1.0); }
static float grad(int s, int i) {
    return (float)(at_rng_normal(11, 6, (uint64_t)s, (uint64_t)i) * (s == 3 ? 1e-3 : 1.0));
}
static double step_lr(int s) { return 0.1 * (1.0 - 0.15 * s); }

typedef struct {
    const char *name;
    eng_opt_kind kind;
    double momentum;
    int nesterov;
    double wd, b1, b2, eps;
} optim_case;

static const optim_case cases[] = {
    {"sgd", ENG_OPT_SGD, 0, 0, 0, 0, 0, 0},
    {"sgd_wd", ENG_OPT_SGD, 0, 0, 0.05, 0, 0, 0},
    {"sgd_momentum", ENG_OPT_SGD, 0.9, 0, 0.01, 0, 0, 0},
    {"sgd_nesterov", ENG_OPT_SGD, 0.8, 1, 0.01, 0, 0, 0},
    {"adam", ENG_OPT_ADAM, 0, 0, 0, 0.9, 0.999, 1e-8},
    {"adam_wd", ENG_OPT_ADAM, 0, 0, 0.1, 0.8, 0.99, 1e-3},
    {"adamw", ENG_OPT_ADAMW, 0, 0, 0.1, 0.9, 0.999, 1e-8},
    {"adamw_eps", ENG_OPT_ADAMW, 0, 0, 0.5, 0.5, 0.9, 0.1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* The engine's optimizer: NSTEPS steps from p0 with grad(s, .). */
static void run_engine(const optim_case *c, float *p /* (NP) */) {
    eng_model m;
    eng_tensor t[3];
    toy_model(&m, t, p);
    for (int i = 0; i < NP; i++) p[i] = p0(i);
    eng_optim opt;
    eng_optim_init(&opt, &m, c->kind, step_lr(0), c->momentum, c->nesterov, c->wd, c->b1, c->b2,
                   c->eps);
    float g[NP];
    for (int s = 0; s < NSTEPS; s++) {
        for (int i = 0; i < NP; i++) g[i] = grad(s, i);
        eng_optim_step(&opt, p, g, step_lr(s));
    }
    EXPECT(opt.step == NSTEPS, "%s: step count %ld", c->name, opt.step);
    eng_optim_free(&opt);
}

/* PyTorch's loops written out in float64 for one trainable element
 * sequence, literally: SGD's buffer is None on the first step (clone of
 * d_p), Adam's bias corrections from the step count. */
static void run_reference(const optim_case *c, double *p /* (NP) */) {
    for (int i = 0; i < NP; i++) {
        int trainable = i < 6 || i >= 9;
        double x = p0(i), buf = 0, exp_avg = 0, exp_avg_sq = 0;
        int have_buf = 0;
        for (int s = 0; s < NSTEPS && trainable; s++) {
            double lr = step_lr(s), d_p = grad(s, i);
            if (c->kind == ENG_OPT_SGD) {
                if (c->wd != 0) d_p = d_p + c->wd * x;
                if (c->momentum != 0) {
                    if (!have_buf) {
                        buf = d_p;
                        have_buf = 1;
                    } else {
                        buf = buf * c->momentum + d_p; /* dampening 0 */
                    }
                    d_p = c->nesterov ? d_p + c->momentum * buf : buf;
                }
                x = x - lr * d_p;
            } else {
                int step = s + 1;
                if (c->kind == ENG_OPT_ADAMW)
                    x = x * (1 - lr * c->wd);
                else if (c->wd != 0)
                    d_p = d_p + c->wd * x;
                exp_avg = exp_avg * c->b1 + (1 - c->b1) * d_p;
                exp_avg_sq = exp_avg_sq * c->b2 + (1 - c->b2) * d_p * d_p;
                double bias_correction1 = 1 - pow(c->b1, step);
                double bias_correction2 = 1 - pow(c->b2, step);
                double step_size = lr / bias_correction1;
                double denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + c->eps;
                x = x - step_size * exp_avg / denom;
            }
        }
        p[i] = x;
    }
}

static void test_optimizers(void) {
    for (int k = 0; k < NCASES; k++) {
        const optim_case *c = &cases[k];
        float p[NP];
        double ref[NP];
        run_engine(c, p);
        run_reference(c, ref);
        double err = 0, scale = 0, moved = 0;
        for (int i = 0; i < NP; i++) {
            err = fmax(err, fabs((double)p[i] - ref[i]));
            scale = fmax(scale, fabs(ref[i]));
            moved = fmax(moved, fabs((double)p[i] - p0(i)));
        }
        EXPECT(err <= 2e-6 * scale, "%s: max |engine - reference| = %.3g (scale %.3g)", c->name,
               err, scale);
        EXPECT(moved > 1e-3, "%s: parameters did not move (%.3g)", c->name, moved);
        /* the buffer (elements 6..8) never moves, bit for bit */
        for (int i = 6; i < 9; i++)
            EXPECT(memcmp(&p[i], &(float){p0(i)}, sizeof(float)) == 0,
                   "%s: non-trainable element %d moved: %.9g -> %.9g", c->name, i, (double)p0(i),
                   (double)p[i]);
        /* same inputs, same bytes */
        float p2[NP];
        run_engine(c, p2);
        EXPECT(memcmp(p, p2, sizeof p) == 0, "%s: two runs differ", c->name);
    }
}

/* Closed forms of StepLR and CosineAnnealingLR, plus spot values. */
static void test_schedules(void) {
    eng_sched cst = {ENG_SCHED_CONSTANT, 0.3, 0, 0, 0, 0};
    eng_sched st = {ENG_SCHED_STEP, 0.1, 3, 0.5, 0, 0};
    eng_sched cs = {ENG_SCHED_COSINE, 0.2, 0, 0, 0.01, 8};
    for (int e = 0; e < 12; e++) {
        EXPECT(eng_sched_lr(&cst, e) == 0.3, "constant: epoch %d: %g", e, eng_sched_lr(&cst, e));
        double want = 0.1 * pow(0.5, e / 3);
        EXPECT(fabs(eng_sched_lr(&st, e) - want) <= 1e-15, "step: epoch %d: %.17g, want %.17g", e,
               eng_sched_lr(&st, e), want);
        want = 0.01 + (0.2 - 0.01) * (1 + cos(3.14159265358979323846 * e / 8)) / 2;
        EXPECT(fabs(eng_sched_lr(&cs, e) - want) <= 1e-15, "cosine: epoch %d: %.17g, want %.17g", e,
               eng_sched_lr(&cs, e), want);
    }
    EXPECT(eng_sched_lr(&st, 2) == 0.1 && eng_sched_lr(&st, 3) == 0.05 &&
               eng_sched_lr(&st, 6) == 0.025,
           "step: 0.1 until epoch 3, then 0.05, 0.025 from epoch 6");
    EXPECT(eng_sched_lr(&cs, 0) == 0.2, "cosine: epoch 0 is the base lr");
    EXPECT(fabs(eng_sched_lr(&cs, 4) - 0.105) < 1e-15, "cosine: T_max/2 is the midpoint (%.17g)",
           eng_sched_lr(&cs, 4));
    EXPECT(fabs(eng_sched_lr(&cs, 8) - 0.01) < 1e-15, "cosine: T_max is eta_min (%.17g)",
           eng_sched_lr(&cs, 8));
}

/* A real model through eng_train_epoch / eng_evaluate: linear 4 -> 16,
 * batch norm (its running statistics are buffers), relu, linear 16 -> 3, on
 * 96 points labelled by a fixed linear rule. */
#define TR_N 96
#define TR_D 4
#define TR_C 3

static void tr_data(float *x /* (TR_N, TR_D) */, int32_t *y /* (TR_N) */) {
    for (int n = 0; n < TR_N; n++) {
        double s[TR_C] = {0};
        for (int d = 0; d < TR_D; d++) {
            x[n * TR_D + d] = (float)at_rng_normal(21, 1, (uint64_t)n, (uint64_t)d);
            for (int c = 0; c < TR_C; c++) s[c] += x[n * TR_D + d] * ((c + d) % 3 - 1.0);
        }
        y[n] = 0;
        for (int c = 1; c < TR_C; c++)
            if (s[c] > s[y[n]]) y[n] = c;
    }
}

static void tr_model(eng_model *m) {
    eng_layer sp[4] = {{.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                       {.kind = ENG_LAYER_BATCHNORM1D, .affine = 1},
                       {.kind = ENG_LAYER_RELU},
                       {.kind = ENG_LAYER_LINEAR, .out_features = TR_C, .bias = 1}};
    at_err err = {0};
    AT_CHECK(eng_model_init(m, sp, 4, (int[]){TR_D}, 1, &err) == 0);
}

/* Train `epochs` epochs; returns the first and last epoch's mean loss. */
static void tr_run(eng_model *m, eng_opt_kind kind, const eng_loss *loss, uint64_t seed, int epochs,
                   double *first, double *last, double *acc) {
    float x[TR_N * TR_D];
    int32_t y[TR_N];
    tr_data(x, y);
    tr_model(m);
    eng_model_init_params(m, seed);
    /* non-trivial running statistics: they must not move */
    for (int t = 0; t < m->n_tensors; t++)
        if (!m->tensors[t].trainable)
            for (size_t i = 0; i < m->tensors[t].numel; i++)
                m->params[m->tensors[t].off + i] = 0.75f + 0.125f * (float)i;
    eng_workspace ws;
    eng_workspace_init(&ws, m, 16, ENG_F32);
    eng_optim opt;
    eng_optim_init(&opt, m, kind, 0.05, 0.9, 0, 1e-4, 0.9, 0.999, 1e-8);
    float *g = malloc(m->n_params * sizeof *g);
    eng_sched sc = {ENG_SCHED_COSINE, kind == ENG_OPT_SGD ? 0.1 : 0.03, 0, 0, 0, epochs};
    for (int e = 0; e < epochs; e++) {
        double l = eng_train_epoch(m, &ws, &opt, eng_sched_lr(&sc, e), loss, g, x, y, TR_N, 16,
                                   seed, e, acc);
        if (e == 0) *first = l;
        *last = l;
    }
    /* eng_evaluate: its loss is the mean cross-entropy of its logits */
    float logits[TR_N * TR_C];
    double el = 0, ea = 0, ref = 0;
    long correct = 0;
    eng_evaluate(m, &ws, x, y, TR_N, &el, &ea, logits);
    for (int n = 0; n < TR_N; n++) {
        const float *z = logits + n * TR_C;
        double mx = z[0], s = 0;
        int best = 0;
        for (int c = 1; c < TR_C; c++) {
            mx = fmax(mx, z[c]);
            if (z[c] > z[best]) best = c;
        }
        for (int c = 0; c < TR_C; c++) s += exp(z[c] - mx);
        ref += (log(s) + mx - z[y[n]]) / TR_N;
        correct += best == y[n];
    }
    EXPECT(fabs(el - ref) < 1e-5, "eng_evaluate loss %.8f, mean cross-entropy of its logits %.8f",
           el, ref);
    EXPECT(ea == (double)correct / TR_N, "eng_evaluate accuracy %g, argmax count %ld", ea, correct);
    for (int t = 0; t < m->n_tensors; t++)
        if (!m->tensors[t].trainable)
            for (size_t i = 0; i < m->tensors[t].numel; i++)
                EXPECT(m->params[m->tensors[t].off + i] == 0.75f + 0.125f * (float)i,
                       "%s[%zu] is a buffer but moved", m->tensors[t].name, i);
    free(g);
    eng_optim_free(&opt);
    eng_workspace_free(&ws);
}

static void test_train_epoch(void) {
    const eng_loss xent = {ENG_LOSS_XENT, 0.1}, mse = {ENG_LOSS_MSE, 0};
    const struct {
        eng_opt_kind kind;
        const eng_loss *loss;
        const char *name;
    } runs[3] = {{ENG_OPT_SGD, &xent, "sgd/xent"},
                 {ENG_OPT_ADAMW, &xent, "adamw/xent"},
                 {ENG_OPT_ADAM, &mse, "adam/mse"}};
    for (int r = 0; r < 3; r++) {
        eng_model a, b, c;
        double f1, l1, a1, f2, l2, a2, f3, l3, a3;
        tr_run(&a, runs[r].kind, runs[r].loss, 5, 60, &f1, &l1, &a1);
        tr_run(&b, runs[r].kind, runs[r].loss, 5, 60, &f2, &l2, &a2);
        tr_run(&c, runs[r].kind, runs[r].loss, 6, 60, &f3, &l3, &a3);
        printf("%s: loss %.4f -> %.4f, training accuracy %.3f\n", runs[r].name, f1, l1, a1);
        EXPECT(l1 < 0.5 * f1, "%s: loss %.4f -> %.4f did not halve", runs[r].name, f1, l1);
        EXPECT(a1 >= 0.9, "%s: training accuracy %.3f < 0.9", runs[r].name, a1);
        EXPECT(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0 && l1 == l2,
               "%s: same seed, different parameters", runs[r].name);
        EXPECT(memcmp(a.params, c.params, a.n_params * sizeof(float)) != 0,
               "%s: seeds 5 and 6 gave the same parameters", runs[r].name);
        eng_model_free(&a);
        eng_model_free(&b);
        eng_model_free(&c);
    }
}

/* --dump: the cases as text for tests/check_train_optim_torch.py. */
static int dump(void) {
    printf("np %d steps %d\n", NP, NSTEPS);
    printf("trainable");
    for (int i = 0; i < NP; i++) printf(" %d", i < 6 || i >= 9);
    printf("\np0");
    for (int i = 0; i < NP; i++) printf(" %.9g", (double)p0(i));
    for (int s = 0; s < NSTEPS; s++) {
        printf("\ngrad %d %.17g", s, step_lr(s));
        for (int i = 0; i < NP; i++) printf(" %.9g", (double)grad(s, i));
    }
    printf("\n");
    for (int k = 0; k < NCASES; k++) {
        const optim_case *c = &cases[k];
        float p[NP];
        run_engine(c, p);
        printf("case %s %s %.17g %d %.17g %.17g %.17g %.17g", c->name,
               c->kind == ENG_OPT_SGD    ? "sgd"
               : c->kind == ENG_OPT_ADAM ? "adam"
                                         : "adamw",
               c->momentum, c->nesterov, c->wd, c->b1, c->b2, c->eps);
        for (int i = 0; i < NP; i++) printf(" %.9g", (double)p[i]);
        printf("\n");
    }
    eng_sched st = {ENG_SCHED_STEP, 0.1, 3, 0.5, 0, 0};
    eng_sched cs = {ENG_SCHED_COSINE, 0.2, 0, 0, 0.01, 8};
    printf("steplr 0.1 3 0.5");
    for (int e = 0; e < 12; e++) printf(" %.17g", eng_sched_lr(&st, e));
    printf("\ncosine 0.2 8 0.01");
    for (int e = 0; e < 12; e++) printf(" %.17g", eng_sched_lr(&cs, e));
    printf("\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--dump") == 0) return dump();
    test_optimizers();
    test_schedules();
    test_train_epoch();
    return check_report("test_optim");
}
