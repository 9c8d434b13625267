/* methods.c — the method kinds dispatched to their families (mth_family.h),
 * and what every family shares: scratch, buffers, folds, forward passes of
 * target logits, patch groups. See methods.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

typedef enum { FAM_GRAD = 1, FAM_RULES, FAM_PERT, FAM_MASKS } family;

static family family_of(mth_kind k) {
    switch (k) {
    case MTH_SALIENCY: case MTH_INPUT_X_GRADIENT: case MTH_INTEGRATED_GRADIENTS:
    case MTH_EXPECTED_GRADIENTS: case MTH_GRADIENT_SHAP:
        return FAM_GRAD;
    case MTH_DEEPLIFT: case MTH_LRP: case MTH_GUIDED_BACKPROP: case MTH_DECONVOLUTION:
    case MTH_GRAD_CAM:
        return FAM_RULES;
    case MTH_OCCLUSION: case MTH_FEATURE_ABLATION: case MTH_FEATURE_PERMUTATION:
    case MTH_SHAPLEY_SAMPLING: case MTH_KERNEL_SHAP: case MTH_LIME:
        return FAM_PERT;
    case MTH_SOBOL: case MTH_RISE:
        return FAM_MASKS;
    case MTH_N_KINDS_PLUS1: break;
    }
    AT_CHECK(0 && "unknown method kind");
    return FAM_GRAD;
}

int mth_is_gradient(const mth_spec *s) {
    family f = family_of(s->kind);
    return f == FAM_GRAD || (f == FAM_RULES && s->kind != MTH_GRAD_CAM);
}

int mth_plan(mth_spec *s, const eng_model *m, at_err *err) {
    s->alpha = s->weight = NULL;
    s->priv = NULL;
    s->n_cols = s->width = 0;
    AT_CHECK(s->D == m->in_features);
    if (s->noise != MTH_NOISE_NONE) {
        if (!mth_is_gradient(s))
            return at_err_set(err, AT_EUSER, "noise: only gradient methods take a noise "
                                             "wrapper (SmoothGrad, SmoothGrad^2, VarGrad)");
        return noise_plan(s, m, err);
    }
    switch (family_of(s->kind)) {
    case FAM_GRAD: return grad_plan(s, m, err);
    case FAM_RULES: return rules_plan(s, m, err);
    case FAM_PERT: return pert_plan(s, m, err);
    case FAM_MASKS: return masks_plan(s, m, err);
    }
    return AT_EINTERNAL;
}

void mth_spec_free(mth_spec *s) {
    if (s->priv) {
        if (s->noise != MTH_NOISE_NONE) noise_free(s);
        else switch (family_of(s->kind)) {
            case FAM_GRAD: grad_free(s); break;
            case FAM_RULES: rules_free(s); break;
            case FAM_PERT: pert_free(s); break;
            case FAM_MASKS: masks_free(s); break;
            }
    }
    free(s->alpha);
    free(s->weight);
    free(s->group);
    s->alpha = s->weight = NULL;
    s->group = NULL;
    s->priv = NULL;
}

mth_delta_kind mth_delta(const mth_spec *s) {
    if (s->noise != MTH_NOISE_NONE) return MTH_DELTA_NONE;
    switch (s->kind) {
    case MTH_INTEGRATED_GRADIENTS: case MTH_DEEPLIFT: case MTH_SHAPLEY_SAMPLING:
    case MTH_KERNEL_SHAP:
        return MTH_DELTA_DIFF;
    case MTH_LRP: return MTH_DELTA_OUTPUT;
    default: return MTH_DELTA_NONE;
    }
}

int mth_uses_baseline(const mth_spec *s) {
    switch (s->kind) {
    case MTH_INTEGRATED_GRADIENTS: case MTH_DEEPLIFT: case MTH_OCCLUSION:
    case MTH_FEATURE_ABLATION: case MTH_SHAPLEY_SAMPLING: case MTH_KERNEL_SHAP:
    case MTH_LIME: case MTH_SOBOL: case MTH_RISE:
        return 1;
    default: return 0;
    }
}

int mth_uses_refs(const mth_spec *s) {
    return s->kind == MTH_EXPECTED_GRADIENTS || s->kind == MTH_GRADIENT_SHAP;
}

double mth_cost(const mth_spec *s, int R, int c0, int c1) {
    double per_col;
    if (s->noise != MTH_NOISE_NONE) {
        const mth_spec *base = s->priv;
        per_col = mth_cost(base, 1, 0, base->n_cols);
    } else {
        switch (family_of(s->kind)) {
        case FAM_GRAD: per_col = grad_col_cost(s); break;
        case FAM_RULES: per_col = rules_col_cost(s); break;
        case FAM_PERT: per_col = pert_col_cost(s); break;
        default: per_col = masks_col_cost(s); break;
        }
    }
    return (double)R * (c1 - c0) * per_col;
}

void mth_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const mth_rows *rows, int c0, int c1, double *partial) {
    AT_CHECK(c0 >= 0 && c0 <= c1 && c1 <= s->n_cols && rows->R >= 0);
    AT_CHECK(!mth_uses_baseline(s) || rows->baseline != NULL);
    AT_CHECK(!mth_uses_refs(s) || (rows->refs != NULL && rows->n_refs > 0));
    if (s->noise != MTH_NOISE_NONE) {
        noise_run_unit(s, m, sc, rows, c0, c1, partial);
        return;
    }
    switch (family_of(s->kind)) {
    case FAM_GRAD: grad_run_unit(s, m, sc, rows, c0, c1, partial); break;
    case FAM_RULES: rules_run_unit(s, m, sc, rows, c0, c1, partial); break;
    case FAM_PERT: pert_run_unit(s, m, sc, rows, c0, c1, partial); break;
    case FAM_MASKS: masks_run_unit(s, m, sc, rows, c0, c1, partial); break;
    }
}

void mth_fold(double *acc, const double *partial, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += partial[i];
}

void mth_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const mth_rows *rows, const double *acc, float *scores) {
    if (s->noise != MTH_NOISE_NONE) {
        noise_finalize(s, m, sc, rows, acc, scores);
        return;
    }
    switch (family_of(s->kind)) {
    case FAM_GRAD: grad_finalize(s, m, sc, rows, acc, scores); break;
    case FAM_RULES: rules_finalize(s, m, sc, rows, acc, scores); break;
    case FAM_PERT: pert_finalize(s, m, sc, rows, acc, scores); break;
    case FAM_MASKS: masks_finalize(s, m, sc, rows, acc, scores); break;
    }
}

void mth_attribute(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                   const mth_rows *rows, float *scores) {
    size_t n = (size_t)rows->R * (size_t)s->width;
    double *acc = at_calloc(n + 1, sizeof(double), "attribution accumulator");
    mth_run_unit(s, m, sc, rows, 0, s->n_cols, acc);
    mth_finalize(s, m, sc, rows, acc, scores);
    free(acc);
}

/* ---------------------------------------------------------------- scratch */

void mth_scratch_init(mth_scratch *sc, const eng_model *m, int cap) {
    AT_CHECK(cap >= 1);
    memset(sc, 0, sizeof *sc);
    sc->cap = cap;
    eng_workspace_init(&sc->ws, m, cap, ENG_F32);
    size_t D = (size_t)m->in_features, C = (size_t)m->out_features;
    sc->xin = at_malloc((size_t)cap * D * sizeof(float), "unit inputs");
    sc->dx = at_malloc((size_t)cap * D * sizeof(float), "unit input gradients");
    sc->dlogits = at_malloc((size_t)cap * C * sizeof(float), "unit output seeds");
    sc->row = at_malloc((size_t)cap * sizeof(int32_t), "unit row map");
    sc->w = at_malloc((size_t)cap * sizeof(double), "unit weights");
    sc->head = eng_model_affine_head(m);
    if (sc->head >= 0) { /* the head's weights in float64, once */
        const eng_layer *L = &m->layers[sc->head];
        const size_t n = (size_t)L->out_features * (size_t)m->in_features;
        const float *W = m->params + m->tensors[L->tensor0].off;
        sc->wd = at_malloc(n * sizeof(double), "IG head weights");
        for (size_t i = 0; i < n; i++) sc->wd[i] = W[i];
        sc->z0 = at_malloc((size_t)L->out_features * sizeof(float), "IG head baseline");
    }
}

void mth_scratch_free(mth_scratch *sc) {
    eng_workspace_free(&sc->ws);
    free(sc->xin);
    free(sc->dx);
    free(sc->dlogits);
    free(sc->row);
    free(sc->w);
    free(sc->delta);
    free(sc->gsum);
    free(sc->z0);
    free(sc->wd);
    for (int i = 0; i < 8; i++) free(sc->buf[i]);
    memset(sc, 0, sizeof *sc);
}

void *mth_buf(mth_scratch *sc, int slot, size_t bytes) {
    AT_CHECK(slot >= 0 && slot < 8);
    if (bytes > sc->buf_cap[slot]) {
        free(sc->buf[slot]);
        sc->buf[slot] = at_malloc(bytes, "method scratch");
        sc->buf_cap[slot] = bytes;
    }
    return sc->buf[slot];
}

/* ------------------------------------------------------- forward passes */

void mth_target_logits(const float *logits, const int32_t *target, int R, int C,
                       double *out) {
    for (int r = 0; r < R; r++) out[r] = (double)logits[(size_t)r * C + target[r]];
}

void mth_forward_targets(const eng_model *m, mth_scratch *sc, const float *xin,
                         const int32_t *target, int n, double *out) {
    const int D = m->in_features, C = m->out_features;
    for (int k0 = 0; k0 < n; k0 += sc->cap) {
        int nb = n - k0 < sc->cap ? n - k0 : sc->cap;
        const float *lg = eng_model_forward(m, &sc->ws, xin + (size_t)k0 * D, nb);
        mth_target_logits(lg, target + k0, nb, C, out + k0);
    }
}

void mth_input_grads(const eng_model *m, mth_scratch *sc, const int32_t *target, int n) {
    const int C = m->out_features;
    eng_model_forward(m, &sc->ws, sc->xin, n);
    memset(sc->dlogits, 0, (size_t)n * C * sizeof(float));
    for (int k = 0; k < n; k++) {
        int32_t t = target[sc->row[k]];
        AT_CHECK(t >= 0 && t < C);
        sc->dlogits[(size_t)k * C + t] = 1.0f;
    }
    eng_model_backward(m, &sc->ws, sc->xin, sc->dlogits, n, sc->dx, NULL);
}

/* ------------------------------------------------------------- groups */

int mth_groups_grid(int ndim, const int *shape, const int *patch, int32_t *group) {
    /* spatial dims: the last two of (C, H, W) or (H, W); (F): one dim */
    int C = ndim == 3 ? shape[0] : 1;
    int H = ndim == 1 ? 1 : shape[ndim - 2], W = shape[ndim - 1];
    int ph = ndim == 1 ? 1 : patch[0], pw = ndim == 1 ? patch[0] : patch[1];
    AT_CHECK(ph >= 1 && pw >= 1);
    int gh = (H + ph - 1) / ph, gw = (W + pw - 1) / pw;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                group[((size_t)c * H + y) * W + x] = (y / ph) * gw + x / pw;
    return gh * gw;
}
