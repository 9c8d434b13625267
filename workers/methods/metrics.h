/* metrics.h — evaluation metrics of attributions, per row.
 *
 * Model of use
 * ------------
 * After a method's scores (R, D) for a block of rows are final, the
 * results assembly calls the metrics it was asked for on the same rows
 * (mth_rows: x, baseline, target, row0, refs) with the same model and a
 * scratch (mth_scratch, cap engine rows per forward):
 *
 *   mtr_config c; mtr_config_default(&c);     // then the job's fields
 *   c.seed = job seed; c.stream = the method's index in the job;
 *   if (mtr_config_check(&c, m, &err)) ...    // AT_EUSER names the field
 *   mtr_deletion_insertion(&c, m, sc, &rows, scores, out4, NULL);
 *   mtr_infidelity(&c, m, sc, &rows, scores, out2);
 *   mtr_sensitivity_max(&c, spec, m, sc, &rows, NULL, out1);
 *   mtr_agreement(scores_a, scores_b, R, D, c.top_k, out3);
 *
 * Every output is a pure function of (config, model, the row's x, target,
 * selection index row0 + r, scores, the scratch's cap): splitting a block
 * of rows anywhere gives the same bytes. (Another cap moves inputs between
 * OpenBLAS's sgemm kernels, which round differently: float32 rounding of
 * the forwards, ~1e-7 relative; keep cap the same on every rank.) Inputs
 * run in batches of G = cap / U rows' U perturbed inputs each, grouped by
 * selection index, so a block of R rows pays up to 2 (G - 1) rows of
 * padding; blocks of a multiple of G rows starting at a multiple of G pay
 * none. Sensitivity-max inherits the method's own batching. Random draws are
 * at_rng_*(seed, stream * 64 + MTR_PURPOSE_*, row0 + r, j * D + d) for
 * perturbation j and feature d; purposes 56..63 of a method's stream are
 * reserved for metrics (no method family may use them).
 *
 * The metrics (f = the target's logit unless said otherwise)
 * -----------
 * deletion / insertion (Samek 2017, Petsiuk 2018). Order the features by
 *   score, ties by feature index ascending: MoRF = descending score, LeRF =
 *   ascending score (NaN scores count as -inf). K = n_steps; at step k the
 *   first n_k = round(k D / K) features of the order (half up) are removed
 *   (deletion: start at x, removed features take the baseline) or inserted
 *   (insertion: start at the baseline, inserted features take x). Curve
 *   value v_k = softmax probability of the target (use_prob = 1) or its
 *   logit. AUC by the trapezoid rule over the fraction removed/inserted
 *   t_k = n_k / D in [0, 1]: sum_k (t_{k+1} - t_k) (v_k + v_{k+1}) / 2.
 *   Output (R, 4): deletion_morf, deletion_lerf, insertion_morf,
 *   insertion_lerf; optional curves (R, 4, K + 1) in the same order.
 *   Cost per row: 4 (K - 1) + 1 forwards (v at x is shared by the deletion
 *   curves' start and the insertion curves' end), plus one forward of the
 *   baseline per call. Baseline NULL = zeros.
 *
 * infidelity (Yeh et al. 2019; Captum metrics.infidelity). n = infid_n
 *   perturbations I_j ~ N(0, infid_sigma^2) per feature; the perturbed
 *   input is x - I_j rounded to float32, and I_j is taken as what was
 *   actually applied, x - fl(x - I_j). With a_j = I_j . phi and
 *   b_j = f(x) - f(x - I_j) (f = target logit: the quantity attributions
 *   explain):
 *     raw        = (1/n) sum_j (a_j - b_j)^2                 (Captum default)
 *     normalised = (1/n) sum_j (beta a_j - b_j)^2, beta = sum a b / sum a^2
 *                  (beta = 0 when sum a^2 = 0; Captum normalize=True)
 *   Output (R, 2): raw, normalised. Cost per row: n + 1 forwards.
 *
 * sensitivity-max (Yeh et al. 2019; Captum metrics.sensitivity_max).
 *   n = sens_n perturbations d_j uniform in [-r, r]^D (r = sens_radius);
 *     sens = max_j ||phi(x + d_j) - phi(x)||_2 / ||phi(x)||_2
 *   with a zero ||phi(x)|| replaced by 1 (Captum). phi(x + d_j) is the
 *   method (mth_attribute) on the perturbed rows with the SAME selection
 *   indices, so a stochastic method reuses its draws and the metric sees
 *   the input change, not Monte Carlo noise. phi(x): the scores passed in,
 *   or with scores NULL recomputed by mth_attribute like the perturbed ones
 *   (Captum recomputes; recommended). Output (R). Cost per row: n (+ 1)
 *   runs of the method. The method's spec must be planned for the model.
 *
 * agreement of two methods' scores a, b (R, D), per row. Output (R, 3):
 *   Spearman rho = Pearson correlation of the average ranks (ties share
 *   their mean rank); Kendall tau-b = (n_c - n_d) / sqrt((n_0 - n_1)(n_0 -
 *   n_2)) by Knight's O(D log D) merge sort; both on the signed scores, NaN
 *   when a row of a or b is constant (as scipy). Top-k overlap =
 *   |top_k(|a|) n top_k(|b|)| / k, top-k by magnitude, ties by feature
 *   index ascending; k = top_k, 0 = max(1, round(D / 10)).
 *
 * This module uses the engine and the methods only; no MPI, HDF5 or YAML.
 */
#ifndef ATTRIB_METRICS_H
#define ATTRIB_METRICS_H

#include <stdint.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

/* RNG purposes within a method's stream (stream * 64 + purpose). */
enum {
    MTR_PURPOSE_INFIDELITY = 60,  /* a = row0 + r, b = j * D + d */
    MTR_PURPOSE_SENSITIVITY = 61, /* a = row0 + r, b = j * D + d */
};

typedef struct {
    int n_steps;        /* deletion/insertion: K >= 1 (default 20) */
    int use_prob;       /* deletion/insertion: 1 softmax prob (default), 0 logit */
    int infid_n;        /* infidelity: perturbations >= 1 (default 10) */
    double infid_sigma; /* infidelity: noise stdev, absolute, > 0 (default 0.003) */
    int sens_n;         /* sensitivity-max: perturbations >= 1 (default 10) */
    double sens_radius; /* sensitivity-max: L-inf radius > 0 (default 0.02) */
    int top_k;          /* agreement: 0 = max(1, round(D / 10)), else 1..D */
    uint64_t seed;      /* the job's seed */
    uint64_t stream;    /* the method's stream (its index in the job) */
} mtr_config;

/* The defaults above (seed 0, stream 0). */
void mtr_config_default(mtr_config *c);
/* Check the fields against the model: returns 0, or AT_EUSER naming the
 * field ("metrics.n_steps is 0; expected >= 1"). The perturbing metrics
 * (all but agreement) refuse token models (inputs are ids): call this
 * only when one of them is requested, else check top_k yourself. */
int mtr_config_check(const mtr_config *c, const eng_model *m, at_err *err);
/* k used by mtr_agreement for top_k and D. */
int mtr_top_k(int top_k, int D);

/* out (R, 4) = AUCs of deletion_morf, deletion_lerf, insertion_morf,
 * insertion_lerf; curves (R, 4, n_steps + 1) when not NULL. scores (R, D). */
void mtr_deletion_insertion(const mtr_config *c, const eng_model *m, mth_scratch *sc,
                            const mth_rows *rows, const float *scores, double *out, double *curves);

/* out (R, 2) = raw and normalised infidelity of scores (R, D). */
void mtr_infidelity(const mtr_config *c, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    const float *scores, double *out);

/* out (R) = sensitivity-max of the method `method` (planned for m); scores
 * (R, D) = phi(x), or NULL to recompute it. Allocates its own (R, D)
 * buffers: the method may use every scratch slot. */
void mtr_sensitivity_max(const mtr_config *c, const mth_spec *method, const eng_model *m,
                         mth_scratch *sc, const mth_rows *rows, const float *scores, double *out);

/* out (R, 3) = Spearman rho, Kendall tau-b, top-k overlap of a and b (R, D). */
void mtr_agreement(const float *a, const float *b, int R, int D, int top_k, double *out);

#endif
