/* optim.c — optimizers, learning-rate schedules, the training epoch and
 * evaluation (engine.h, "training").
 *
 * The update rules are PyTorch 1.13's single-tensor paths
 * (torch/optim/sgd.py, adam.py, adamw.py) with dampening 0, maximize
 * False and amsgrad False. Each element is updated in float64 from its
 * float32 parameter, gradient and state, and stored back as float32.
 * Only elements whose tensor is trainable move (opt->mask); batch-norm
 * running statistics are buffers and keep their values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define OPTIM_PI 3.14159265358979323846

/* ------------------------------------------------------------ optimizers */

void eng_optim_init(eng_optim *opt, const eng_model *m, eng_opt_kind kind, double lr,
                    double momentum, int nesterov, double weight_decay, double beta1, double beta2,
                    double eps) {
    AT_CHECK(opt && m);
    AT_CHECK(kind == ENG_OPT_SGD || kind == ENG_OPT_ADAM || kind == ENG_OPT_ADAMW);
    AT_CHECK(lr >= 0 && weight_decay >= 0 && momentum >= 0);
    /* PyTorch: "Nesterov momentum requires a momentum and zero dampening" */
    AT_CHECK(!nesterov || (kind == ENG_OPT_SGD && momentum > 0));
    AT_CHECK(kind == ENG_OPT_SGD ||
             (beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps >= 0));
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->lr = lr;
    opt->momentum = momentum;
    opt->weight_decay = weight_decay;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->nesterov = nesterov;
    opt->n = m->n_params;
    size_t n = opt->n ? opt->n : 1;
    opt->mask = at_calloc(n, 1, "optimizer mask");
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        AT_CHECK(T->off + T->numel <= m->n_params);
        if (T->trainable) memset(opt->mask + T->off, 1, T->numel);
    }
    if (kind != ENG_OPT_SGD || momentum != 0)
        opt->m1 = at_calloc(n, sizeof(float), "optimizer first moment");
    if (kind != ENG_OPT_SGD) opt->m2 = at_calloc(n, sizeof(float), "optimizer second moment");
}

/* SGD: g = grad + wd p; buf = momentum buf + g (buf starts at g, which is
 * the same from a zero buffer); d = nesterov ? g + momentum buf : buf;
 * p -= lr d. */
static void sgd_step(eng_optim *opt, float *params /* (n) */, const float *grads /* (n) */,
                     double lr) {
    const double mu = opt->momentum, wd = opt->weight_decay;
    for (size_t i = 0; i < opt->n; i++) {
        if (!opt->mask[i]) continue;
        double p = params[i], g = (double)grads[i] + wd * p, d = g;
        if (mu != 0) {
            double buf = mu * (double)opt->m1[i] + g;
            opt->m1[i] = (float)buf;
            d = opt->nesterov ? g + mu * buf : buf;
        }
        params[i] = (float)(p - lr * d);
    }
}

/* Adam (weight decay added to the gradient) and AdamW (decoupled: p *= 1 -
 * lr wd first): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
static void adam_step(eng_optim *opt, float *params /* (n) */, const float *grads /* (n) */,
                      double lr) {
    const double b1 = opt->beta1, b2 = opt->beta2, wd = opt->weight_decay;
    const int decoupled = opt->kind == ENG_OPT_ADAMW;
    const double t = (double)opt->step;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    const double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
    for (size_t i = 0; i < opt->n; i++) {
        if (!opt->mask[i]) continue;
        double p = params[i], g = grads[i];
        if (decoupled)
            p *= 1.0 - lr * wd;
        else
            g += wd * p;
        double m = b1 * (double)opt->m1[i] + (1.0 - b1) * g;
        double v = b2 * (double)opt->m2[i] + (1.0 - b2) * g * g;
        opt->m1[i] = (float)m;
        opt->m2[i] = (float)v;
        params[i] = (float)(p - step_size * m / (sqrt(v) / bc2_sqrt + opt->eps));
    }
}

void eng_optim_step(eng_optim *opt, float *params, const float *grads, double lr) {
    AT_CHECK(opt && opt->mask && params && grads && lr >= 0);
    opt->step++;
    if (opt->kind == ENG_OPT_SGD)
        sgd_step(opt, params, grads, lr);
    else
        adam_step(opt, params, grads, lr);
}

void eng_optim_free(eng_optim *opt) {
    if (!opt) return;
    free(opt->m1);
    free(opt->m2);
    free(opt->mask);
    opt->m1 = opt->m2 = NULL;
    opt->mask = NULL;
}

/* ------------------------------------------------------------- schedules */

double eng_sched_lr(const eng_sched *s, int epoch) {
    AT_CHECK(s && epoch >= 0);
    switch (s->kind) {
    case ENG_SCHED_CONSTANT:
        return s->lr;
    case ENG_SCHED_STEP:
        /* StepLR: base_lr * gamma ** (last_epoch // step_size) */
        AT_CHECK(s->step_size >= 1);
        return s->lr * pow(s->gamma, (double)(epoch / s->step_size));
    case ENG_SCHED_COSINE:
        /* CosineAnnealingLR's closed form, T_max = total epochs */
        AT_CHECK(s->total_epochs >= 1);
        return s->min_lr + (s->lr - s->min_lr) *
                               (1.0 + cos(OPTIM_PI * (double)epoch / (double)s->total_epochs)) /
                               2.0;
    }
    AT_CHECK(!"unknown schedule kind");
    return 0.0;
}

/* -------------------------------------------------------------- training */

static int argmax_row(const float *z /* (C) */, int C) {
    int best = 0;
    for (int c = 1; c < C; c++)
        if (z[c] > z[best]) best = c;
    return best;
}

double eng_train_epoch(eng_model *m, eng_workspace *ws, eng_optim *opt, double lr,
                       const eng_loss *loss, float *grads, const float *x, const int32_t *labels,
                       int n_rows, int batch, uint64_t seed, int epoch, double *acc) {
    AT_CHECK(m && ws && opt && loss && grads && x && labels && n_rows >= 0);
    AT_CHECK(ws->dtype == ENG_F32 && batch >= 1 && batch <= ws->cap);
    AT_CHECK(opt->n == m->n_params);
    AT_CHECK(loss->kind == ENG_LOSS_XENT || loss->kind == ENG_LOSS_MSE);
    const int D = m->in_features, C = m->out_features;
    const size_t nperm = n_rows ? (size_t)n_rows : 1;
    uint32_t *perm = at_malloc(nperm * sizeof *perm, "epoch permutation"); /* (n_rows) */
    at_rng_permutation(perm, (uint32_t)n_rows, seed, AT_STREAM_SHUFFLE + 16u * (uint64_t)epoch);
    float *xb = at_malloc((size_t)batch * D * sizeof *xb, "minibatch inputs");      /* (B, D) */
    int32_t *yb = at_malloc((size_t)batch * sizeof *yb, "minibatch labels");        /* (B) */
    float *lb = at_malloc((size_t)batch * sizeof *lb, "minibatch losses");          /* (B) */
    float *dlog = at_malloc((size_t)batch * C * sizeof *dlog, "minibatch dlogits"); /* (B, C) */
    double loss_sum = 0.0;
    long correct = 0;
    for (int s = 0; s < n_rows; s += batch) {
        const int nb = n_rows - s < batch ? n_rows - s : batch;
        for (int k = 0; k < nb; k++) {
            const uint32_t r = perm[s + k];
            memcpy(xb + (size_t)k * D, x + (size_t)r * D, (size_t)D * sizeof *xb);
            yb[k] = labels[r];
            AT_CHECK(yb[k] >= 0 && yb[k] < C);
        }
        const float *logits = eng_model_forward(m, ws, xb, nb); /* (nb, C) */
        eng_loss_forward(loss, lb, logits, yb, NULL, nb, C);
        for (int k = 0; k < nb; k++) {
            loss_sum += lb[k];
            if (argmax_row(logits + (size_t)k * C, C) == yb[k]) correct++;
        }
        memset(dlog, 0, (size_t)nb * C * sizeof *dlog);
        eng_loss_backward(loss, dlog, logits, yb, NULL, nb, C, 1.0 / nb);
        memset(grads, 0, m->n_params * sizeof *grads);
        eng_model_backward(m, ws, xb, dlog, nb, NULL, grads);
        eng_optim_step(opt, m->params, grads, lr);
    }
    free(perm);
    free(xb);
    free(yb);
    free(lb);
    free(dlog);
    if (acc) *acc = n_rows ? (double)correct / n_rows : 0.0;
    return n_rows ? loss_sum / n_rows : 0.0;
}

void eng_evaluate(const eng_model *m, eng_workspace *ws, const float *x, const int32_t *labels,
                  int n_rows, double *loss, double *acc, float *logits_out) {
    AT_CHECK(m && ws && x && n_rows >= 0 && ws->dtype == ENG_F32 && ws->cap >= 1);
    const int D = m->in_features, C = m->out_features;
    const eng_loss xent = {ENG_LOSS_XENT, 0.0};
    float *lb = at_malloc((size_t)ws->cap * sizeof *lb, "eval losses"); /* (cap) */
    double loss_sum = 0.0;
    long correct = 0;
    for (int s = 0; s < n_rows; s += ws->cap) {
        const int nb = n_rows - s < ws->cap ? n_rows - s : ws->cap;
        const float *logits = eng_model_forward(m, ws, x + (size_t)s * D, nb); /* (nb, C) */
        if (logits_out) memcpy(logits_out + (size_t)s * C, logits, (size_t)nb * C * sizeof *logits);
        if (!labels) continue;
        for (int k = 0; k < nb; k++) AT_CHECK(labels[s + k] >= 0 && labels[s + k] < C);
        eng_loss_forward(&xent, lb, logits, labels + s, NULL, nb, C);
        for (int k = 0; k < nb; k++) {
            loss_sum += lb[k];
            if (argmax_row(logits + (size_t)k * C, C) == labels[s + k]) correct++;
        }
    }
    free(lb);
    if (loss) *loss = labels && n_rows ? loss_sum / n_rows : 0.0;
    if (acc) *acc = labels && n_rows ? (double)correct / n_rows : 0.0;
}
