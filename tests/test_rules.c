/* test_rules.c — the rule family (rules.c) against an independent oracle:
 * a float64 interpreter of small sequential nets that lists every linear,
 * conv and pool layer as explicit edges (out j, in i, weight w) and runs each
 * rule's backward as a plain loop over them. Plus the known properties:
 * LRP-epsilon -> x * gradient on zero-bias ReLU nets, LRP conservation (with
 * the biases' and stabiliser's share accounted for, through a residual add),
 * z+ and alpha-beta conservation, DeepLIFT completeness and the linear-model
 * closed form, Grad-CAM against the oracle's gradients and a bilinear
 * upsampling written out, plan refusals, and determinism of row splits,
 * column splits and engine batch sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

#include "check.h"

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(11, 91, k, 0) - 1.0; }

static void build(eng_model *m, const eng_layer *specs, int n, const int *shape, int nd,
                  uint64_t seed, int zero_bias) {
    at_err err = {0};
    int rc = eng_model_init(m, specs, n, shape, nd, &err);
    AT_CHECK(rc == 0);
    eng_model_init_params(m, seed);
    if (zero_bias)
        for (int t = 0; t < m->n_tensors; t++)
            if (strstr(m->tensors[t].name, ".bias"))
                memset(m->params + m->tensors[t].off, 0, m->tensors[t].numel * sizeof(float));
}

/* Run a planned method over rows [0, R) split at R1 (two units, row0
 * shifted), columns split into [0, 0) and [0, n), engine cap `cap`:
 * partial (R, D) (the folded accumulator) and scores. */
static void run_rows(const mth_spec *s, const eng_model *m, const float *x, const float *b,
                     const int32_t *t, int R, int R1, int cap, double *acc, float *scores) {
    const int D = m->in_features;
    mth_scratch sc;
    mth_scratch_init(&sc, m, cap);
    memset(acc, 0, sizeof(double) * (size_t)R * D);
    mth_rows a = {.x = x, .baseline = b, .target = t, .R = R1, .row0 = 0};
    mth_rows z = {
        .x = x + (size_t)R1 * D, .baseline = b, .target = t + R1, .R = R - R1, .row0 = R1};
    mth_run_unit(s, m, &sc, &a, 0, 0, acc); /* an empty column block adds nothing */
    mth_run_unit(s, m, &sc, &a, 0, s->n_cols, acc);
    mth_run_unit(s, m, &sc, &z, 0, s->n_cols, acc + (size_t)R1 * D);
    mth_rows all = {.x = x, .baseline = b, .target = t, .R = R};
    mth_finalize(s, m, &sc, &all, acc, scores);
    mth_scratch_free(&sc);
}

static void run_simple(const mth_spec *s, const eng_model *m, const float *x, const float *b,
                       const int32_t *t, int R, float *scores) {
    double *acc = malloc(sizeof(double) * (size_t)R * m->in_features);
    run_rows(s, m, x, b, t, R, R, 64, acc, scores);
    free(acc);
}

/* ------------------------------------------------------------ the oracle */

typedef enum {
    OR_GRAD,
    OR_GBP,
    OR_DECONV,
    OR_LRP_EPS,
    OR_LRP_GAMMA,
    OR_LRP_ZPLUS,
    OR_LRP_AB,
    OR_DEEPLIFT
} or_rule;

typedef struct {
    int n, *j, *i;
    double *w;
} edges;

typedef struct {
    const eng_model *m;
    edges e[16];
    double *bias[16]; /* (out_numel) or NULL */
} oracle;

static void edge_add(edges *e, int j, int i, double w) {
    e->j = realloc(e->j, sizeof(int) * (e->n + 1));
    e->i = realloc(e->i, sizeof(int) * (e->n + 1));
    e->w = realloc(e->w, sizeof(double) * (e->n + 1));
    e->j[e->n] = j;
    e->i[e->n] = i;
    e->w[e->n] = w;
    e->n++;
}

/* Edges of every affine layer, written from PyTorch's definitions. */
static void oracle_init(oracle *o, const eng_model *m) {
    memset(o, 0, sizeof *o);
    o->m = m;
    AT_CHECK(m->n_layers <= 16);
    for (int l = 0; l < m->n_layers; l++) {
        const eng_layer *L = &m->layers[l];
        const eng_geom2d *g = &L->g;
        edges *e = &o->e[l];
        const float *W = L->n_tensors ? m->params + m->tensors[L->tensor0].off : NULL;
        const float *B = L->n_tensors > 1 ? m->params + m->tensors[L->tensor0 + 1].off : NULL;
        if (B) o->bias[l] = calloc(L->out_numel, sizeof(double));
        switch (L->kind) {
        case ENG_LAYER_LINEAR: {
            int IC = (int)L->in_numel, OC = L->out_features;
            for (int j = 0; j < OC; j++) {
                for (int i = 0; i < IC; i++) edge_add(e, j, i, W[j * IC + i]);
                if (B) o->bias[l][j] = B[j];
            }
            break;
        }
        case ENG_LAYER_CONV2D:
            for (int oc = 0; oc < g->OC; oc++)
                for (int oh = 0; oh < g->OH; oh++)
                    for (int ow = 0; ow < g->OW; ow++) {
                        int j = (oc * g->OH + oh) * g->OW + ow;
                        if (B) o->bias[l][j] = B[oc];
                        for (int c = 0; c < g->C; c++)
                            for (int kh = 0; kh < g->KH; kh++)
                                for (int kw = 0; kw < g->KW; kw++) {
                                    int ih = oh * g->SH - g->PH + kh * g->DH;
                                    int iw = ow * g->SW - g->PW + kw * g->DW;
                                    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                                    edge_add(e, j, (c * g->H + ih) * g->W + iw,
                                             W[((oc * g->C + c) * g->KH + kh) * g->KW + kw]);
                                }
                    }
            break;
        case ENG_LAYER_AVGPOOL2D: /* tests use no padding */
            AT_CHECK(g->PH == 0 && g->PW == 0);
            for (int c = 0; c < g->C; c++)
                for (int oh = 0; oh < g->OH; oh++)
                    for (int ow = 0; ow < g->OW; ow++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++)
                                edge_add(e, (c * g->OH + oh) * g->OW + ow,
                                         (c * g->H + oh * g->SH + kh) * g->W + ow * g->SW + kw,
                                         1.0 / (g->KH * g->KW));
            break;
        case ENG_LAYER_GAP: {
            int C = L->in_shape[0], HW = L->in_shape[1] * L->in_shape[2];
            for (int c = 0; c < C; c++)
                for (int p = 0; p < HW; p++) edge_add(e, c, c * HW + p, 1.0 / HW);
            break;
        }
        default:
            break;
        }
    }
}

static void oracle_free(oracle *o) {
    for (int l = 0; l < 16; l++) {
        free(o->e[l].j);
        free(o->e[l].i);
        free(o->e[l].w);
        free(o->bias[l]);
    }
}

static int is_affine(eng_layer_kind k) {
    return k == ENG_LAYER_LINEAR || k == ENG_LAYER_CONV2D || k == ENG_LAYER_AVGPOOL2D ||
           k == ENG_LAYER_GAP;
}

/* Forward of one example: act[l] (out_numel), arg[l] max-pool winners. */
static void oracle_forward(const oracle *o, const double *x, double **act, int **arg) {
    const eng_model *m = o->m;
    for (int l = 0; l < m->n_layers; l++) {
        const eng_layer *L = &m->layers[l];
        const double *in = l ? act[l - 1] : x;
        double *out = act[l];
        const int no = (int)L->out_numel;
        if (is_affine(L->kind)) {
            for (int j = 0; j < no; j++) out[j] = o->bias[l] ? o->bias[l][j] : 0.0;
            const edges *e = &o->e[l];
            for (int k = 0; k < e->n; k++) out[e->j[k]] += e->w[k] * in[e->i[k]];
        } else if (L->kind == ENG_LAYER_RELU) {
            for (int j = 0; j < no; j++) out[j] = in[j] > 0 ? in[j] : 0.0;
        } else if (L->kind == ENG_LAYER_FLATTEN) {
            memcpy(out, in, sizeof(double) * no);
        } else if (L->kind == ENG_LAYER_MAXPOOL2D) {
            const eng_geom2d *g = &L->g;
            AT_CHECK(g->PH == 0 && g->PW == 0);
            for (int c = 0; c < g->C; c++)
                for (int oh = 0; oh < g->OH; oh++)
                    for (int ow = 0; ow < g->OW; ow++) {
                        int j = (c * g->OH + oh) * g->OW + ow, best = -1;
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                int i = (c * g->H + oh * g->SH + kh) * g->W + ow * g->SW + kw;
                                if (best < 0 || in[i] > in[best]) best = i;
                            }
                        out[j] = in[best];
                        arg[l][j] = best;
                    }
        } else {
            AT_CHECK(0 && "oracle: layer kind");
        }
    }
}

/* One example through rule r: the input-level result (gradient, modified
 * gradient, LRP relevance, or DeepLIFT multiplier) in res (D); the output
 * gradient/relevance of every layer in gout[l] (out_numel). x0: DeepLIFT's
 * baseline. f: the target logit. */
static double oracle_rule(const oracle *o, or_rule r, const double *x, const double *x0, int target,
                          double eps, double gamma, double alpha, double beta, double *res,
                          double **gout) {
    const eng_model *m = o->m;
    const int n = m->n_layers;
    double *act[16] = {0}, *act0[16] = {0};
    int *arg[16] = {0}, *arg0[16] = {0};
    AT_CHECK(n >= 1 && n <= 16);
    for (int l = 0; l < n; l++) {
        act[l] = calloc(m->layers[l].out_numel, sizeof(double));
        act0[l] = calloc(m->layers[l].out_numel, sizeof(double));
        arg[l] = calloc(m->layers[l].out_numel, sizeof(int));
        arg0[l] = calloc(m->layers[l].out_numel, sizeof(int));
    }
    oracle_forward(o, x, act, arg);
    if (x0) oracle_forward(o, x0, act0, arg0);
    const double f = act[n - 1][target];
    for (int l = 0; l < n; l++) memset(gout[l], 0, sizeof(double) * m->layers[l].out_numel);
    gout[n - 1][target] = r >= OR_LRP_EPS && r <= OR_LRP_AB ? f : 1.0;
    for (int l = n - 1; l >= 0; l--) {
        const eng_layer *L = &m->layers[l];
        const int ni = (int)L->in_numel, no = (int)L->out_numel;
        const double *a = l ? act[l - 1] : x, *a0 = x0 ? (l ? act0[l - 1] : x0) : NULL;
        const double *go = gout[l];
        double *gi = l ? gout[l - 1] : res;
        memset(gi, 0, sizeof(double) * ni);
        const edges *e = &o->e[l];
        if (is_affine(L->kind)) {
            const int lrp = r >= OR_LRP_EPS && r <= OR_LRP_AB;
            const int pool = L->kind == ENG_LAYER_AVGPOOL2D || L->kind == ENG_LAYER_GAP;
            if (!lrp) { /* gradient: every non-LRP rule */
                for (int k = 0; k < e->n; k++) gi[e->i[k]] += e->w[k] * go[e->j[k]];
            } else if (r != OR_LRP_AB || pool) {
                double *z = calloc(no, sizeof(double));
                or_rule rr = pool ? OR_LRP_EPS : r;
                for (int j = 0; j < no; j++) {
                    double b = o->bias[l] ? o->bias[l][j] : 0.0;
                    z[j] = rr == OR_LRP_ZPLUS   ? 0.0
                           : rr == OR_LRP_GAMMA ? b + gamma * fmax(b, 0)
                                                : b;
                }
                for (int k = 0; k < e->n; k++) {
                    double w = e->w[k];
                    w = rr == OR_LRP_ZPLUS   ? fmax(w, 0)
                        : rr == OR_LRP_GAMMA ? w + gamma * fmax(w, 0)
                                             : w;
                    z[e->j[k]] += a[e->i[k]] * w;
                }
                for (int k = 0; k < e->n; k++) {
                    double w = e->w[k];
                    w = rr == OR_LRP_ZPLUS   ? fmax(w, 0)
                        : rr == OR_LRP_GAMMA ? w + gamma * fmax(w, 0)
                                             : w;
                    double zj = z[e->j[k]];
                    gi[e->i[k]] += a[e->i[k]] * w * go[e->j[k]] / (zj + (zj >= 0 ? eps : -eps));
                }
                free(z);
            } else { /* alpha-beta */
                double *zp = calloc(no, sizeof(double)), *zn = calloc(no, sizeof(double));
                for (int k = 0; k < e->n; k++) {
                    double c = a[e->i[k]] * e->w[k];
                    if (c > 0)
                        zp[e->j[k]] += c;
                    else
                        zn[e->j[k]] += c;
                }
                for (int k = 0; k < e->n; k++) {
                    double c = a[e->i[k]] * e->w[k];
                    int j = e->j[k];
                    if (c > 0 && zp[j] != 0) gi[e->i[k]] += alpha * c / zp[j] * go[j];
                    if (c < 0 && zn[j] != 0) gi[e->i[k]] -= beta * c / zn[j] * go[j];
                }
                free(zp);
                free(zn);
            }
        } else if (L->kind == ENG_LAYER_RELU) {
            for (int i = 0; i < ni; i++) {
                double g = go[i];
                switch (r) {
                case OR_GRAD:
                    gi[i] = a[i] > 0 ? g : 0.0;
                    break;
                case OR_GBP:
                    gi[i] = a[i] > 0 && g > 0 ? g : 0.0;
                    break;
                case OR_DECONV:
                    gi[i] = g > 0 ? g : 0.0;
                    break;
                case OR_DEEPLIFT: {
                    double dx = a[i] - a0[i];
                    gi[i] =
                        fabs(dx) < 1e-7 ? (a[i] > 0 ? g : 0.0) : g * (act[l][i] - act0[l][i]) / dx;
                    break;
                }
                default:
                    gi[i] = g;
                    break; /* LRP: pass-through */
                }
            }
        } else if (L->kind == ENG_LAYER_FLATTEN) {
            memcpy(gi, go, sizeof(double) * ni);
        } else if (L->kind == ENG_LAYER_MAXPOOL2D) {
            if (r != OR_DEEPLIFT) {
                for (int j = 0; j < no; j++) gi[arg[l][j]] += go[j];
            } else { /* Captum's rule */
                double *u = calloc(ni, sizeof(double));
                for (int j = 0; j < no; j++) {
                    double y = act[l][j], y0 = act0[l][j], mx = fmax(y, y0);
                    u[arg[l][j]] += go[j] * (mx - y0);
                    u[arg0[l][j]] += go[j] * (y - mx);
                }
                double *gr = calloc(ni, sizeof(double));
                for (int j = 0; j < no; j++) gr[arg[l][j]] += go[j];
                for (int i = 0; i < ni; i++) {
                    double dx = a[i] - a0[i];
                    gi[i] = fabs(dx) < 1e-7 ? gr[i] : u[i] / dx;
                }
                free(u);
                free(gr);
            }
        }
    }
    for (int l = 0; l < n; l++) {
        free(act[l]);
        free(act0[l]);
        free(arg[l]);
        free(arg0[l]);
    }
    return f;
}

/* Max |got - want| over max |want|. */
static double normwise(const float *got, const double *want, int n) {
    double d = 0.0, s = 0.0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)got[i] - want[i]));
        s = fmax(s, fabs(want[i]));
    }
    return d / (s > 0 ? s : 1.0);
}

/* The tiny CNN: conv, relu, maxpool, conv, relu, avgpool (or GAP), flatten,
 * linear, relu, linear over (2, 8, 8). */
static int tiny_cnn(eng_layer *sp, int gap, int maxpool) {
    int n = 0;
    sp[n++] = (eng_layer){.kind = ENG_LAYER_CONV2D,
                          .out_features = 3,
                          .bias = 1,
                          .kernel = {3, 3},
                          .padding = {1, 1}};
    sp[n++] = (eng_layer){.kind = ENG_LAYER_RELU};
    if (maxpool)
        sp[n++] = (eng_layer){.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}};
    else
        sp[n++] = (eng_layer){.kind = ENG_LAYER_AVGPOOL2D, .kernel = {2, 2}};
    sp[n++] = (eng_layer){.kind = ENG_LAYER_CONV2D,
                          .out_features = 4,
                          .bias = 1,
                          .kernel = {3, 3},
                          .padding = {1, 1}};
    sp[n++] = (eng_layer){.kind = ENG_LAYER_RELU};
    if (gap) {
        sp[n++] = (eng_layer){.kind = ENG_LAYER_GAP};
    } else {
        sp[n++] = (eng_layer){.kind = ENG_LAYER_AVGPOOL2D, .kernel = {2, 2}};
        sp[n++] = (eng_layer){.kind = ENG_LAYER_FLATTEN};
    }
    sp[n++] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1};
    sp[n++] = (eng_layer){.kind = ENG_LAYER_RELU};
    sp[n++] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1};
    return n;
}

static int tiny_mlp(eng_layer *sp, int C) {
    sp[0] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1};
    sp[1] = (eng_layer){.kind = ENG_LAYER_RELU};
    sp[2] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1};
    sp[3] = (eng_layer){.kind = ENG_LAYER_RELU};
    sp[4] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1};
    return 5;
}

typedef struct {
    const char *name;
    mth_spec s;
    or_rule r;
} rule_case;

static int rule_cases(rule_case *rc, double eps) {
    int n = 0;
    rc[n++] = (rule_case){"guided_backprop", {.kind = MTH_GUIDED_BACKPROP}, OR_GBP};
    rc[n++] = (rule_case){"deconvolution", {.kind = MTH_DECONVOLUTION}, OR_DECONV};
    rc[n++] = (rule_case){"deeplift", {.kind = MTH_DEEPLIFT}, OR_DEEPLIFT};
    rc[n++] = (rule_case){"lrp epsilon",
                          {.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = eps},
                          OR_LRP_EPS};
    rc[n++] = (rule_case){
        "lrp gamma",
        {.kind = MTH_LRP, .lrp_rule = MTH_LRP_GAMMA, .lrp_epsilon = eps, .lrp_gamma = 0.25},
        OR_LRP_GAMMA};
    rc[n++] = (rule_case){"lrp zplus",
                          {.kind = MTH_LRP, .lrp_rule = MTH_LRP_ZPLUS, .lrp_epsilon = eps},
                          OR_LRP_ZPLUS};
    rc[n++] = (rule_case){"lrp alpha2 beta1",
                          {.kind = MTH_LRP,
                           .lrp_rule = MTH_LRP_ALPHA_BETA,
                           .lrp_epsilon = eps,
                           .lrp_alpha = 2.0,
                           .lrp_beta = 1.0},
                          OR_LRP_AB};
    rc[n++] = (rule_case){"lrp alpha1 beta0",
                          {.kind = MTH_LRP,
                           .lrp_rule = MTH_LRP_ALPHA_BETA,
                           .lrp_epsilon = eps,
                           .lrp_alpha = 1.0,
                           .lrp_beta = 0.0},
                          OR_LRP_AB};
    return n;
}

/* Every rule on a model against the oracle, row by row. */
static void check_vs_oracle(const char *mname, const eng_model *m, const float *x, const float *b,
                            const int32_t *t, int R, double tol) {
    const int D = m->in_features;
    rule_case rc[8];
    int nc = rule_cases(rc, 1e-2);
    oracle o;
    oracle_init(&o, m);
    float *scores = malloc(sizeof(float) * (size_t)R * D);
    double *want = malloc(sizeof(double) * (size_t)R * D), xd[512], bd[512];
    double *gout[16];
    for (int l = 0; l < m->n_layers; l++) gout[l] = malloc(sizeof(double) * m->layers[l].out_numel);
    for (int c = 0; c < nc; c++) {
        mth_spec s = rc[c].s;
        s.D = D;
        at_err err = {0};
        EXPECT(mth_plan(&s, m, &err) == 0, "%s plan on %s: %s", rc[c].name, mname, err.msg);
        EXPECT(s.n_cols == 1 && s.width == D, "%s: one column of width D", rc[c].name);
        run_simple(&s, m, x, b, t, R, scores);
        for (int d = 0; d < D; d++) bd[d] = b[d];
        for (int r = 0; r < R; r++) {
            for (int d = 0; d < D; d++) xd[d] = x[r * D + d];
            double *w = want + (size_t)r * D;
            oracle_rule(&o, rc[c].r, xd, rc[c].r == OR_DEEPLIFT ? bd : NULL, t[r], 1e-2, 0.25,
                        s.lrp_alpha, s.lrp_beta, w, gout);
            if (rc[c].r == OR_DEEPLIFT)
                for (int d = 0; d < D; d++) w[d] *= xd[d] - bd[d];
        }
        double e = normwise(scores, want, R * D);
        EXPECT(e < tol, "%s on %s vs the float64 oracle: %.3g", rc[c].name, mname, e);
        printf("  %-18s %-10s vs oracle: %.2e\n", rc[c].name, mname, e);
        mth_spec_free(&s);
    }
    for (int l = 0; l < m->n_layers; l++) free(gout[l]);
    free(scores);
    free(want);
    oracle_free(&o);
}

static void test_vs_oracle(void) {
    eng_layer sp[12];
    eng_model m;
    const int R = 5;
    int32_t t[5] = {0, 2, 1, 2, 0};
    float x[5 * 128], b[128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)urand(i);
    for (int d = 0; d < 128; d++) b[d] = 0.3f * (float)urand(7000 + d);
    for (int variant = 0; variant < 3; variant++) {
        int n = tiny_cnn(sp, variant == 1, variant != 2);
        build(&m, sp, n, (int[]){2, 8, 8}, 3, 21 + variant, 0);
        const char *names[] = {"cnn", "cnn-gap", "cnn-avg"};
        check_vs_oracle(names[variant], &m, x, b, t, R, 2e-5);
        eng_model_free(&m);
    }
    int n = tiny_mlp(sp, 3);
    build(&m, sp, n, (int[]){12}, 1, 33, 0);
    check_vs_oracle("mlp", &m, x, b, t, R, 2e-5);
    eng_model_free(&m);
}

/* LRP-epsilon with eps -> 0 on a zero-bias ReLU net is gradient x input. */
static void test_lrp_identity(void) {
    eng_layer sp[12];
    const int R = 6;
    int32_t t[6] = {0, 1, 2, 0, 1, 2};
    float x[6 * 128], s1[6 * 128], s2[6 * 128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)urand(100 + i);
    for (int variant = 0; variant < 2; variant++) {
        eng_model m;
        int n = variant ? tiny_cnn(sp, 1, 1) : tiny_mlp(sp, 3);
        if (variant)
            build(&m, sp, n, (int[]){2, 8, 8}, 3, 5, 1);
        else
            build(&m, sp, n, (int[]){12}, 1, 5, 1);
        const int D = m.in_features;
        at_err err = {0};
        mth_spec lrp = {.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = 1e-9, .D = D};
        mth_spec ixg = {.kind = MTH_INPUT_X_GRADIENT, .D = D};
        EXPECT(mth_plan(&lrp, &m, &err) == 0 && mth_plan(&ixg, &m, &err) == 0, "%s", err.msg);
        run_simple(&lrp, &m, x, NULL, t, R, s1);
        run_simple(&ixg, &m, x, NULL, t, R, s2);
        double worst = 0.0;
        for (int r = 0; r < R; r++) {
            double d = 0.0, s = 0.0;
            for (int i = 0; i < D; i++) {
                d = fmax(d, fabs((double)s1[r * D + i] - s2[r * D + i]));
                s = fmax(s, fabs((double)s2[r * D + i]));
            }
            worst = fmax(worst, d / s);
        }
        EXPECT(worst < 1e-4, "LRP-eps(1e-9) vs x * grad on a zero-bias %s: %.3g",
               variant ? "cnn" : "mlp", worst);
        printf("  lrp eps=1e-9 vs x*grad (%s): %.2e\n", variant ? "cnn" : "mlp", worst);
        mth_spec_free(&lrp);
        mth_spec_free(&ixg);
        eng_model_free(&m);
    }
}

/* LRP conservation. The relevance a linear/conv/pool/add layer passes down
 * is sum_j R_j (z_j - b_j) / (z_j + eps sign z_j): the rest, R_j (b_j + eps
 * sign z_j) / (...), is absorbed. Summed over layers (from the engine's own
 * layer outputs and relevances), sum R_input = f - absorbed. A residual
 * block (add) is included; its split absorbs R eps sign / (...). With zero
 * biases the leak is bounded by eps sum_j |R_j| / |z_j|. */
static void test_lrp_conservation(void) {
    const int D = 12, R = 4;
    eng_layer sp[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_ADD, .n_src = 2, .src = {3, 1}},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
    int32_t t[4] = {0, 1, 2, 1};
    float x[48], sc_[48];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(300 + i);
    for (int zb = 0; zb < 2; zb++)
        for (int ie = 0; ie < 3; ie++) {
            const double eps = ie == 0 ? 1e-6 : ie == 1 ? 1e-3 : 0.1;
            eng_model m;
            build(&m, sp, 6, (int[]){D}, 1, 77, zb);
            mth_spec s = {.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = eps, .D = D};
            at_err err = {0};
            EXPECT(mth_plan(&s, &m, &err) == 0, "%s", err.msg);
            mth_scratch sc;
            mth_scratch_init(&sc, &m, 8);
            double acc[48] = {0};
            mth_rows rows = {.x = x, .target = t, .R = R};
            mth_run_unit(&s, &m, &sc, &rows, 0, 1, acc);
            mth_finalize(&s, &m, &sc, &rows, acc, sc_);
            /* the engine still holds this batch's activations and relevances */
            for (int r = 0; r < R; r++) {
                double absorbed = 0.0, bound = 0.0;
                for (int l = 0; l < m.n_layers; l++) {
                    const eng_layer *L = &m.layers[l];
                    if (L->kind != ENG_LAYER_LINEAR && L->kind != ENG_LAYER_ADD) continue;
                    const int no = (int)L->out_numel;
                    const float *z = (const float *)eng_ws_act(&sc.ws, l) + (size_t)r * no;
                    const float *Rj = (const float *)eng_ws_grad(&sc.ws, l) + (size_t)r * no;
                    const float *bias =
                        L->n_tensors > 1 ? m.params + m.tensors[L->tensor0 + 1].off : NULL;
                    for (int j = 0; j < no; j++) {
                        double e = z[j] >= 0 ? eps : -eps, bj = bias ? bias[j] : 0.0;
                        absorbed += Rj[j] * (bj + e) / (z[j] + e);
                        bound += fabs(Rj[j]) * eps / fabs(z[j] + e);
                    }
                }
                const float *lg = (const float *)eng_ws_act(&sc.ws, m.n_layers - 1);
                double f = lg[r * 3 + t[r]], sum = 0.0, mag = 0.0;
                for (int d = 0; d < D; d++) {
                    sum += sc_[r * D + d];
                    mag += fabs(sc_[r * D + d]);
                }
                EXPECT(fabs(sum - (f - absorbed)) <= 1e-5 * (mag + fabs(f)),
                       "LRP eps=%g bias=%d row %d: sum R %.9g vs f - absorbed %.9g", eps, !zb, r,
                       sum, f - absorbed);
                if (zb)
                    EXPECT(fabs(sum - f) <= bound + 1e-5 * (mag + fabs(f)),
                           "LRP eps=%g zero bias row %d: |sum R - f| = %.3g > bound %.3g", eps, r,
                           fabs(sum - f), bound);
                if (zb && r == 0)
                    printf("  lrp eps=%-6g zero-bias leak |sum R - f| = %.2e (bound %.2e)\n", eps,
                           fabs(sum - f), bound);
            }
            mth_scratch_free(&sc);
            mth_spec_free(&s);
            eng_model_free(&m);
        }
}

/* z+ and alpha-beta conserve on zero-bias ReLU nets with inputs >= 0. */
static void test_lrp_positive_conservation(void) {
    eng_layer sp[12];
    const int R = 5;
    int32_t t[5] = {0, 1, 2, 1, 0};
    float x[5 * 128], s1[5 * 128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)(0.5 * (urand(900 + i) + 1.0));
    for (int variant = 0; variant < 2; variant++) {
        eng_model m;
        int n = variant ? tiny_cnn(sp, 0, 1) : tiny_mlp(sp, 3);
        if (variant)
            build(&m, sp, n, (int[]){2, 8, 8}, 3, 15, 1);
        else
            build(&m, sp, n, (int[]){12}, 1, 15, 1);
        const int D = m.in_features;
        eng_workspace ws;
        eng_workspace_init(&ws, &m, R, ENG_F32);
        const float *lg = eng_model_forward(&m, &ws, x, R);
        mth_spec specs[3] = {
            {.kind = MTH_LRP, .lrp_rule = MTH_LRP_ZPLUS, .lrp_epsilon = 1e-9, .D = D},
            {.kind = MTH_LRP,
             .lrp_rule = MTH_LRP_ALPHA_BETA,
             .lrp_epsilon = 1e-9,
             .lrp_alpha = 2.0,
             .lrp_beta = 1.0,
             .D = D},
            {.kind = MTH_LRP,
             .lrp_rule = MTH_LRP_ALPHA_BETA,
             .lrp_epsilon = 1e-9,
             .lrp_alpha = 1.0,
             .lrp_beta = 0.0,
             .D = D}};
        const char *names[3] = {"zplus", "alpha2beta1", "alpha1beta0"};
        for (int k = 0; k < 3; k++) {
            at_err err = {0};
            EXPECT(mth_plan(&specs[k], &m, &err) == 0, "%s", err.msg);
            run_simple(&specs[k], &m, x, NULL, t, R, s1);
            double worst = 0.0;
            for (int r = 0; r < R; r++) {
                double sum = 0.0, f = lg[r * 3 + t[r]];
                for (int d = 0; d < D; d++) sum += s1[r * D + d];
                worst = fmax(worst, fabs(sum - f) / fabs(f));
            }
            EXPECT(worst < 1e-5, "LRP %s conservation on a zero-bias %s: rel %.3g", names[k],
                   variant ? "cnn" : "mlp", worst);
            printf("  lrp %-11s conservation (%s): %.2e\n", names[k], variant ? "cnn" : "mlp",
                   worst);
            mth_spec_free(&specs[k]);
        }
        eng_workspace_free(&ws);
        eng_model_free(&m);
    }
}

/* DeepLIFT: sum of scores = f(x) - f(b); on a linear model w * (x - b). */
static void test_deeplift(void) {
    eng_layer sp[12];
    const int R = 6;
    int32_t t[6] = {0, 1, 2, 1, 0, 2};
    float x[6 * 128], b[128], s1[6 * 128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)urand(2000 + i);
    for (int d = 0; d < 128; d++) b[d] = 0.5f * (float)urand(2900 + d);
    for (int variant = 0; variant < 6; variant++) {
        eng_model m;
        const char *name;
        if (variant == 5) {
            name = "residual tanh mlp";
            eng_layer res[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                               {.kind = ENG_LAYER_TANH},
                               {.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                               {.kind = ENG_LAYER_RELU},
                               {.kind = ENG_LAYER_ADD, .n_src = 2, .src = {3, 1}},
                               {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
            build(&m, res, 6, (int[]){12}, 1, 46, 0);
        } else if (variant == 0) {
            name = "relu mlp";
            build(&m, sp, tiny_mlp(sp, 3), (int[]){12}, 1, 41, 0);
        } else if (variant == 1) {
            name = "tanh/sigmoid/gelu mlp";
            int n = tiny_mlp(sp, 3);
            sp[1].kind = ENG_LAYER_TANH;
            sp[3].kind = ENG_LAYER_SIGMOID;
            sp[n] = sp[n - 1];
            sp[n - 1] = (eng_layer){.kind = ENG_LAYER_GELU};
            build(&m, sp, n + 1, (int[]){12}, 1, 42, 0);
        } else if (variant == 2) {
            name = "cnn avgpool";
            build(&m, sp, tiny_cnn(sp, 0, 0), (int[]){2, 8, 8}, 3, 43, 0);
        } else if (variant == 3) {
            name = "cnn gap";
            build(&m, sp, tiny_cnn(sp, 1, 0), (int[]){2, 8, 8}, 3, 44, 0);
        } else {
            name = "cnn maxpool";
            build(&m, sp, tiny_cnn(sp, 0, 1), (int[]){2, 8, 8}, 3, 45, 0);
        }
        const int D = m.in_features;
        mth_spec s = {.kind = MTH_DEEPLIFT, .D = D};
        at_err err = {0};
        EXPECT(mth_plan(&s, &m, &err) == 0, "%s", err.msg);
        EXPECT(mth_delta(&s) == MTH_DELTA_DIFF, "deeplift's delta is f(x) - f(b)");
        run_simple(&s, &m, x, b, t, R, s1);
        eng_workspace ws;
        eng_workspace_init(&ws, &m, R, ENG_F32);
        double fb[3];
        const float *lg = eng_model_forward(&m, &ws, b, 1);
        for (int c = 0; c < 3; c++) fb[c] = lg[c];
        lg = eng_model_forward(&m, &ws, x, R);
        double worst = 0.0;
        for (int r = 0; r < R; r++) {
            double sum = 0.0, diff = lg[r * 3 + t[r]] - fb[t[r]];
            for (int d = 0; d < D; d++) sum += s1[r * D + d];
            worst = fmax(worst, fabs(sum - diff) / (fabs(lg[r * 3 + t[r]]) + fabs(fb[t[r]])));
        }
        EXPECT(worst < 1e-5, "DeepLIFT completeness on a %s: rel %.3g", name, worst);
        printf("  deeplift completeness (%s): %.2e\n", name, worst);
        eng_workspace_free(&ws);
        mth_spec_free(&s);
        eng_model_free(&m);
    }
    /* linear model: w_t * (x - b) */
    const int D = 20;
    eng_layer lin = {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1};
    eng_model m;
    build(&m, &lin, 1, (int[]){D}, 1, 47, 0);
    mth_spec s = {.kind = MTH_DEEPLIFT, .D = D};
    at_err err = {0};
    mth_plan(&s, &m, &err);
    run_simple(&s, &m, x, b, t, R, s1);
    double worst = 0.0;
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            double want = (double)m.params[t[r] * D + d] * ((double)x[r * D + d] - b[d]);
            worst = fmax(worst, fabs(s1[r * D + d] - want) / (fabs(want) + 1e-30));
        }
    EXPECT(worst < 1e-6, "DeepLIFT on a linear model vs w (x - b): rel %.3g", worst);
    mth_spec_free(&s);
    eng_model_free(&m);
}

/* Bilinear upsampling of a (h, w) map to (H, W), PyTorch's align_corners=
 * False: source coordinate (i + 1/2) h / H - 1/2 clamped at 0, neighbours
 * floor and floor + 1 clamped to the map. */
static void upsample_ref(const double *in, int h, int w, double *out, int H, int W) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double sy = fmax((y + 0.5) * h / H - 0.5, 0.0), sx = fmax((x + 0.5) * w / W - 0.5, 0.0);
            int y0 = (int)floor(sy), x0 = (int)floor(sx);
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            if (y0 > h - 1) y0 = h - 1;
            if (x0 > w - 1) x0 = w - 1;
            double ly = sy - y0, lx = sx - x0;
            out[y * W + x] = (1 - ly) * ((1 - lx) * in[y0 * w + x0] + lx * in[y0 * w + x1]) +
                             ly * ((1 - lx) * in[y1 * w + x0] + lx * in[y1 * w + x1]);
        }
}

static void test_grad_cam(void) {
    /* the reference upsampling reproduces F.interpolate([a, b] -> 4) =
     * [a, .75a + .25b, .25a + .75b, b] */
    double in2[2] = {1.0, 5.0}, out4[4];
    upsample_ref(in2, 1, 2, out4, 1, 4);
    EXPECT(out4[0] == 1.0 && out4[1] == 2.0 && out4[2] == 4.0 && out4[3] == 5.0,
           "reference bilinear: %g %g %g %g", out4[0], out4[1], out4[2], out4[3]);
    eng_layer sp[12];
    const int R = 4;
    int32_t t[4] = {2, 0, 1, 2};
    float x[4 * 128], s1[4 * 128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)urand(5000 + i);
    struct {
        int net, layer;
    } cases[] = {{0, 0}, {0, 1}, {0, 2}, {0, 4}, {1, 0}, {1, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        eng_model m;
        if (cases[k].net == 0) {
            build(&m, sp, tiny_cnn(sp, 0, 1), (int[]){2, 8, 8}, 3, 61, 0);
        } else { /* (1, 9, 7) -> conv 3x3 valid (3, 7, 5): non-integer scales */
            sp[0] = (eng_layer){
                .kind = ENG_LAYER_CONV2D, .out_features = 3, .bias = 1, .kernel = {3, 3}};
            sp[1] = (eng_layer){.kind = ENG_LAYER_RELU};
            sp[2] = (eng_layer){.kind = ENG_LAYER_GAP};
            sp[3] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1};
            build(&m, sp, 4, (int[]){1, 9, 7}, 3, 62, 0);
        }
        const int D = m.in_features, l = cases[k].layer;
        mth_spec s = {.kind = MTH_GRAD_CAM, .layer = l, .D = D};
        at_err err = {0};
        EXPECT(mth_plan(&s, &m, &err) == 0, "grad_cam plan: %s", err.msg);
        run_simple(&s, &m, x, NULL, t, R, s1);
        oracle o;
        oracle_init(&o, &m);
        double *gout[16], res[128], xd[128], *want = malloc(sizeof(double) * R * D);
        for (int i = 0; i < m.n_layers; i++)
            gout[i] = malloc(sizeof(double) * m.layers[i].out_numel);
        const eng_layer *L = &m.layers[l];
        const int CL = L->out_shape[0], P = L->out_shape[1] * L->out_shape[2];
        const int CI = m.in_shape[0], H = m.in_shape[1], W = m.in_shape[2];
        for (int r = 0; r < R; r++) {
            for (int d = 0; d < D; d++) xd[d] = x[r * D + d];
            oracle_rule(&o, OR_GRAD, xd, NULL, t[r], 0, 0, 0, 0, res, gout);
            /* the layer's activations: forward again in the oracle */
            double *act[16];
            int *arg[16];
            for (int i = 0; i < m.n_layers; i++) {
                act[i] = malloc(sizeof(double) * m.layers[i].out_numel);
                arg[i] = malloc(sizeof(int) * m.layers[i].out_numel);
            }
            oracle_forward(&o, xd, act, arg);
            double cam[128] = {0}, up[128];
            for (int c = 0; c < CL; c++) {
                double a = 0.0;
                for (int p = 0; p < P; p++) a += gout[l][c * P + p] / P;
                for (int p = 0; p < P; p++) cam[p] += a * act[l][c * P + p];
            }
            for (int p = 0; p < P; p++) cam[p] = fmax(cam[p], 0.0);
            upsample_ref(cam, L->out_shape[1], L->out_shape[2], up, H, W);
            for (int c = 0; c < CI; c++)
                for (int p = 0; p < H * W; p++) want[r * D + c * H * W + p] = up[p];
            for (int i = 0; i < m.n_layers; i++) {
                free(act[i]);
                free(arg[i]);
            }
        }
        double e = normwise(s1, want, R * D);
        EXPECT(e < 2e-5, "grad_cam net %d layer %d vs the oracle: %.3g", cases[k].net, l, e);
        printf("  grad_cam net %d layer %d vs oracle: %.2e\n", cases[k].net, l, e);
        for (int i = 0; i < m.n_layers; i++) free(gout[i]);
        free(want);
        oracle_free(&o);
        mth_spec_free(&s);
        eng_model_free(&m);
    }
}

static int has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

static void test_refusals(void) {
    eng_model m;
    at_err err = {0};
    eng_layer sp[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 8, .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "act1"},
                      {.kind = ENG_LAYER_LAYERNORM, .name = "ln", .affine = 1},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
    build(&m, sp, 4, (int[]){6}, 1, 3, 0);
    mth_spec s = {.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = 1e-6, .D = 6};
    EXPECT(mth_plan(&s, &m, &err) == AT_EUSER, "lrp must refuse tanh");
    EXPECT(has(err.msg, "layer 'act1' (#1, tanh): lrp supports linear, conv2d, relu"),
           "lrp refusal: %s", err.msg);
    mth_spec_free(&s);
    at_err_clear(&err);
    s = (mth_spec){.kind = MTH_DEEPLIFT, .D = 6};
    EXPECT(mth_plan(&s, &m, &err) == AT_EUSER, "deeplift must refuse layernorm");
    EXPECT(has(err.msg, "layer 'ln' (#2, layernorm): deeplift supports"), "deeplift: %s", err.msg);
    mth_spec_free(&s);
    at_err_clear(&err);
    s = (mth_spec){.kind = MTH_GRAD_CAM, .layer = 0, .D = 6};
    EXPECT(mth_plan(&s, &m, &err) == AT_EUSER, "grad_cam must refuse a linear layer");
    EXPECT(has(err.msg, "layer 'layers.0' (#0, linear): grad_cam needs a layer with a (C, H, W) "
                        "output, got (8)"),
           "grad_cam: %s", err.msg);
    mth_spec_free(&s);
    at_err_clear(&err);
    s = (mth_spec){.kind = MTH_GRAD_CAM, .layer = 9, .D = 6};
    EXPECT(mth_plan(&s, &m, &err) == AT_EUSER && has(err.msg, "#9"), "grad_cam: %s", err.msg);
    mth_spec_free(&s);
    struct {
        mth_spec s;
        const char *part;
    } bad[] = {
        {{.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = 0.0}, "epsilon"},
        {{.kind = MTH_LRP, .lrp_rule = MTH_LRP_GAMMA, .lrp_epsilon = 1e-6, .lrp_gamma = -1},
         "gamma"},
        {{.kind = MTH_LRP,
          .lrp_rule = MTH_LRP_ALPHA_BETA,
          .lrp_epsilon = 1e-6,
          .lrp_alpha = 2,
          .lrp_beta = 2},
         "alpha - beta = 1"},
        {{.kind = MTH_LRP, .lrp_rule = 0, .lrp_epsilon = 1e-6}, "rule"},
    };
    eng_model_free(&m);
    build(&m, sp, 1, (int[]){6}, 1, 3, 0);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        at_err_clear(&err);
        bad[k].s.D = 6;
        EXPECT(mth_plan(&bad[k].s, &m, &err) == AT_EUSER && has(err.msg, bad[k].part),
               "bad lrp field %zu: %s", k, err.msg);
        mth_spec_free(&bad[k].s);
    }
    eng_model_free(&m);
}

/* Row splits and engine batch sizes give the same bits; every kind. */
static void test_determinism(void) {
    eng_layer sp[12];
    eng_model m;
    build(&m, sp, tiny_cnn(sp, 0, 1), (int[]){2, 8, 8}, 3, 71, 0);
    const int R = 19, D = m.in_features;
    int32_t t[19];
    float *x = malloc(sizeof(float) * R * D), b[128], *s1 = malloc(sizeof(float) * R * D);
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(8000 + i);
    for (int d = 0; d < D; d++) b[d] = 0.2f * (float)urand(9900 + d);
    for (int r = 0; r < R; r++) t[r] = (r * 7) % 3;
    double *a1 = malloc(sizeof(double) * R * D), *a2 = malloc(sizeof(double) * R * D);
    rule_case rc[9];
    int nc = rule_cases(rc, 1e-6);
    rc[nc++] = (rule_case){"grad_cam", {.kind = MTH_GRAD_CAM, .layer = 4}, OR_GRAD};
    for (int c = 0; c < nc; c++) {
        mth_spec s = rc[c].s;
        s.D = D;
        at_err err = {0};
        EXPECT(mth_plan(&s, &m, &err) == 0, "%s", err.msg);
        run_rows(&s, &m, x, b, t, R, R, 64, a1, s1);
        run_rows(&s, &m, x, b, t, R, 8, 7, a2, s1);
        EXPECT(memcmp(a1, a2, sizeof(double) * R * D) == 0,
               "%s: rows split 8 + 11 at cap 7 differ from one unit at cap 64", rc[c].name);
        double nz = 0.0;
        for (int i = 0; i < R * D; i++) nz += fabs(a1[i]);
        EXPECT(nz > 0.0, "%s: all zero", rc[c].name);
        mth_spec_free(&s);
    }
    free(x);
    free(s1);
    free(a1);
    free(a2);
    eng_model_free(&m);
}

/* ------------------------------------------------- the torch cross-check */

static void dump_file(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[2048];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    AT_CHECK(n > 0 && (size_t)n < sizeof path);
    FILE *f = fopen(path, "wb");
    AT_CHECK(f != NULL);
    AT_CHECK(fwrite(p, 1, bytes, f) == bytes);
    fclose(f);
}

/* For tests/check_rules_torch.py: under dir, model "cnn" (tiny_cnn with a
 * maxpool) and model "cam" ((1, 9, 7) -> conv, relu, gap, linear): their
 * tensors (tensors.txt: name numel, params.f32), rows (x.f32, b.f32,
 * t.i32) and each method's scores (<method>.f32). */
static int dump(const char *dir) {
    eng_layer sp[12];
    const int R = 5;
    int32_t t[5] = {0, 2, 1, 2, 0};
    float x[5 * 128], b[128], scores[5 * 128];
    for (int i = 0; i < R * 128; i++) x[i] = (float)urand(i);
    for (int d = 0; d < 128; d++) b[d] = 0.3f * (float)urand(7000 + d);
    for (int net = 0; net < 2; net++) {
        eng_model m;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", dir, net ? "cam" : "cnn");
        if (net == 0) {
            build(&m, sp, tiny_cnn(sp, 0, 1), (int[]){2, 8, 8}, 3, 21, 0);
        } else {
            sp[0] = (eng_layer){
                .kind = ENG_LAYER_CONV2D, .out_features = 3, .bias = 1, .kernel = {3, 3}};
            sp[1] = (eng_layer){.kind = ENG_LAYER_RELU};
            sp[2] = (eng_layer){.kind = ENG_LAYER_GAP};
            sp[3] = (eng_layer){.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1};
            build(&m, sp, 4, (int[]){1, 9, 7}, 3, 62, 0);
        }
        const int D = m.in_features;
        char path[1100];
        snprintf(path, sizeof path, "%s/tensors.txt", sub);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        for (int k = 0; k < m.n_tensors; k++)
            fprintf(f, "%s %zu\n", m.tensors[k].name, m.tensors[k].numel);
        fclose(f);
        dump_file(sub, "params.f32", m.params, m.n_params * sizeof(float));
        dump_file(sub, "x.f32", x, sizeof(float) * R * D);
        dump_file(sub, "b.f32", b, sizeof(float) * D);
        dump_file(sub, "t.i32", t, sizeof t);
        rule_case rc[12];
        int nc = net ? 0 : rule_cases(rc, 1e-2);
        const char *names[12] = {"guided_backprop",  "deconvolution",   "deeplift",
                                 "lrp_epsilon",      "lrp_gamma",       "lrp_zplus",
                                 "lrp_alpha2_beta1", "lrp_alpha1_beta0"};
        int cams[2] = {net ? 0 : 2, net ? 1 : 4};
        for (int k = 0; k < 2; k++) {
            rc[nc] = (rule_case){"grad_cam", {.kind = MTH_GRAD_CAM, .layer = cams[k]}, OR_GRAD};
            names[nc++] = k ? "grad_cam_b" : "grad_cam_a";
        }
        for (int c = 0; c < nc; c++) {
            mth_spec s = rc[c].s;
            s.D = D;
            at_err err = {0};
            AT_CHECK(mth_plan(&s, &m, &err) == 0);
            run_simple(&s, &m, x, b, t, R, scores);
            char name[128];
            snprintf(name, sizeof name, "%s.f32", names[c]);
            dump_file(sub, name, scores, sizeof(float) * R * D);
            mth_spec_free(&s);
        }
        eng_model_free(&m);
    }
    return 0;
}

int main(int argc, char **argv) {
    eng_set_threads(1);
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump(argv[2]);
    test_refusals();
    test_vs_oracle();
    test_lrp_identity();
    test_lrp_conservation();
    test_lrp_positive_conservation();
    test_deeplift();
    test_grad_cam();
    test_determinism();
    return check_report("test_rules");
}
