/* perturb.c — the perturbation family: occlusion, feature ablation, feature
 * permutation, Shapley value sampling, Kernel SHAP and LIME. Forward passes
 * only. See methods.h for the grid model.
 *
 * "Removing" a feature sets it to rows->baseline[d]. Groups (P of them)
 * come from s->group, or each feature is its own group. y = the target
 * logit of a (perturbed) input.
 *
 *   occlusion          column = a window position (row-major over the
 *                      shape's dims; per dim 0, stride, ... while pos +
 *                      window <= shape, as Captum). partial (R, D) += the
 *                      drop f(x) - f(x, window at baseline) on each covered
 *                      feature; finalize divides by the number of windows
 *                      covering the feature (0 where none does).
 *   feature_ablation   column = group g; partial (R, D) += f(x) - f(x, g at
 *                      baseline) on g's features.
 *   feature_permutation column = group g; the unit's R rows are the batch:
 *                      group g's values are shuffled across them by a
 *                      permutation of (seed, stream, row0, g) (Fisher-Yates;
 *                      fixed points are allowed, as Captum's randperm, and
 *                      give a drop of 0); partial (R, D) += drop. Results
 *                      depend on how rows are cut into units (by design:
 *                      the unit is the batch). R = 1: drop 0.
 *   shapley_sampling   column = a permutation of the groups per row, from
 *                      (seed, stream, row, k = column / 2); column 2k+1
 *                      walks column 2k's permutation reversed (antithetic).
 *                      The walk starts at the baseline and adds one group
 *                      per step: P - 1 forward passes per column (f(b) and
 *                      f(x) once per row and unit). partial (R, P) += the
 *                      marginal contributions; phi = acc / n_cols. A group
 *                      whose features all equal the baseline is a null
 *                      player: its steps are skipped and it gets exactly 0.
 *   kernel_shap        column = a coalition shared by all rows: column 2k
 *                      has a size s in 1..P-1 drawn with probability
 *                      proportional to (P-1)/(s(P-s)) and a uniform subset
 *                      of that size (so each coalition is drawn in
 *                      proportion to its Shapley kernel weight and the
 *                      regression weights are 1); column 2k+1 is its
 *                      complement. partial (R, P) += z y_z. finalize solves
 *                      phi = argmin sum_z (y_z - f(b) - z.phi)^2 subject to
 *                      sum phi = f(x) - f(b) exactly (Lagrange: phi = u -
 *                      l G^-1 1, u = G^-1 (Z^T y - f(b) Z^T 1), with the
 *                      plan's Cholesky factor of G = Z^T Z).
 *   lime               column = a coalition shared by all rows: each group
 *                      on with probability 1/2 (column 2k+1 the complement
 *                      of 2k); weight exp(-d^2 / kernel_width^2) with d =
 *                      1 - cos(1, z) = 1 - sqrt(|z| / P) (1 for z = 0) or
 *                      ||1 - z|| = sqrt(P - |z|), measured on the
 *                      interpretable vector (Captum measures its default
 *                      cosine distance between the original and perturbed
 *                      inputs). Weighted ridge with an unpenalised
 *                      intercept: partial (R, P + 1) += (w z y, w y); the
 *                      intercept is eliminated against the plan's factor of
 *                      Z^T W Z - m m^T / S + ridge I (m = Z^T w, S = sum w).
 *                      phi = the coefficients.
 *
 * Scores: shapley_sampling, kernel_shap and lime spread each group's value
 * evenly over its features (score_d = phi_g / |g|, so the scores of a row
 * sum to sum phi; Captum repeats phi_g on every feature of the group).
 * occlusion, ablation and permutation give every feature of the group or
 * window the full drop (Captum's convention).
 *
 * Reuse through an affine head (eng_model_affine_head: a first linear
 * layer z1 = W x + c on the flat input): the head's output of a perturbed
 * input is an affine combination, z1 = z1(b) + sum_{g kept} U_g with
 * U_g = W[:, g] (x_g - b_g), or z1(x) + sum_{d changed} W[:, d] (x'_d - x_d).
 * The unit computes U (float64, per row) once; each perturbed input then
 * costs a few H-vector additions instead of the head's D x H product, and
 * the engine runs from layer head + 1. Sums are float64 (the Shapley walk
 * carries z1 incrementally in float64 and rounds to float32 only for the
 * engine), so no rounding drifts along a walk.
 *
 * Occlusion, ablation and permutation on a CNN whose local layers (conv2d,
 * activations, pools, batchnorm2d) end in a flatten and a linear recompute
 * only the receptive field of the changed pixels (see "local CNN
 * recomputation" below).
 *
 * A perturbation that changes nothing (every touched feature already equals
 * its replacement, e.g. a background patch at a zero baseline) is not
 * evaluated: its drop is exactly 0, and a Shapley walk skips the group.
 *
 * Randomness: stream = s->stream * 64 + a purpose constant below; per-row
 * draws use the row's selection index rows->row0 + r; shared coalitions use
 * the column only.
 *
 * Batching and determinism: OpenBLAS's SGEMM rounds a row differently
 * depending on the call's row count and the row's position in it, so an
 * engine call holds the perturbed inputs of ONE row, for a block of
 * columns aligned to absolute column indices (cap / forward passes per
 * column of them). A row's partial is then the same bytes whatever other
 * rows share its unit (row splits are bit-identical); a different cap, or a
 * column split off a block boundary, changes y by float32 rounding only.
 * Each row's contributions are added in column order.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

enum { PURPOSE_SHAPLEY = 1, PURPOSE_KERNEL_SHAP = 2, PURPOSE_LIME = 3, PURPOSE_PERMUTATION = 4 };

typedef struct {
    int P;        /* groups */
    int *gstart;  /* (P + 1) offsets into gfeat */
    int *gfeat;   /* (D) features ordered by group */
    int32_t *gof; /* (D) group of each feature */
    /* occlusion */
    int nwin[3];   /* window positions per shape dim */
    double *cover; /* (D) windows covering each feature */
    /* kernel_shap, lime: the coalitions and the factored normal matrix */
    uint8_t *Z;       /* (n_cols, P) 1 = group kept at x */
    double *wz;       /* (n_cols) regression weight of each coalition */
    double *L;        /* (P, P) lower Cholesky factor */
    double *zsum;     /* (P) kernel_shap: Z^T 1; lime: Z^T w */
    double *ginv1;    /* (P) kernel_shap: G^-1 1 */
    double one_ginv1; /* kernel_shap: 1^T G^-1 1 */
    double wsum;      /* lime: sum of the weights */
    /* the affine head in float64: -1 / NULL without one */
    int head, H;
    double *wt;   /* (D, H) W^T */
    double *bias; /* (H) c, or zeros */
    /* a CNN prefix recomputed locally (occlusion, ablation, permutation):
     * layers [0, flat) local ops, flat a flatten, flat + 1 a linear */
    int local, flat, lin, lin_out;
    double *lwt;     /* (IC, OC) the linear's W^T in float64 */
    size_t reg_max;  /* floats of the largest layer output */
    size_t crop_max; /* floats of the largest padded layer input */
    size_t col_max;  /* floats of the largest conv im2col scratch */
} pert_priv;

/* ------------------------------------------------------------ algebra */

/* In-place lower Cholesky factor of the symmetric matrix a (n, n), lower
 * triangle read. Returns 0, or -1 when a pivot falls to <= 1e-9 of its
 * diagonal entry (singular to working precision). */
static int cholesky(double *a, int n) {
    for (int j = 0; j < n; j++) {
        double d = a[(size_t)j * n + j], d0 = d;
        for (int k = 0; k < j; k++) d -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
        if (!(d > 1e-9 * d0) || !(d0 > 0.0)) return -1;
        d = sqrt(d);
        a[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = a[(size_t)i * n + j];
            const double *li = a + (size_t)i * n, *lj = a + (size_t)j * n;
            for (int k = 0; k < j; k++) v -= li[k] * lj[k];
            a[(size_t)i * n + j] = v / d;
        }
    }
    return 0;
}

/* x (n) = (L L^T)^-1 b; x may alias b. */
static void chol_solve(const double *L, int n, const double *b, double *x) {
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++) v -= L[(size_t)i * n + k] * x[k];
        x[i] = v / L[(size_t)i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = x[i];
        for (int k = i + 1; k < n; k++) v -= L[(size_t)k * n + i] * x[k];
        x[i] = v / L[(size_t)i * n + i];
    }
}

/* g (P, P) lower triangle += w z z^T for a 0/1 vector z, through its list
 * of ones (exact and order-independent for kernel_shap's integer Gram). */
static void gram_add(double *g, int P, const uint8_t *z, double w, int *on) {
    int k = 0;
    for (int i = 0; i < P; i++)
        if (z[i]) on[k++] = i;
    for (int a = 0; a < k; a++)
        for (int b = 0; b <= a; b++) g[(size_t)on[a] * P + on[b]] += w;
}

/* ------------------------------------------------------------- planning */

static uint64_t stream_of(const mth_spec *s, int purpose) {
    return s->stream * 64u + (uint64_t)purpose;
}

static int plan_groups(mth_spec *s, pert_priv *pv, at_err *err) {
    const int D = s->D;
    int P = s->group ? s->n_groups : D;
    if (s->group && P < 1) return at_err_set(err, AT_EUSER, "n_groups is %d; expected >= 1", P);
    pv->P = P;
    pv->gof = at_malloc((size_t)D * sizeof(int32_t), "perturbation groups");
    pv->gstart = at_calloc((size_t)P + 1, sizeof(int), "perturbation group offsets");
    pv->gfeat = at_malloc((size_t)D * sizeof(int), "perturbation group features");
    for (int d = 0; d < D; d++) {
        int g = s->group ? s->group[d] : d;
        if (g < 0 || g >= P)
            return at_err_set(err, AT_EUSER, "feature %d is in group %d; groups are 0..%d", d, g,
                              P - 1);
        pv->gof[d] = g;
        pv->gstart[g + 1]++;
    }
    for (int g = 0; g < P; g++) {
        if (pv->gstart[g + 1] == 0)
            return at_err_set(err, AT_EUSER,
                              "group %d of %d has no features (every group needs at least one)", g,
                              P);
        pv->gstart[g + 1] += pv->gstart[g];
    }
    int *fill = at_malloc((size_t)P * sizeof(int), "perturbation group fill");
    for (int g = 0; g < P; g++) fill[g] = pv->gstart[g];
    for (int d = 0; d < D; d++) pv->gfeat[fill[pv->gof[d]]++] = d;
    free(fill);
    return 0;
}

/* Features of occlusion window c (row-major over the window positions)
 * into out; returns their count. */
static int window_feats(const mth_spec *s, const pert_priv *pv, int c, int *out) {
    int lo[3] = {0, 0, 0}, ext[3] = {1, 1, 1}, sh[3] = {1, 1, 1};
    const int nd = s->ndim, o = 3 - nd;
    for (int k = nd - 1; k >= 0; k--) {
        lo[o + k] = (c % pv->nwin[k]) * s->stride[k];
        c /= pv->nwin[k];
        ext[o + k] = s->window[k];
        sh[o + k] = s->shape[k];
    }
    int n = 0;
    for (int a = lo[0]; a < lo[0] + ext[0]; a++)
        for (int b = lo[1]; b < lo[1] + ext[1]; b++)
            for (int e = lo[2]; e < lo[2] + ext[2]; e++) out[n++] = (a * sh[1] + b) * sh[2] + e;
    return n;
}

static int plan_occlusion(mth_spec *s, pert_priv *pv, at_err *err) {
    if (s->ndim < 1 || s->ndim > 3)
        return at_err_set(err, AT_EUSER, "occlusion: input has %d dims; expected 1 to 3", s->ndim);
    long n = 1, numel = 1;
    for (int k = 0; k < s->ndim; k++) numel *= s->shape[k];
    if (numel != s->D)
        return at_err_set(err, AT_EINTERNAL, "occlusion: shape has %ld elements, the model %d",
                          numel, s->D);
    for (int k = 0; k < s->ndim; k++) {
        if (s->window[k] < 1 || s->window[k] > s->shape[k])
            return at_err_set(err, AT_EUSER,
                              "window[%d] is %d; expected 1..%d (the input's dim %d)", k,
                              s->window[k], s->shape[k], k);
        if (s->stride[k] < 1)
            return at_err_set(err, AT_EUSER, "stride[%d] is %d; expected >= 1", k, s->stride[k]);
        pv->nwin[k] = (s->shape[k] - s->window[k]) / s->stride[k] + 1;
        n *= pv->nwin[k];
    }
    s->n_cols = (int)n;
    s->width = s->D;
    pv->cover = at_calloc((size_t)s->D, sizeof(double), "occlusion cover");
    int *f = at_malloc((size_t)s->D * sizeof(int), "occlusion window");
    for (int c = 0; c < s->n_cols; c++) {
        int nf = window_feats(s, pv, c, f);
        for (int i = 0; i < nf; i++) pv->cover[f[i]] += 1.0;
    }
    free(f);
    return 0;
}

/* Kernel SHAP's coalitions and the factors of its constrained regression. */
static int plan_kernel_shap(mth_spec *s, pert_priv *pv, at_err *err) {
    const int P = pv->P, n = s->n_samples;
    if (P < 2)
        return at_err_set(err, AT_EUSER, "kernel_shap needs at least 2 feature groups (got %d)", P);
    /* k complementary pairs span at most k + 1 directions (z + (1 - z) = 1
     * for all of them), an unpaired last column one more */
    if ((n + 1) / 2 + 1 < P)
        return at_err_set(err, AT_EUSER,
                          "kernel_shap: n_samples = %d coalitions cannot determine %d groups; "
                          "use at least %d (coalitions come in complementary pairs, and k pairs "
                          "determine at most k + 1 groups)",
                          n, P, 2 * P - 2);
    s->n_cols = n;
    s->width = P;
    const uint64_t st = stream_of(s, PURPOSE_KERNEL_SHAP);
    double *cum = at_malloc((size_t)P * sizeof(double), "kernel_shap sizes");
    cum[0] = 0.0;
    for (int k = 1; k < P; k++) cum[k] = cum[k - 1] + (P - 1.0) / ((double)k * (P - k));
    pv->Z = at_calloc((size_t)n * P, 1, "kernel_shap coalitions");
    pv->wz = at_malloc((size_t)n * sizeof(double), "kernel_shap weights");
    int *idx = at_malloc((size_t)P * sizeof(int), "kernel_shap subset");
    for (int c = 0; c < n; c++) {
        uint8_t *z = pv->Z + (size_t)c * P;
        pv->wz[c] = 1.0;
        if (c % 2) {
            for (int g = 0; g < P; g++) z[g] = (uint8_t)!z[g - P];
            continue;
        }
        const uint64_t k = (uint64_t)(c / 2);
        double u = at_rng_uniform_f64(s->seed, st, k, 0) * cum[P - 1];
        int size = 1;
        while (size < P - 1 && cum[size] <= u) size++;
        for (int g = 0; g < P; g++) idx[g] = g;
        for (int i = 0; i < size; i++) { /* partial Fisher-Yates */
            int j = i + (int)at_rng_below((uint64_t)(P - i), s->seed, st, k, 1 + (uint64_t)i);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
            z[idx[i]] = 1;
        }
    }
    free(cum);
    pv->L = at_calloc((size_t)P * P, sizeof(double), "kernel_shap Gram");
    pv->zsum = at_calloc((size_t)P, sizeof(double), "kernel_shap Z^T 1");
    pv->ginv1 = at_malloc((size_t)P * sizeof(double), "kernel_shap G^-1 1");
    for (int c = 0; c < n; c++) {
        const uint8_t *z = pv->Z + (size_t)c * P;
        gram_add(pv->L, P, z, 1.0, idx);
        for (int g = 0; g < P; g++) pv->zsum[g] += z[g];
    }
    free(idx);
    if (cholesky(pv->L, P))
        return at_err_set(err, AT_EUSER,
                          "kernel_shap: the n_samples = %d coalitions drawn at this seed do not "
                          "determine %d groups (their Gram matrix is singular); use more "
                          "n_samples (%d or more)",
                          n, P, n > 2 * P ? 2 * n : 4 * P);
    for (int g = 0; g < P; g++) pv->ginv1[g] = 1.0;
    chol_solve(pv->L, P, pv->ginv1, pv->ginv1);
    pv->one_ginv1 = 0.0;
    for (int g = 0; g < P; g++) pv->one_ginv1 += pv->ginv1[g];
    return 0;
}

static int plan_lime(mth_spec *s, pert_priv *pv, at_err *err) {
    const int P = pv->P, n = s->n_samples;
    if (n < 1) return at_err_set(err, AT_EUSER, "n_samples is %d; expected >= 1", n);
    if (!(s->kernel_width > 0.0) || !isfinite(s->kernel_width))
        return at_err_set(err, AT_EUSER, "kernel_width is %g; expected > 0", s->kernel_width);
    if (!(s->ridge >= 0.0) || !isfinite(s->ridge))
        return at_err_set(err, AT_EUSER, "ridge is %g; expected >= 0", s->ridge);
    if (s->distance != MTH_DIST_COSINE && s->distance != MTH_DIST_L2)
        return at_err_set(err, AT_EUSER, "distance: expected cosine or l2");
    s->n_cols = n;
    s->width = P + 1;
    const uint64_t st = stream_of(s, PURPOSE_LIME);
    pv->Z = at_malloc((size_t)n * P, "lime coalitions");
    pv->wz = at_malloc((size_t)n * sizeof(double), "lime weights");
    pv->L = at_calloc((size_t)P * P, sizeof(double), "lime Gram");
    pv->zsum = at_calloc((size_t)P, sizeof(double), "lime Z^T w");
    int *on = at_malloc((size_t)P * sizeof(int), "lime ones");
    pv->wsum = 0.0;
    for (int c = 0; c < n; c++) {
        uint8_t *z = pv->Z + (size_t)c * P;
        int k_on = 0;
        for (int g = 0; g < P; g++) {
            z[g] =
                c % 2
                    ? (uint8_t)!z[g - P]
                    : (uint8_t)(at_rng_uniform(s->seed, st, (uint64_t)(c / 2), (uint64_t)g) < 0.5f);
            k_on += z[g];
        }
        double d = s->distance == MTH_DIST_COSINE ? (k_on ? 1.0 - sqrt((double)k_on / P) : 1.0)
                                                  : sqrt((double)(P - k_on));
        double w = exp(-d * d / (s->kernel_width * s->kernel_width));
        pv->wz[c] = w;
        pv->wsum += w;
        for (int g = 0; g < P; g++) pv->zsum[g] += w * z[g];
        gram_add(pv->L, P, z, w, on);
    }
    free(on);
    if (!(pv->wsum > 0.0))
        return at_err_set(err, AT_EUSER,
                          "lime: kernel_width = %g gives every coalition weight 0; use a "
                          "larger kernel_width",
                          s->kernel_width);
    for (int i = 0; i < P; i++) {
        for (int j = 0; j <= i; j++)
            pv->L[(size_t)i * P + j] -= pv->zsum[i] * pv->zsum[j] / pv->wsum;
        pv->L[(size_t)i * P + i] += s->ridge;
    }
    if (cholesky(pv->L, P))
        return at_err_set(err, AT_EUSER,
                          "lime: the n_samples = %d coalitions do not determine %d groups%s; "
                          "use more n_samples (%d or more) or ridge > 0",
                          n, P, s->ridge > 0.0 ? "" : " without a ridge", 2 * P + 2);
    return 0;
}

/* ----------------------------------------- local CNN recomputation
 *
 * Occlusion, ablation and permutation change a few pixels. When the model
 * starts with a chain of local layers on (C, H, W) — conv2d, pointwise
 * activations, max/avg pools, batchnorm2d, dropout — then a flatten and a
 * linear, a perturbation changes each local layer's output only inside a
 * rectangle (its receptive field): the unit runs the row once through the
 * whole model, then per perturbation recomputes only those rectangles (the
 * engine's kernels on a cropped, unpadded geometry) and updates the
 * linear's output by W[:, changed] (new - old) in float64; the engine runs
 * the layers after the linear for many perturbations at once. */

static int src_prev(const eng_layer *L, int i) {
    return L->n_src == 0 || (L->n_src == 1 && L->src[0] == (i == 0 ? ENG_SRC_INPUT : i - 1));
}

static int is_pointwise(eng_layer_kind k) {
    return k == ENG_LAYER_RELU || k == ENG_LAYER_GELU || k == ENG_LAYER_GELU_TANH ||
           k == ENG_LAYER_TANH || k == ENG_LAYER_SIGMOID || k == ENG_LAYER_SILU ||
           k == ENG_LAYER_SOFTPLUS;
}

static void plan_local(const eng_model *m, pert_priv *pv) {
    if (m->in_ndim != 3 || m->token_input) return;
    int flat = -1, spatial = 0;
    size_t reg = (size_t)m->in_features, crop = 0, col = 0;
    for (int i = 0; i < m->n_layers && flat < 0; i++) {
        const eng_layer *L = &m->layers[i];
        if (!src_prev(L, i)) return;
        if (L->kind == ENG_LAYER_FLATTEN) {
            flat = i;
            break;
        }
        if (L->in_ndim != 3 || L->out_ndim != 3) return;
        const eng_geom2d *g = &L->g;
        switch (L->kind) {
        case ENG_LAYER_CONV2D:
            col = col > eng_conv2d_col_size(g) ? col : eng_conv2d_col_size(g);
            /* fall through */
        case ENG_LAYER_MAXPOOL2D:
        case ENG_LAYER_AVGPOOL2D: {
            if (L->kind == ENG_LAYER_AVGPOOL2D && !g->count_include_pad && (g->PH || g->PW))
                return; /* its divisor near the border needs the padding */
            size_t c = (size_t)g->C * (size_t)(g->H + 2 * g->PH) * (size_t)(g->W + 2 * g->PW);
            crop = crop > c ? crop : c;
            spatial = 1;
            break;
        }
        case ENG_LAYER_BATCHNORM2D:
        case ENG_LAYER_DROPOUT:
            break;
        default:
            if (!is_pointwise(L->kind)) return;
        }
        reg = reg > L->out_numel ? reg : L->out_numel;
    }
    if (flat < 1 || !spatial || flat + 1 >= m->n_layers) return;
    const eng_layer *Ll = &m->layers[flat + 1];
    if (Ll->kind != ENG_LAYER_LINEAR || !src_prev(Ll, flat + 1) || Ll->in_ndim != 1) return;
    for (int j = flat + 2; j < m->n_layers; j++) {
        const eng_layer *L = &m->layers[j];
        for (int k = 0; k < L->n_src; k++)
            if (L->src[k] < flat + 1) return;
    }
    const int IC = (int)Ll->in_numel, OC = Ll->out_features;
    const float *W = m->params + m->tensors[Ll->tensor0].off; /* (OC, IC) */
    pv->lwt = at_malloc((size_t)IC * OC * sizeof(double), "occlusion linear weights");
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < IC; i++) pv->lwt[(size_t)i * OC + o] = W[(size_t)o * IC + i];
    pv->local = 1;
    pv->flat = flat;
    pv->lin = flat + 1;
    pv->lin_out = OC;
    pv->reg_max = reg;
    pv->crop_max = crop;
    pv->col_max = col;
}

void pert_free(mth_spec *s) {
    pert_priv *pv = s->priv;
    if (!pv) return;
    free(pv->gstart);
    free(pv->gfeat);
    free(pv->gof);
    free(pv->cover);
    free(pv->Z);
    free(pv->wz);
    free(pv->L);
    free(pv->zsum);
    free(pv->ginv1);
    free(pv->wt);
    free(pv->bias);
    free(pv->lwt);
    free(pv);
    s->priv = NULL;
}

int pert_plan(mth_spec *s, const eng_model *m, at_err *err) {
    pert_priv *pv = at_calloc(1, sizeof *pv, "perturbation plan");
    s->priv = pv;
    pv->head = -1;
    int rc = 0;
    if (s->perturb_batch < 0)
        return at_err_set(err, AT_EUSER, "perturb_batch is %d; expected >= 0", s->perturb_batch);
    if (s->kind != MTH_OCCLUSION && (rc = plan_groups(s, pv, err))) return rc;
    switch (s->kind) {
    case MTH_OCCLUSION:
        rc = plan_occlusion(s, pv, err);
        break;
    case MTH_FEATURE_ABLATION:
    case MTH_FEATURE_PERMUTATION:
        s->n_cols = pv->P;
        s->width = s->D;
        break;
    case MTH_SHAPLEY_SAMPLING:
        if (s->n_samples < 1)
            return at_err_set(err, AT_EUSER, "n_samples is %d; expected >= 1 permutations",
                              s->n_samples);
        s->n_cols = s->n_samples;
        s->width = pv->P;
        break;
    case MTH_KERNEL_SHAP:
        rc = plan_kernel_shap(s, pv, err);
        break;
    case MTH_LIME:
        rc = plan_lime(s, pv, err);
        break;
    default:
        return at_err_set(err, AT_EINTERNAL, "perturbation family: unknown kind %d", (int)s->kind);
    }
    if (rc) return rc;
    pv->head = eng_model_affine_head(m);
    if (pv->head < 0 && (s->kind == MTH_OCCLUSION || s->kind == MTH_FEATURE_ABLATION ||
                         s->kind == MTH_FEATURE_PERMUTATION))
        plan_local(m, pv);
    if (pv->head >= 0) { /* W^T and c in float64, once */
        const eng_layer *Lh = &m->layers[pv->head];
        const int D = s->D, H = Lh->out_features;
        const eng_tensor *tw = &m->tensors[Lh->tensor0];
        const float *W = m->params + tw->off; /* (H, D) */
        pv->H = H;
        pv->wt = at_malloc((size_t)D * H * sizeof(double), "perturbation head weights");
        pv->bias = at_calloc((size_t)H, sizeof(double), "perturbation head bias");
        for (int h = 0; h < H; h++)
            for (int d = 0; d < D; d++) pv->wt[(size_t)d * H + h] = W[(size_t)h * D + d];
        if (Lh->n_tensors > 1) {
            const float *c = m->params + tw[1].off;
            for (int h = 0; h < H; h++) pv->bias[h] = c[h];
        }
    }
    return 0;
}

double pert_col_cost(const mth_spec *s) {
    const pert_priv *pv = s->priv;
    if (s->kind == MTH_SHAPLEY_SAMPLING && pv) return (pv->P > 1 ? pv->P - 1 : 1) / 3.0;
    return 1.0 / 3.0;
}

/* ------------------------------------------------------- forward queue */

/* Perturbed inputs queued for the engine, cap rows per call. The caller
 * gets an engine row k from evq_push and fills sc->xin row k (plain) or the
 * head's output row k (head mode); the target logit lands in *dst. */
typedef struct {
    const eng_model *m;
    mth_scratch *sc;
    const int32_t *target; /* (R) the unit's targets */
    int cap, head, H, n;
    float *z1;    /* (cap, H) the head's output, head mode */
    double **dst; /* (cap) */
} evq;

static void evq_flush(evq *q) {
    if (!q->n) return;
    const eng_model *m = q->m;
    mth_scratch *sc = q->sc;
    const int C = m->out_features;
    const float *lg = q->head >= 0
                          ? eng_forward_from(m, &sc->ws, m->params, sc->xin, q->n, q->head + 1)
                          : eng_model_forward(m, &sc->ws, sc->xin, q->n);
    for (int k = 0; k < q->n; k++) {
        int32_t t = q->target[sc->row[k]];
        AT_CHECK(t >= 0 && t < C);
        *q->dst[k] = (double)lg[(size_t)k * C + t];
    }
    q->n = 0;
}

static int evq_push(evq *q, int r, double *dst) {
    if (q->n == q->cap) evq_flush(q);
    int k = q->n++;
    q->sc->row[k] = r;
    q->dst[k] = dst;
    return k;
}

static void put_z(evq *q, int k, const double *restrict z) {
    float *restrict o = q->z1 + (size_t)k * q->H;
    for (int h = 0; h < q->H; h++) o[h] = (float)z[h];
}

/* z (H) += a * w (H) */
static void axpy(double *restrict z, double a, const double *restrict w, int H) {
    for (int h = 0; h < H; h++) z[h] += a * w[h];
}

/* Bump allocation of one unit's buffers from a scratch slot. */
typedef struct {
    char *base;
    size_t used, cap;
} arena;

static size_t al(size_t b) { return (b + 63) & ~(size_t)63; }

static void *take(arena *a, size_t bytes) {
    void *p = a->base + a->used;
    a->used += al(bytes);
    AT_CHECK(a->used <= a->cap);
    return p;
}

/* What every kind's unit shares: the queue, the head's float64 vectors. */
typedef struct {
    const mth_spec *s;
    const pert_priv *pv;
    const mth_rows *rows;
    evq q;
    int D, H, P, R, head;
    int local;    /* the local CNN path (head = the linear after the flatten) */
    double *zx;   /* (R, H) z1(x_r), head mode */
    double *zb;   /* (H) z1(b), head mode with a baseline */
    double *zcur; /* (H) */
} unit;

static void unit_init(unit *u, const mth_spec *s, const eng_model *m, mth_scratch *sc,
                      const mth_rows *rows) {
    const pert_priv *pv = s->priv;
    memset(u, 0, sizeof *u);
    u->s = s;
    u->pv = pv;
    u->rows = rows;
    u->D = m->in_features;
    u->P = pv->P;
    u->R = rows->R;
    u->head = sc->head >= 0 && pv->wt && sc->head == pv->head ? pv->head : -1;
    u->H = u->head >= 0 ? pv->H : 0;
    if (pv->local && u->head < 0) {
        u->local = 1;
        u->head = pv->lin;
        u->H = pv->lin_out;
    }
    evq *q = &u->q;
    q->m = m;
    q->sc = sc;
    q->target = rows->target;
    q->cap = s->perturb_batch > 0 && s->perturb_batch < sc->cap ? s->perturb_batch : sc->cap;
    q->head = u->head;
    q->H = u->H;
    q->z1 = u->head >= 0 ? eng_ws_act(&sc->ws, u->head) : NULL;
    q->dst = mth_buf(sc, 4, (size_t)sc->cap * sizeof(double *));
}

/* z (H) = c + W v over the nonzero entries of v (D) */
static void head_of(const unit *u, const float *v, double *z) {
    const int H = u->H;
    memcpy(z, u->pv->bias, (size_t)H * sizeof(double));
    for (int d = 0; d < u->D; d++)
        if (v[d] != 0.0f) axpy(z, (double)v[d], u->pv->wt + (size_t)d * H, H);
}

/* Head-mode vectors zx (R, H), zb, zcur from arena a. */
static void unit_head(unit *u, arena *a) {
    if (u->head < 0 || u->local) return;
    const int H = u->H;
    u->zx = take(a, (size_t)u->R * H * sizeof(double));
    u->zb = take(a, (size_t)H * sizeof(double));
    u->zcur = take(a, (size_t)H * sizeof(double));
    for (int r = 0; r < u->R; r++) head_of(u, u->rows->x + (size_t)r * u->D, u->zx + (size_t)r * H);
    if (u->rows->baseline) head_of(u, u->rows->baseline, u->zb);
}

static size_t unit_head_bytes(const unit *u) {
    if (u->head < 0 || u->local) return 0;
    return al((size_t)u->R * u->H * sizeof(double)) + 2 * al((size_t)u->H * sizeof(double));
}

/* Queue f(x_r) into *fx. */
static void queue_fx(unit *u, int r, double *fx) {
    int k = evq_push(&u->q, r, fx);
    if (u->head >= 0)
        put_z(&u->q, k, u->zx + (size_t)r * u->H);
    else
        memcpy(u->q.sc->xin + (size_t)k * u->D, u->rows->x + (size_t)r * u->D,
               (size_t)u->D * sizeof(float));
}

/* --------------------------------- occlusion, ablation, permutation */

/* The features column c touches, into f; returns their count. */
static int drop_feats(const unit *u, int c, int *f) {
    if (u->s->kind == MTH_OCCLUSION) return window_feats(u->s, u->pv, c, f);
    const int n = u->pv->gstart[c + 1] - u->pv->gstart[c];
    memcpy(f, u->pv->gfeat + u->pv->gstart[c], (size_t)n * sizeof(int));
    return n;
}

/* The permutation of the unit's rows for group g. */
static void row_permutation(const unit *u, int g, int *sigma) {
    const uint64_t st = stream_of(u->s, PURPOSE_PERMUTATION);
    for (int i = 0; i < u->R; i++) sigma[i] = i;
    for (int i = u->R - 1; i > 0; i--) {
        int j = (int)at_rng_below((uint64_t)i + 1, u->s->seed, st, (uint64_t)u->rows->row0,
                                  ((uint64_t)g << 32) | (uint64_t)i);
        int t = sigma[i];
        sigma[i] = sigma[j];
        sigma[j] = t;
    }
}

/* The end of the engine batch that holds column cb of a row: columns are
 * batched in blocks of B aligned to absolute column indices, one row per
 * engine call, so a row's forward passes (and their float32 rounding) do
 * not depend on the other rows of the unit, nor on where the unit's column
 * range starts (when it starts on a block boundary). */
static int block_end(int cb, int c1, int B) {
    int e = (cb / B + 1) * B;
    return e < c1 ? e : c1;
}

/* An inclusive rectangle of a layer's (H, W) plane. */
typedef struct {
    int y0, y1, x0, x1;
} rect;

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Outputs [lo, hi] of a window op (kernel k, stride st, padding p, dilation
 * dl, n outputs) whose receptive field meets inputs [a, b]; 0 if none. */
static int field(int a, int b, int k, int st, int p, int dl, int n, int *lo, int *hi) {
    *lo = -floor_div(-(a + p - (k - 1) * dl), st); /* ceil */
    *hi = floor_div(b + p, st);
    if (*lo < 0) *lo = 0;
    if (*hi > n - 1) *hi = n - 1;
    return *lo <= *hi;
}

/* Buffers of the local path, per unit. */
typedef struct {
    float *reg[2];   /* (reg_max) ping-pong regions */
    float *crop;     /* (crop_max) */
    float *col;      /* (col_max) */
    float *base_lin; /* (OC) the linear's output for x_r */
} local_bufs;

/* The linear's output, in float64 z (OC), of x_r with the features f[0..nf)
 * set to src[f]: the local layers recomputed inside the changed
 * rectangles over the row's activations, which are row 0 of the
 * workspace (the row's own forward pass). */
static void local_forward(const unit *u, local_bufs *lb, const float *xr, const float *src,
                          const int *f, int nf, double *z) {
    const eng_model *m = u->q.m;
    const pert_priv *pv = u->pv;
    const eng_workspace *ws = &u->q.sc->ws;
    int C = m->in_shape[0], H = m->in_shape[1], W = m->in_shape[2];
    rect r = {H, -1, W, -1};
    for (int j = 0; j < nf; j++) {
        const int y = (f[j] / W) % H, x = f[j] % W;
        r.y0 = y < r.y0 ? y : r.y0;
        r.y1 = y > r.y1 ? y : r.y1;
        r.x0 = x < r.x0 ? x : r.x0;
        r.x1 = x > r.x1 ? x : r.x1;
    }
    float *reg = lb->reg[0];
    int h = r.y1 - r.y0 + 1, w = r.x1 - r.x0 + 1, cur = 0;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < h; y++)
            memcpy(reg + ((size_t)c * h + y) * w, xr + ((size_t)c * H + r.y0 + y) * W + r.x0,
                   (size_t)w * sizeof(float));
    for (int j = 0; j < nf; j++) {
        const int c = f[j] / (H * W), y = (f[j] / W) % H - r.y0, x = f[j] % W - r.x0;
        reg[((size_t)c * h + y) * w + x] = src[f[j]];
    }
    for (int i = 0; i < pv->flat; i++) {
        const eng_layer *L = &m->layers[i];
        const float *base = i == 0 ? xr : (const float *)eng_ws_act(ws, i - 1); /* row 0 */
        const float *in = lb->reg[cur];
        float *out = lb->reg[1 - cur];
        const float *prm = m->params;
        const eng_tensor *t = m->tensors + L->tensor0;
        if (L->kind == ENG_LAYER_CONV2D || L->kind == ENG_LAYER_MAXPOOL2D ||
            L->kind == ENG_LAYER_AVGPOOL2D) {
            eng_geom2d g = L->g;
            rect o;
            if (!field(r.y0, r.y1, g.KH, g.SH, g.PH, g.DH, g.OH, &o.y0, &o.y1) ||
                !field(r.x0, r.x1, g.KW, g.SW, g.PW, g.DW, g.OW, &o.x0, &o.x1)) {
                /* no output sees the change: the rest is the row's own */
                const float *bl = lb->base_lin;
                for (int k = 0; k < pv->lin_out; k++) z[k] = bl[k];
                return;
            }
            const int cy0 = o.y0 * g.SH - g.PH, cx0 = o.x0 * g.SW - g.PW;
            const int ch = (o.y1 - o.y0) * g.SH + (g.KH - 1) * g.DH + 1;
            const int cw = (o.x1 - o.x0) * g.SW + (g.KW - 1) * g.DW + 1;
            const float pad = L->kind == ENG_LAYER_MAXPOOL2D ? -INFINITY : 0.0f;
            float *cr = lb->crop;
            /* the crop: padding outside the plane, the changed region
             * inside r, the row's own activations elsewhere */
            const int xa = cx0 > 0 ? cx0 : 0, xb = cx0 + cw - 1 < g.W - 1 ? cx0 + cw - 1 : g.W - 1;
            const int ra = r.x0 > xa ? r.x0 : xa, rb = r.x1 < xb ? r.x1 : xb;
            for (int c = 0; c < g.C; c++)
                for (int y = 0; y < ch; y++) {
                    const int Y = cy0 + y;
                    float *row = cr + ((size_t)c * ch + y) * cw;
                    if (Y < 0 || Y >= g.H || xa > xb) {
                        for (int x = 0; x < cw; x++) row[x] = pad;
                        continue;
                    }
                    for (int x = 0; x < xa - cx0; x++) row[x] = pad;
                    for (int x = xb - cx0 + 1; x < cw; x++) row[x] = pad;
                    memcpy(row + (xa - cx0), base + ((size_t)c * g.H + Y) * g.W + xa,
                           (size_t)(xb - xa + 1) * sizeof(float));
                    if (Y >= r.y0 && Y <= r.y1 && ra <= rb)
                        memcpy(row + (ra - cx0), in + ((size_t)c * h + Y - r.y0) * w + ra - r.x0,
                               (size_t)(rb - ra + 1) * sizeof(float));
                }
            g.H = ch;
            g.W = cw;
            g.PH = g.PW = 0;
            g.OH = o.y1 - o.y0 + 1;
            g.OW = o.x1 - o.x0 + 1;
            if (L->kind == ENG_LAYER_CONV2D)
                eng_conv2d_forward(out, cr, prm + t[0].off,
                                   L->n_tensors > 1 ? prm + t[1].off : NULL, &g, 1, lb->col);
            else if (L->kind == ENG_LAYER_MAXPOOL2D)
                eng_maxpool2d_forward(out, NULL, cr, &g, 1);
            else
                eng_avgpool2d_forward(out, cr, &g, 1);
            r = o;
            h = g.OH;
            w = g.OW;
            C = g.OC;
            H = L->out_shape[1];
            W = L->out_shape[2];
        } else {
            const size_t n = (size_t)C * h * w;
            if (L->kind == ENG_LAYER_BATCHNORM2D) {
                const float *sl[4] = {NULL, NULL, NULL, NULL};
                for (int k = 0; k < L->n_tensors; k++) sl[4 - L->n_tensors + k] = prm + t[k].off;
                eng_batchnorm_forward(out, in, sl[0], sl[1], sl[2], sl[3], L->eps, 1, C, h * w);
            } else if (L->kind == ENG_LAYER_DROPOUT) {
                memcpy(out, in, n * sizeof(float));
            } else {
                eng_act_forward(L->kind, out, in, n);
            }
        }
        cur = 1 - cur;
    }
    /* flatten, then the linear: z = its output for x_r + W[:, changed] delta */
    const float *reg_f = lb->reg[cur];
    const float *base_f = (const float *)eng_ws_act(ws, pv->flat - 1);
    const int OC = pv->lin_out;
    for (int k = 0; k < OC; k++) z[k] = lb->base_lin[k];
    for (int c = 0; c < C; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const size_t idx = ((size_t)c * H + r.y0 + y) * W + r.x0 + x;
                const double delta =
                    (double)reg_f[((size_t)c * h + y) * w + x] - (double)base_f[idx];
                if (delta != 0.0) axpy(z, delta, pv->lwt + idx * OC, OC);
            }
}

/* partial (R, D) += f(x_r) - f(x_r with column c's features replaced), on
 * those features: by the baseline (occlusion, ablation) or by row
 * sigma_c(r)'s values (permutation). */
static void run_drop(unit *u, int c0, int c1, double *partial) {
    const int R = u->R, D = u->D, H = u->H, B = u->q.cap;
    const int perm = u->s->kind == MTH_FEATURE_PERMUTATION, nc = c1 - c0;
    const float *x = u->rows->x;
    arena a = {0};
    const pert_priv *pv = u->pv;
    a.cap = unit_head_bytes(u) + al((size_t)R * sizeof(double)) + al((size_t)B * sizeof(double)) +
            al((size_t)D * sizeof(int)) + (perm ? al((size_t)nc * R * sizeof(int)) : 0);
    if (u->local)
        a.cap += 2 * al(pv->reg_max * sizeof(float)) + al(pv->crop_max * sizeof(float)) +
                 al(pv->col_max * sizeof(float)) + al((size_t)H * sizeof(float)) +
                 al((size_t)H * sizeof(double));
    a.base = mth_buf(u->q.sc, 5, a.cap);
    unit_head(u, &a);
    local_bufs lb = {{NULL, NULL}, NULL, NULL, NULL};
    if (u->local) {
        lb.reg[0] = take(&a, pv->reg_max * sizeof(float));
        lb.reg[1] = take(&a, pv->reg_max * sizeof(float));
        lb.crop = take(&a, pv->crop_max * sizeof(float));
        lb.col = take(&a, pv->col_max * sizeof(float));
        lb.base_lin = take(&a, (size_t)H * sizeof(float));
        u->zcur = take(&a, (size_t)H * sizeof(double));
    }
    double *fx = take(&a, (size_t)R * sizeof(double));
    double *Y = take(&a, (size_t)B * sizeof(double));
    int *f = take(&a, (size_t)D * sizeof(int));
    int *sigma = perm ? take(&a, (size_t)nc * R * sizeof(int)) : NULL;
    if (perm)
        for (int c = c0; c < c1; c++) row_permutation(u, c, sigma + (size_t)(c - c0) * R);
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * D;
        if (u->local) { /* the row's own forward pass: every layer's output */
            const float *lg = eng_model_forward(u->q.m, &u->q.sc->ws, xr, 1);
            const int32_t t = u->rows->target[r];
            AT_CHECK(t >= 0 && t < u->q.m->out_features);
            fx[r] = (double)lg[t];
            memcpy(lb.base_lin, eng_ws_act(&u->q.sc->ws, pv->lin), (size_t)H * sizeof(float));
        } else {
            queue_fx(u, r, fx + r);
            evq_flush(&u->q);
        }
        for (int cb = c0; cb < c1; cb = block_end(cb, c1, B)) {
            const int ce = block_end(cb, c1, B);
            for (int c = cb; c < ce; c++) {
                const int nf = drop_feats(u, c, f);
                const float *src =
                    perm ? x + (size_t)sigma[(size_t)(c - c0) * R + r] * D : u->rows->baseline;
                int same = 1;
                for (int j = 0; j < nf && same; j++) same = src[f[j]] == xr[f[j]];
                if (same) { /* nothing changes: the drop is exactly 0 */
                    Y[c - cb] = fx[r];
                    continue;
                }
                const int k = evq_push(&u->q, r, Y + (c - cb));
                if (u->local) {
                    local_forward(u, &lb, xr, src, f, nf, u->zcur);
                    put_z(&u->q, k, u->zcur);
                } else if (u->head >= 0) {
                    double *z = u->zcur;
                    memcpy(z, u->zx + (size_t)r * H, (size_t)H * sizeof(double));
                    for (int j = 0; j < nf; j++) {
                        const int d = f[j];
                        const double delta = (double)src[d] - (double)xr[d];
                        if (delta != 0.0) axpy(z, delta, u->pv->wt + (size_t)d * H, H);
                    }
                    put_z(&u->q, k, z);
                } else {
                    float *xk = u->q.sc->xin + (size_t)k * D;
                    memcpy(xk, xr, (size_t)D * sizeof(float));
                    for (int j = 0; j < nf; j++) xk[f[j]] = src[f[j]];
                }
            }
            evq_flush(&u->q);
            double *pr = partial + (size_t)r * D;
            for (int c = cb; c < ce; c++) {
                const int nf = drop_feats(u, c, f);
                const double drop = fx[r] - Y[c - cb];
                for (int j = 0; j < nf; j++) pr[f[j]] += drop;
            }
        }
    }
}

/* ---------------------------------------- Shapley, Kernel SHAP, LIME */

/* Rows per block for the per-row group vectors U (rows, P, H): about
 * 32 MiB. */
static int row_block(const unit *u) {
    if (u->head < 0) return u->R > 0 ? u->R : 1;
    size_t per_row = (size_t)u->P * u->H * sizeof(double);
    size_t n = ((size_t)32 << 20) / (per_row ? per_row : 1);
    if (n < 1) n = 1;
    return (int)(n < (size_t)u->R ? n : (size_t)(u->R > 0 ? u->R : 1));
}

/* For rows [ra, ra + nr): noop (nr, P) = 1 where all of group g's features
 * equal the baseline; head mode: U (nr, P, H) = W[:, g] (x_g - b_g). */
static void group_vectors(const unit *u, int ra, int nr, uint8_t *noop, double *U) {
    const int D = u->D, P = u->P, H = u->H;
    const float *b = u->rows->baseline;
    if (U) memset(U, 0, (size_t)nr * P * H * sizeof(double));
    memset(noop, 1, (size_t)nr * P);
    for (int i = 0; i < nr; i++) {
        const float *xr = u->rows->x + (size_t)(ra + i) * D;
        for (int d = 0; d < D; d++) {
            if (xr[d] == b[d]) continue;
            const int g = u->pv->gof[d];
            noop[(size_t)i * P + g] = 0;
            if (U)
                axpy(U + ((size_t)i * P + g) * H, (double)xr[d] - (double)b[d],
                     u->pv->wt + (size_t)d * H, H);
        }
    }
}

/* Column c's permutation of row r's groups (antithetic pairs). */
static void shapley_perm(const unit *u, int r, int c, int *pi) {
    const int P = u->P;
    const uint64_t st = stream_of(u->s, PURPOSE_SHAPLEY), row = (uint64_t)(u->rows->row0 + r);
    const uint64_t k = (uint64_t)(c / 2);
    for (int g = 0; g < P; g++) pi[g] = g;
    for (int i = P - 1; i > 0; i--) {
        int j = (int)at_rng_below((uint64_t)i + 1, u->s->seed, st, row, (k << 32) | (uint64_t)i);
        int t = pi[i];
        pi[i] = pi[j];
        pi[j] = t;
    }
    if (c % 2)
        for (int i = 0; i < P / 2; i++) {
            int t = pi[i];
            pi[i] = pi[P - 1 - i];
            pi[P - 1 - i] = t;
        }
}

/* The walk's last step that adds a group (-1 if none): from there on the
 * input is x, whose f(x) is known. */
static int last_step(const int *pi, const uint8_t *no, int P) {
    int j = P - 1;
    while (j >= 0 && no[pi[j]]) j--;
    return j;
}

/* partial (R, P) += the marginal contributions of each row's walk from the
 * baseline to x along columns [c0, c1)'s permutations. */
static void run_shapley(unit *u, int c0, int c1, double *partial) {
    const int R = u->R, D = u->D, H = u->H, P = u->P, S = P > 1 ? P - 1 : 1;
    const int RB = row_block(u), cap = u->q.cap;
    const int B = cap / S > 1 ? cap / S : 1; /* columns per engine call */
    const float *x = u->rows->x, *b = u->rows->baseline;
    arena a = {0};
    a.cap =
        unit_head_bytes(u) + 2 * al((size_t)R * sizeof(double)) +
        al((size_t)B * S * sizeof(double)) + al((size_t)B * P * sizeof(int)) + al((size_t)RB * P) +
        (u->head >= 0 ? al((size_t)RB * P * H * sizeof(double)) : al((size_t)D * sizeof(float)));
    a.base = mth_buf(u->q.sc, 5, a.cap);
    unit_head(u, &a);
    double *fx = take(&a, (size_t)R * sizeof(double));
    double *fb = take(&a, (size_t)R * sizeof(double));
    double *Y = take(&a, (size_t)B * S * sizeof(double));
    int *perms = take(&a, (size_t)B * P * sizeof(int));
    uint8_t *noop = take(&a, (size_t)RB * P);
    double *U = u->head >= 0 ? take(&a, (size_t)RB * P * H * sizeof(double)) : NULL;
    float *cur = u->head >= 0 ? NULL : take(&a, (size_t)D * sizeof(float));
    for (int ra = 0; ra < R; ra += RB) {
        const int nr = R - ra < RB ? R - ra : RB;
        group_vectors(u, ra, nr, noop, U);
        for (int ri = 0; ri < nr; ri++) {
            const int r = ra + ri;
            const float *xr = x + (size_t)r * D;
            const uint8_t *no = noop + (size_t)ri * P;
            /* f(x) and f(b) of the row, in an engine call of their own */
            queue_fx(u, r, fx + r);
            int k = evq_push(&u->q, r, fb + r);
            if (u->head >= 0)
                put_z(&u->q, k, u->zb);
            else
                memcpy(u->q.sc->xin + (size_t)k * D, b, (size_t)D * sizeof(float));
            evq_flush(&u->q);
            for (int cb = c0; cb < c1; cb = block_end(cb, c1, B)) {
                const int ce = block_end(cb, c1, B);
                for (int c = cb; c < ce; c++) {
                    int *pi = perms + (size_t)(c - cb) * P;
                    shapley_perm(u, r, c, pi);
                    if (u->head >= 0)
                        memcpy(u->zcur, u->zb, (size_t)H * sizeof(double));
                    else
                        memcpy(cur, b, (size_t)D * sizeof(float));
                    const int jl = last_step(pi, no, P);
                    for (int j = 0; j < jl; j++) {
                        const int g = pi[j];
                        if (no[g]) continue; /* a null player: no step */
                        k = evq_push(&u->q, r, Y + (size_t)(c - cb) * S + j);
                        if (u->head >= 0) {
                            axpy(u->zcur, 1.0, U + ((size_t)ri * P + g) * H, H);
                            put_z(&u->q, k, u->zcur);
                        } else {
                            for (int e = u->pv->gstart[g]; e < u->pv->gstart[g + 1]; e++) {
                                const int d = u->pv->gfeat[e];
                                cur[d] = xr[d];
                            }
                            memcpy(u->q.sc->xin + (size_t)k * D, cur, (size_t)D * sizeof(float));
                        }
                    }
                }
                evq_flush(&u->q);
                double *pr = partial + (size_t)r * P;
                for (int c = cb; c < ce; c++) {
                    const int *pi = perms + (size_t)(c - cb) * P;
                    const int jl = last_step(pi, no, P);
                    double prev = fb[r];
                    for (int j = 0; j <= jl; j++) {
                        const int g = pi[j];
                        if (no[g]) continue;
                        const double y = j == jl ? fx[r] : Y[(size_t)(c - cb) * S + j];
                        pr[g] += y - prev;
                        prev = y;
                    }
                }
            }
        }
    }
}

/* Kernel SHAP and LIME: partial += (w z y) per group, and w y (LIME). */
static void run_coalitions(unit *u, int c0, int c1, double *partial) {
    const int R = u->R, D = u->D, H = u->H, P = u->P;
    const int lime = u->s->kind == MTH_LIME, W = lime ? P + 1 : P;
    const int RB = row_block(u), B = u->q.cap;
    const float *x = u->rows->x, *b = u->rows->baseline;
    arena a = {0};
    a.cap = unit_head_bytes(u) + al((size_t)B * sizeof(double)) + al((size_t)RB * P) +
            (u->head >= 0 ? al((size_t)RB * P * H * sizeof(double)) : 0);
    a.base = mth_buf(u->q.sc, 5, a.cap);
    unit_head(u, &a);
    double *Y = take(&a, (size_t)B * sizeof(double));
    uint8_t *noop = take(&a, (size_t)RB * P);
    double *U = u->head >= 0 ? take(&a, (size_t)RB * P * H * sizeof(double)) : NULL;
    for (int ra = 0; ra < R; ra += RB) {
        const int nr = R - ra < RB ? R - ra : RB;
        group_vectors(u, ra, nr, noop, U);
        for (int ri = 0; ri < nr; ri++) {
            const int r = ra + ri;
            const float *xr = x + (size_t)r * D;
            for (int cb = c0; cb < c1; cb = block_end(cb, c1, B)) {
                const int ce = block_end(cb, c1, B);
                for (int c = cb; c < ce; c++) {
                    const uint8_t *z = u->pv->Z + (size_t)c * P;
                    int k_on = 0;
                    for (int g = 0; g < P; g++) k_on += z[g];
                    /* build from the nearer end: the baseline plus the
                     * kept groups, or x minus the removed ones */
                    const int from_x = 2 * k_on > P;
                    const int k = evq_push(&u->q, r, Y + (c - cb));
                    if (u->head >= 0) {
                        double *zc = u->zcur;
                        memcpy(zc, from_x ? u->zx + (size_t)r * H : u->zb,
                               (size_t)H * sizeof(double));
                        for (int g = 0; g < P; g++) {
                            if (z[g] == from_x || noop[(size_t)ri * P + g]) continue;
                            axpy(zc, from_x ? -1.0 : 1.0, U + ((size_t)ri * P + g) * H, H);
                        }
                        put_z(&u->q, k, zc);
                    } else {
                        float *xk = u->q.sc->xin + (size_t)k * D;
                        const float *src = from_x ? b : xr;
                        memcpy(xk, from_x ? xr : b, (size_t)D * sizeof(float));
                        for (int g = 0; g < P; g++) {
                            if (z[g] == from_x) continue;
                            for (int e = u->pv->gstart[g]; e < u->pv->gstart[g + 1]; e++) {
                                const int d = u->pv->gfeat[e];
                                xk[d] = src[d];
                            }
                        }
                    }
                }
                evq_flush(&u->q);
                double *pr = partial + (size_t)r * W;
                for (int c = cb; c < ce; c++) {
                    const uint8_t *z = u->pv->Z + (size_t)c * P;
                    const double wy = u->pv->wz[c] * Y[c - cb];
                    for (int g = 0; g < P; g++)
                        if (z[g]) pr[g] += wy;
                    if (lime) pr[P] += wy;
                }
            }
        }
    }
}

void pert_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                   int c0, int c1, double *partial) {
    if (rows->R == 0 || c0 == c1) return;
    unit u;
    unit_init(&u, s, m, sc, rows);
    switch (s->kind) {
    case MTH_OCCLUSION:
    case MTH_FEATURE_ABLATION:
    case MTH_FEATURE_PERMUTATION:
        run_drop(&u, c0, c1, partial);
        break;
    case MTH_SHAPLEY_SAMPLING:
        run_shapley(&u, c0, c1, partial);
        break;
    case MTH_KERNEL_SHAP:
    case MTH_LIME:
        run_coalitions(&u, c0, c1, partial);
        break;
    default:
        AT_CHECK(0 && "not a perturbation kind");
    }
}

/* ------------------------------------------------------------ finalize */

/* scores_d = phi_g / |g| for every feature d of group g. */
static void spread(const pert_priv *pv, int D, const double *phi, float *scores) {
    for (int d = 0; d < D; d++) {
        const int g = pv->gof[d];
        scores[d] = (float)(phi[g] / (pv->gstart[g + 1] - pv->gstart[g]));
    }
}

void pert_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                   const double *acc, float *scores) {
    const pert_priv *pv = s->priv;
    const int R = rows->R, D = s->D, P = pv->P, C = m->out_features;
    if (R == 0) return;
    switch (s->kind) {
    case MTH_OCCLUSION:
        for (int r = 0; r < R; r++)
            for (int d = 0; d < D; d++)
                scores[(size_t)r * D + d] =
                    pv->cover[d] > 0.0 ? (float)(acc[(size_t)r * D + d] / pv->cover[d]) : 0.0f;
        return;
    case MTH_FEATURE_ABLATION:
    case MTH_FEATURE_PERMUTATION:
        for (size_t i = 0; i < (size_t)R * D; i++) scores[i] = (float)acc[i];
        return;
    case MTH_SHAPLEY_SAMPLING: {
        double *phi = mth_buf(sc, 4, (size_t)P * sizeof(double));
        for (int r = 0; r < R; r++) {
            for (int g = 0; g < P; g++) phi[g] = acc[(size_t)r * P + g] / s->n_cols;
            spread(pv, D, phi, scores + (size_t)r * D);
        }
        return;
    }
    case MTH_KERNEL_SHAP: {
        double *buf = mth_buf(sc, 4, ((size_t)R + P + C) * sizeof(double));
        double *fx = buf, *phi = buf + R, *fbl = buf + R + P;
        mth_forward_targets(m, sc, rows->x, rows->target, R, fx);
        const float *lg = eng_model_forward(m, &sc->ws, rows->baseline, 1);
        for (int c = 0; c < C; c++) fbl[c] = lg[c];
        for (int r = 0; r < R; r++) {
            const double fb = fbl[rows->target[r]], delta = fx[r] - fb;
            const double *ar = acc + (size_t)r * P;
            for (int g = 0; g < P; g++) phi[g] = ar[g] - fb * pv->zsum[g];
            chol_solve(pv->L, P, phi, phi);
            double sum = 0.0;
            for (int g = 0; g < P; g++) sum += phi[g];
            const double lambda = (sum - delta) / pv->one_ginv1;
            for (int g = 0; g < P; g++) phi[g] -= lambda * pv->ginv1[g];
            spread(pv, D, phi, scores + (size_t)r * D);
        }
        return;
    }
    case MTH_LIME: {
        double *phi = mth_buf(sc, 4, (size_t)P * sizeof(double));
        for (int r = 0; r < R; r++) {
            const double *ar = acc + (size_t)r * (P + 1);
            const double ybar = ar[P] / pv->wsum;
            for (int g = 0; g < P; g++) phi[g] = ar[g] - pv->zsum[g] * ybar;
            chol_solve(pv->L, P, phi, phi);
            spread(pv, D, phi, scores + (size_t)r * D);
        }
        return;
    }
    default:
        AT_CHECK(0 && "not a perturbation kind");
    }
}
