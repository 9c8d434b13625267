/* train.c — `attrib train JOB.yaml`: train a model (model.layers, or the
 * model.hidden MLP shorthand) with the engine and write a model file, and
 * checkpoints every train.checkpoint_every epochs. Training runs in one
 * process: under mpirun, rank 0 trains and the other ranks wait
 * (data-parallel training would make the weights depend on the rank
 * count). Same job and seed, same bytes: the minibatch order depends only
 * on (train.seed, epoch), initialisation on train.seed. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "h5io.h"
#include "h5train.h"
#include "pipeline.h"
#include "tda_truth.h"

static const char *opt_name(int k) {
    return k == ENG_OPT_ADAM     ? "adam"
           : k == ENG_OPT_ADAMW  ? "adamw"
           : k == JOB_OPT_NEWTON ? "newton"
                                 : "sgd";
}
static const char *sched_name(int k) {
    return k == ENG_SCHED_STEP ? "step" : k == ENG_SCHED_COSINE ? "cosine" : "constant";
}
static const char *loss_name(int k) { return k == ENG_LOSS_MSE ? "mse" : "cross_entropy"; }

/* Read a whole split (rows [r0, r1)) into memory. */
static int read_split(const char *path, const char *split, int64_t r0, int64_t r1, float **x,
                      int32_t **y, int64_t *n, h5_dataset_info *info, at_err *err) {
    h5_reader *rd = NULL;
    if (h5_reader_open(&rd, path, split, info, err)) return err->code;
    if (r1 < 0) r1 = info->n_rows;
    if (r0 >= info->n_rows || r1 > info->n_rows) {
        h5_reader_close(rd);
        return at_err_set(err, AT_EUSER,
                          "data.rows: rows %lld:%lld are outside split '%s' of %s (%lld rows)",
                          (long long)r0, (long long)r1, split, path, (long long)info->n_rows);
    }
    if (r1 - r0 > 2147483647LL / (info->n_features > 0 ? info->n_features : 1) ||
        r1 - r0 > 2147483647LL) {
        h5_reader_close(rd);
        return at_err_set(err, AT_EUSER,
                          "%s: split '%s': %lld rows of %lld features are "
                          "more than attrib train holds in memory (2^31 values); select "
                          "fewer with data.rows",
                          path, split, (long long)(r1 - r0), (long long)info->n_features);
    }
    *n = r1 - r0;
    *x = at_malloc((size_t)(*n ? *n : 1) * info->n_features * sizeof(float), "split images");
    *y = at_malloc((size_t)(*n ? *n : 1) * sizeof(int32_t), "split labels");
    h5_reader_read(rd, r0, r1, *x, *y, err);
    h5_reader_close(rd);
    for (int64_t i = 0; i < *n && !err->code; i++)
        if ((*y)[i] < 0 || (*y)[i] >= info->n_classes)
            at_err_set(err, AT_EUSER, "%s: /%s/labels[%lld] = %d is outside 0..%d", path, split,
                       (long long)(r0 + i), (*y)[i], info->n_classes - 1);
    return err->code;
}

/* The layer specs and input shape of the job's model over data of shape
 * info: model.layers as given, or the MLP of model.hidden ([flatten,
 * (linear h, relu)..., linear n_classes]). Refuses what attrib cannot
 * train: batch norm (inference mode only) and a softmax or log_softmax
 * last layer under cross_entropy (softmax twice). */
static int train_specs(const job *j, const h5_dataset_info *info, eng_layer *specs, int *n,
                       int *in_shape, int *in_ndim, at_err *err) {
    *n = 0;
    if (j->n_layers > 0) {
        memcpy(specs, j->layers, (size_t)j->n_layers * sizeof *specs);
        *n = j->n_layers;
    } else {
        memset(specs, 0, (size_t)(2 * j->n_hidden + 2) * sizeof *specs);
        specs[(*n)++].kind = ENG_LAYER_FLATTEN;
        for (int h = 0; h < j->n_hidden; h++) {
            specs[*n].kind = ENG_LAYER_LINEAR;
            specs[*n].out_features = j->hidden[h];
            specs[(*n)++].bias = 1;
            specs[(*n)++].kind = ENG_LAYER_RELU;
        }
        specs[*n].kind = ENG_LAYER_LINEAR;
        specs[*n].out_features = info->n_classes;
        specs[(*n)++].bias = 1;
    }
    for (int i = 0; i < *n; i++) {
        const eng_layer *L = &specs[i];
        char dflt[32];
        snprintf(dflt, sizeof dflt, "layers.%d", i);
        const char *name = L->name[0] ? L->name : dflt;
        if (L->kind == ENG_LAYER_BATCHNORM1D || L->kind == ENG_LAYER_BATCHNORM2D)
            return at_err_set(err, AT_EUSER,
                              "%s: model.layers: layer '%s' (#%d, %s): attrib cannot train "
                              "batch norm (it runs batch norm in inference mode only, with "
                              "fixed running statistics); remove the layer, or train in "
                              "PyTorch and export the model (tools/export_torch.py)",
                              j->source_path, name, i, eng_layer_kind_name(L->kind));
        if (i == *n - 1 && j->loss == ENG_LOSS_XENT &&
            (L->kind == ENG_LAYER_SOFTMAX || L->kind == ENG_LAYER_LOG_SOFTMAX))
            return at_err_set(err, AT_EUSER,
                              "%s: model.layers: the last layer '%s' (#%d, %s) would apply "
                              "softmax twice: train.loss cross_entropy takes raw logits and "
                              "applies log-softmax itself; remove the layer",
                              j->source_path, name, i, eng_layer_kind_name(L->kind));
        if (L->kind == ENG_LAYER_DROPOUT)
            AT_WARN("layer '%s' (#%d, dropout) is the identity in attrib: training runs "
                    "without dropout",
                    name, i);
    }
    int64_t numel = 1;
    if (j->input_ndim > 0) {
        *in_ndim = j->input_ndim;
        for (int d = 0; d < j->input_ndim; d++) {
            in_shape[d] = j->input_shape[d];
            numel *= j->input_shape[d];
        }
        if (numel != info->n_features) {
            char s[64];
            eng_shape_text(in_shape, *in_ndim, s, sizeof s);
            return at_err_set(err, AT_EUSER,
                              "%s: model.input_shape %s has %lld elements, "
                              "but rows of %s have %lld features",
                              j->source_path, s, (long long)numel, j->data_path,
                              (long long)info->n_features);
        }
    } else {
        *in_ndim = info->n_feat_dims;
        for (int d = 0; d < info->n_feat_dims; d++) in_shape[d] = (int)info->feat_shape[d];
    }
    return 0;
}

/* Build the model of the job over data of shape info; checks its outputs
 * are the data's classes. */
static int train_model(const job *j, const h5_dataset_info *info, eng_model *m, at_err *err) {
    eng_layer *specs = at_calloc(ENG_MAX_LAYERS, sizeof *specs, "layer specs");
    int n = 0, in_shape[ENG_MAX_DIMS] = {0}, in_ndim = 0;
    int rc = train_specs(j, info, specs, &n, in_shape, &in_ndim, err);
    if (!rc) {
        at_err e2 = {0};
        rc = eng_model_init(m, specs, n, in_shape, in_ndim, &e2);
        if (rc) rc = at_err_set(err, rc, "%s: model: %s", j->source_path, e2.msg);
    }
    free(specs);
    if (!rc && m->out_features != info->n_classes) {
        rc = at_err_set(err, AT_EUSER,
                        "%s: the model has %d outputs, but %s has %d classes "
                        "(set the last layer's out_features to %d)",
                        j->source_path, m->out_features, j->data_path, info->n_classes,
                        info->n_classes);
        eng_model_free(m);
    }
    return rc;
}

/* Token models: every input is an id of the embedding. */
static int check_inputs(const eng_model *m, const float *x, int64_t n, const char *path,
                        const char *split, int64_t row0, at_err *err) {
    at_err e2 = {0};
    if (eng_model_check_input(m, x, n, &e2) == 0) return 0;
    return at_err_set(err, AT_EUSER, "%s: /%s/images (counting rows from %lld): %s", path, split,
                      (long long)row0, e2.msg);
}

/* Before hours of training: can <path>.tmp be created (parents made)?
 * Returns 0 or AT_EIO naming the path and what (field) it is. */
static int check_writable(const char *path, const char *field, at_err *err) {
    char *p = at_strdup(path, "path");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int rc = at_err_set(err, AT_EIO, "%s (%s): cannot create directory %s: %s", path, field,
                                p, strerror(errno));
            free(p);
            return rc;
        }
        *s = '/';
    }
    free(p);
    size_t n = strlen(path) + 5;
    char *tmp = at_malloc(n, "path");
    snprintf(tmp, n, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666), rc = 0;
    if (fd < 0 && errno != EEXIST)
        rc = at_err_set(err, AT_EIO, "%s (%s): cannot create %s: %s", path, field, tmp,
                        strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* `attrib validate` of a training job (a `train` section and no methods):
 * the job, the training split and the evaluation split, and the model's
 * shapes over the data. Returns 0, or the error code with err filled;
 * *is_train says whether this was one. */
int train_validate(const cli_job_args *a, int *is_train, at_err *err) {
    char *text = NULL;
    job *j = at_calloc(1, sizeof *j, "job");
    *is_train = 0;
    if (job_read_file(a->job_path, &text, err)) {
        free(j);
        return err->code;
    }
    at_err probe = {0};
    if (job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_ANY, j, &probe) ||
        !j->has_train || j->n_methods > 0 || j->n_influence > 0) {
        free(text);
        free(j);
        return 0; /* not a training job: validate it as a run job */
    }
    *is_train = 1;
    job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_TRAIN, j, err);
    free(text);
    const char *splits[2] = {j->data_split, j->eval_split};
    h5_dataset_info info[2];
    for (int k = 0; k < 2 && !err->code; k++) {
        if (!splits[k][0]) continue;
        h5_reader *rd = NULL;
        if (h5_reader_open(&rd, j->data_path, splits[k], &info[k], err) == 0) h5_reader_close(rd);
    }
    eng_model m = {0};
    if (!err->code && train_model(j, &info[0], &m, err) == 0) {
        char shape[64];
        eng_shape_text(m.in_shape, m.in_ndim, shape, sizeof shape);
        char what[64];
        if (j->n_hidden)
            snprintf(what, sizeof what, "MLP with %d hidden layer(s)", j->n_hidden);
        else
            snprintf(what, sizeof what, "model of %d layers", m.n_layers);
        if (j->optimizer == JOB_OPT_NEWTON)
            printf("%s: training job is valid: %s (%zu parameters, input %s, %d outputs) on %s "
                   "split '%s', Newton's method to |grad| <= %g, writes %s\n",
                   a->job_path, what, m.n_params, shape, m.out_features, j->data_path,
                   j->data_split, j->newton_tol, j->model_path);
        else
            printf("%s: training job is valid: %s (%zu parameters, input %s, %d outputs) on %s "
                   "split '%s', %d epochs of %s (%s schedule), writes %s\n",
                   a->job_path, what, m.n_params, shape, m.out_features, j->data_path,
                   j->data_split, j->epochs, opt_name(j->optimizer), sched_name(j->schedule),
                   j->model_path);
        eng_model_free(&m);
    }
    free(j);
    return err->code;
}

/* Per-epoch history (provenance of the model file). */
typedef struct {
    double *loss, *acc, *lr, *eval_loss, *eval_acc; /* (epochs) */
} history;

/* The two INFO lines a training run starts with: what is trained on what,
 * and the memory plan of its workspace. */
static void log_plan(const job *j, const eng_model *m, int64_t n, const char *opt,
                     const eng_memory *mem) {
    char shape[64], b[6][32];
    eng_shape_text(m->in_shape, m->in_ndim, shape, sizeof shape);
    AT_INFO("training %d layers (%zu parameters, input %s, %d outputs) on %lld rows of %s "
            "split '%s': %d epochs, batch %d, %s lr %g (%s schedule), loss %s, seed %llu",
            m->n_layers, m->n_params, shape, m->out_features, (long long)n, j->data_path,
            j->data_split, j->epochs, j->batch_size, opt, j->lr,
            sched_name(j->schedule), loss_name(j->loss), (unsigned long long)j->train_seed);
    at_human_bytes((double)mem->params, b[0], sizeof b[0]);
    at_human_bytes((double)mem->activations, b[1], sizeof b[1]);
    at_human_bytes((double)mem->grads, b[2], sizeof b[2]);
    at_human_bytes((double)mem->caches, b[3], sizeof b[3]);
    at_human_bytes((double)mem->scratch, b[4], sizeof b[4]);
    at_human_bytes((double)mem->total, b[5], sizeof b[5]);
    AT_INFO("memory plan at batch %d: params %s, activations %s, output gradients %s, "
            "caches %s, scratch %s; workspace %s (plus params, gradients and optimizer "
            "state: %zu floats each)",
            j->batch_size, b[0], b[1], b[2], b[3], b[4], b[5], m->n_params);
}

/* Save the trained model with its provenance: the training settings, the
 * last epoch's numbers, the per-epoch history as float64 vectors, the
 * job. */
static int save_model(const job *j, const eng_model *m, const history *h, int64_t n,
                      int has_eval, const char *job_yaml, int has_ckpt, at_err *err) {
    const int last = j->epochs - 1;
    const size_t E = (size_t)j->epochs;
    h5_model_info mi;
    char hidden[256] = "";
    for (int k = 0; k < j->n_hidden; k++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d", k ? "," : "",
                 j->hidden[k]);
    h5_attr attrs[32];
    int na = 0;
#define TEXT(nm, v)                                                                                \
    attrs[na++] = (h5_attr) { .name = nm, .text = v }
#define NUM(nm, v)                                                                                 \
    attrs[na++] = (h5_attr) { .name = nm, .number = (double)(v) }
    if (j->n_hidden) TEXT("hidden", hidden);
    TEXT("train_data", j->data_path);
    TEXT("train_split", j->data_split);
    NUM("train_rows", n);
    NUM("epochs", j->epochs);
    NUM("batch_size", j->batch_size);
    TEXT("optimizer", opt_name(j->optimizer));
    NUM("lr", j->lr);
    NUM("momentum", j->momentum);
    NUM("weight_decay", j->weight_decay);
    TEXT("schedule", sched_name(j->schedule));
    TEXT("loss", loss_name(j->loss));
    NUM("seed", j->train_seed);
    NUM("train_loss", h->loss[last]);
    NUM("train_accuracy", h->acc[last]);
    TEXT("eval_split", j->eval_split);
    NUM("eval_loss", h->eval_loss[last]);
    NUM("eval_accuracy", h->eval_acc[last]);
    TEXT("job_yaml", job_yaml);
    TEXT("attrib_version", ATTRIB_VERSION);
    if (has_ckpt) TEXT("checkpoints", j->checkpoint_path);
    /* per-epoch history: float64 vectors, one value per epoch */
    const double *const hist[5] = {h->lr, h->loss, h->acc, h->eval_loss, h->eval_acc};
    static const char *const hist_names[5] = {"lr_per_epoch", "train_loss_per_epoch",
                                              "train_accuracy_per_epoch", "eval_loss_per_epoch",
                                              "eval_accuracy_per_epoch"};
    for (int k = 0; k < (has_eval ? 5 : 3); k++)
        attrs[na++] = (h5_attr){.name = hist_names[k], .values = hist[k], .n_values = (int)E};
#undef TEXT
#undef NUM
    if (h5_model_save(j->model_path, m, &mi, attrs, na, err)) return err->code;
    printf("wrote %s (sha256 %s)", j->model_path, mi.sha256);
    if (has_eval) printf("; %s accuracy %.2f%%", j->eval_split, 100 * h->eval_acc[last]);
    printf("\n");
    return 0;
}

/* train.optimizer newton: the exact optimum of mean cross-entropy +
 * (weight_decay/2)|theta|^2 by Newton's method in float64 (tda_truth.h), for
 * convex models such as multinomial logistic regression (the leave-one-out
 * ground truth of docs/influence.md). The model file records one "epoch":
 * the final objective and accuracy. */
static int newton_train(const cli_job_args *a, job *j, eng_model *m, const float *x,
                        const int32_t *y, int64_t n, const float *xe, const int32_t *ye,
                        int64_t ne, at_err *err) {
    double *theta = at_malloc((m->n_params ? m->n_params : 1) * sizeof(double), "theta");
    for (size_t i = 0; i < m->n_params; i++) theta[i] = m->params[i];
    AT_INFO("train %s: %lld rows of %s split '%s': Newton's method on mean cross-entropy + "
            "%g/2 |theta|^2 over %zu parameters (float64), to |grad| <= %g",
            a->job_path, (long long)n, j->data_path, j->data_split, j->weight_decay,
            m->n_params, j->newton_tol);
    double t0 = at_now();
    tda_fit_info info;
    int rc = tda_newton_fit(m, theta, x, y, n, NULL, j->weight_decay, j->newton_tol,
                            j->newton_max_iter, &info, err);
    if (rc) {
        at_err_prefix(err, "%s: train.optimizer newton: ", a->job_path);
        free(theta);
        return rc;
    }
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)theta[i];
    free(theta);
    eng_workspace ws;
    eng_workspace_init(&ws, m, 256, ENG_F32);
    double loss = 0, acc = 0, el = NAN, ea = NAN, lr = 0;
    eng_evaluate(m, &ws, x, y, (int)n, &loss, &acc, NULL);
    if (ne) eng_evaluate(m, &ws, xe, ye, (int)ne, &el, &ea, NULL);
    eng_workspace_free(&ws);
    AT_INFO("newton: %d steps, objective %.10g, |grad| %.3g, train loss %.4f acc %.2f%% (%.2f s)",
            info.iters, info.objective, info.grad_norm, loss, 100 * acc, at_now() - t0);
    history h = {&loss, &acc, &lr, &el, &ea};
    const int epochs = j->epochs;
    j->epochs = 1;
    char *job_yaml = job_emit_yaml(j);
    rc = save_model(j, m, &h, n, ne > 0, job_yaml, 0, err);
    j->epochs = epochs;
    free(job_yaml);
    return rc;
}

static int train_main(const cli_job_args *a, at_err *err) {
    char *text = NULL;
    job *j = at_calloc(1, sizeof *j, "job");
    if (job_read_file(a->job_path, &text, err)) {
        free(j);
        return err->code;
    }
    int rc = job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_TRAIN, j, err);
    free(text);
    if (rc) {
        free(j);
        return rc;
    }
    eng_set_threads(j->blas_threads);

    float *x = NULL, *xe = NULL, *grads = NULL;
    int32_t *y = NULL, *ye = NULL;
    int64_t n = 0, ne = 0;
    h5_dataset_info info, einfo;
    eng_model m = {0};
    eng_workspace ws = {0};
    eng_optim opt = {0};
    h5_ckpt_writer *ckw = NULL;
    char *job_yaml = NULL;
    history h = {0};
    if (read_split(j->data_path, j->data_split, j->row_start, j->row_end, &x, &y, &n, &info, err))
        goto out;
    if (n < 1) {
        at_err_set(err, AT_EUSER, "%s: data.rows selects no rows of split '%s'", a->job_path,
                   j->data_split);
        goto out;
    }
    if (j->eval_split[0] &&
        read_split(j->data_path, j->eval_split, 0, -1, &xe, &ye, &ne, &einfo, err))
        goto out;
    if (ne && einfo.n_features != info.n_features) {
        at_err_set(err, AT_EUSER, "%s: split '%s' has %lld features per row, split '%s' %lld",
                   j->data_path, j->eval_split, (long long)einfo.n_features, j->data_split,
                   (long long)info.n_features);
        goto out;
    }
    if (ne && einfo.n_classes > info.n_classes) {
        at_err_set(err, AT_EUSER, "%s: split '%s' has %d classes, more than split '%s' (%d)",
                   j->data_path, j->eval_split, einfo.n_classes, j->data_split, info.n_classes);
        goto out;
    }
    if (train_model(j, &info, &m, err)) goto out;
    if (check_inputs(&m, x, n, j->data_path, j->data_split, j->row_start, err) ||
        check_inputs(&m, xe, ne, j->data_path, j->eval_split, 0, err))
        goto out;
    if (check_writable(j->model_path, "model.path", err) ||
        (j->checkpoint_every > 0 && check_writable(j->checkpoint_path, "train.checkpoints", err)))
        goto out;
    eng_model_init_params(&m, j->train_seed);
    if (j->optimizer == JOB_OPT_NEWTON) {
        rc = newton_train(a, j, &m, x, y, n, xe, ye, ne, err);
        goto out;
    }

    const int cap = j->batch_size;
    eng_memory mem;
    eng_plan_memory(&m, cap, ENG_F32, &mem);
    eng_workspace_init(&ws, &m, cap, ENG_F32);
    eng_optim_init(&opt, &m, (eng_opt_kind)j->optimizer, j->lr, j->momentum, j->nesterov,
                   j->weight_decay, j->beta1, j->beta2, j->adam_eps);
    grads = at_malloc((m.n_params ? m.n_params : 1) * sizeof *grads, "gradients");
    const eng_sched sched = {
        (eng_sched_kind)j->schedule, j->lr, j->step_size, j->gamma, j->min_lr, j->epochs};
    const eng_loss loss = {(eng_loss_kind)j->loss, j->label_smoothing};
    job_yaml = job_emit_yaml(j);
    if (j->checkpoint_every > 0)
        ckw = h5_ckpt_writer_new(j->checkpoint_path, &m, j->train_seed, job_yaml);
    const size_t E = (size_t)j->epochs;
    h.loss = at_calloc(E, sizeof(double), "history");
    h.acc = at_calloc(E, sizeof(double), "history");
    h.lr = at_calloc(E, sizeof(double), "history");
    h.eval_loss = at_calloc(E, sizeof(double), "history");
    h.eval_acc = at_calloc(E, sizeof(double), "history");

    log_plan(j, &m, n, opt_name(j->optimizer), &mem);

    double t0 = at_now();
    int e;
    for (e = 0; e < j->epochs; e++) {
        const double lr = eng_sched_lr(&sched, e), te = at_now();
        double acc = 0;
        const double tl = eng_train_epoch(&m, &ws, &opt, lr, &loss, grads, x, y, (int)n,
                                          j->batch_size, j->train_seed, e, &acc);
        if (!isfinite(tl)) {
            at_err_set(err, AT_EUSER,
                       "%s: training diverged in epoch %d (mean loss %g at "
                       "lr %g); lower train.lr",
                       a->job_path, e + 1, tl, lr);
            goto out;
        }
        h.loss[e] = tl;
        h.acc[e] = acc;
        h.lr[e] = lr;
        char evs[128] = "";
        if (ne) {
            eng_evaluate(&m, &ws, xe, ye, (int)ne, &h.eval_loss[e], &h.eval_acc[e], NULL);
            snprintf(evs, sizeof evs, "  %s loss %.4f acc %.2f%%", j->eval_split, h.eval_loss[e],
                     100 * h.eval_acc[e]);
        }
        AT_INFO("epoch %3d/%d  lr %.4g  train loss %.4f acc %.2f%%%s  (%.1f s, total %.1f s)",
                e + 1, j->epochs, lr, tl, 100 * acc, evs, at_now() - te, at_now() - t0);
        if (ckw && (e + 1) % j->checkpoint_every == 0) {
            if (h5_ckpt_writer_add(ckw, &m, e + 1, lr, tl, acc, err)) goto out;
            AT_INFO("checkpoint %d (epoch %d) written to %s", h5_ckpt_writer_count(ckw) - 1, e + 1,
                    j->checkpoint_path);
        }
    }

    if (save_model(j, &m, &h, n, ne > 0, job_yaml, ckw != NULL, err)) goto out;
out:
    free(x);
    free(y);
    free(xe);
    free(ye);
    free(grads);
    free(h.loss);
    free(h.acc);
    free(h.lr);
    free(h.eval_loss);
    free(h.eval_acc);
    free(job_yaml);
    h5_ckpt_writer_free(ckw);
    eng_optim_free(&opt);
    if (ws.acts) eng_workspace_free(&ws);
    eng_model_free(&m);
    free(j);
    return err->code;
}

int cmd_train(int argc, char **argv) {
    at_err err = {0};
    cli_job_args a;
    if (cli_parse_job_args(argc, argv, 0, &a, &err)) {
        cli_error(&err);
        return AT_EUSER;
    }
    if (a.help) {
        printf("usage: attrib train JOB.yaml [--set section.key=value]...\n"
               "Trains the job's model (model.layers, or the model.hidden MLP) on\n"
               "data.path/data.split with the train section's optimizer (sgd, adam, adamw),\n"
               "schedule (constant, step, cosine) and loss, writes model.path and, every\n"
               "train.checkpoint_every epochs, the checkpoint file train.checkpoints.\n"
               "Deterministic for a train.seed. See jobs/train_*.yaml and docs/jobs.md.\n");
        return 0;
    }
    MPI_Init(NULL, NULL);
    int rank = 0, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    at_log_set_rank(rank);
    if (rank == 0) {
        rc = train_main(&a, &err);
        if (rc) cli_error(&err);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
