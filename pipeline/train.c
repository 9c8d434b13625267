/* train.c — `attrib train JOB.yaml`: train an MLP with the engine and write
 * a model file. Training runs in one process: under mpirun, rank 0 trains
 * and the other ranks wait (data-parallel training would make the weights
 * depend on the rank count). */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "pipeline.h"

/* Read a whole split (rows [r0, r1)) into memory. */
static int read_split(const char *path, const char *split, int64_t r0, int64_t r1,
                      float **x, int32_t **y, int64_t *n, h5_dataset_info *info,
                      at_err *err) {
    h5_reader *rd = NULL;
    if (h5_reader_open(&rd, path, split, info, err)) return err->code;
    if (r1 < 0) r1 = info->n_rows;
    if (r0 >= info->n_rows || r1 > info->n_rows) {
        h5_reader_close(rd);
        return at_err_set(err, AT_EUSER,
                          "data.rows: rows %lld:%lld are outside split '%s' of %s (%lld rows)",
                          (long long)r0, (long long)r1, split, path, (long long)info->n_rows);
    }
    *n = r1 - r0;
    *x = at_malloc((size_t)(*n) * info->n_features * sizeof(float), "split images");
    *y = at_malloc((size_t)(*n) * sizeof(int32_t), "split labels");
    h5_reader_read(rd, r0, r1, *x, *y, err);
    h5_reader_close(rd);
    for (int64_t i = 0; i < *n && !err->code; i++)
        if ((*y)[i] < 0 || (*y)[i] >= info->n_classes)
            at_err_set(err, AT_EUSER, "%s: /%s/labels[%lld] = %d is outside 0..%d", path,
                       split, (long long)(r0 + i), (*y)[i], info->n_classes - 1);
    return err->code;
}

/* `attrib validate` of a training job (a `train` section and no methods):
 * the job, the training split and the evaluation split. Returns 0, or the
 * error code with err filled; *is_train says whether this was one. */
int train_validate(const cli_job_args *a, int *is_train, at_err *err) {
    char *text = NULL;
    job j;
    *is_train = 0;
    if (job_read_file(a->job_path, &text, err)) return err->code;
    at_err probe = {0};
    if (job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_ANY, &j, &probe) ||
        !j.has_train || j.n_methods > 0) {
        free(text);
        return 0; /* not a training job: validate it as a run job */
    }
    *is_train = 1;
    job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_TRAIN, &j, err);
    free(text);
    const char *splits[2] = {j.data_split, j.eval_split};
    for (int k = 0; k < 2 && !err->code; k++) {
        if (!splits[k][0]) continue;
        h5_reader *rd = NULL;
        h5_dataset_info info;
        if (h5_reader_open(&rd, j.data_path, splits[k], &info, err) == 0) h5_reader_close(rd);
    }
    if (!err->code)
        printf("%s: training job is valid: MLP with %d hidden layer(s) on %s split '%s', "
               "%d epochs, writes %s\n",
               a->job_path, j.n_hidden, j.data_path, j.data_split, j.epochs, j.model_path);
    return err->code;
}

static int train_main(const cli_job_args *a, at_err *err) {
    char *text = NULL;
    job j;
    if (job_read_file(a->job_path, &text, err)) return err->code;
    int rc = job_parse(text, a->job_path, a->sets, a->n_sets, JOB_PURPOSE_TRAIN, &j, err);
    free(text);
    if (rc) return rc;
    eng_set_threads(j.blas_threads);

    float *x = NULL, *xe = NULL;
    int32_t *y = NULL, *ye = NULL;
    int64_t n = 0, ne = 0;
    h5_dataset_info info, einfo;
    eng_model m = {0};
    eng_workspace ws = {0};
    eng_sgd opt = {0};
    float *grads = NULL;
    if (read_split(j.data_path, j.data_split, j.row_start, j.row_end, &x, &y, &n, &info, err))
        goto out;
    if (j.eval_split[0] &&
        read_split(j.data_path, j.eval_split, 0, -1, &xe, &ye, &ne, &einfo, err))
        goto out;

    eng_layer_spec specs[2 * JOB_MAX_HIDDEN + 1];
    int ns = 0;
    for (int h = 0; h < j.n_hidden; h++) {
        specs[ns++] = (eng_layer_spec){ENG_LAYER_LINEAR, j.hidden[h], 1};
        specs[ns++] = (eng_layer_spec){ENG_LAYER_RELU, 0, 0};
    }
    specs[ns++] = (eng_layer_spec){ENG_LAYER_LINEAR, info.n_classes, 1};
    if (eng_model_init(&m, specs, ns, (int)info.n_features, err)) goto out;
    eng_model_init_params(&m, j.train_seed);
    eng_workspace_init(&ws, &m, j.batch_size > 256 ? j.batch_size : 256);
    eng_sgd_init(&opt, m.n_params, (float)j.lr, (float)j.momentum, (float)j.weight_decay);
    grads = at_malloc(m.n_params * sizeof(float), "gradients");
    printf("training MLP %d", m.in_features);
    for (int h = 0; h < j.n_hidden; h++) printf("-%d", j.hidden[h]);
    printf("-%d (%zu parameters) on %lld rows of %s split '%s' for %d epochs\n",
           m.out_features, m.n_params, (long long)n, j.data_path, j.data_split, j.epochs);
    double eloss = 0, eacc = 0, tacc = 0, tloss = 0;
    double t0 = at_now();
    for (int e = 0; e < j.epochs; e++) {
        tloss = eng_train_epoch(&m, &ws, &opt, grads, x, y, (int)n, j.batch_size, j.train_seed,
                                e, &tacc);
        printf("epoch %3d  train loss %.4f  acc %.2f%%", e + 1, tloss, 100 * tacc);
        if (ne) {
            eng_evaluate(&m, &ws, xe, ye, (int)ne, &eloss, &eacc, NULL);
            printf("  %s loss %.4f  acc %.2f%%", j.eval_split, eloss, 100 * eacc);
        }
        printf("  (%.1f s)\n", at_now() - t0);
        fflush(stdout);
    }
    h5_model_info mi = {0};
    mi.n_input_dims = info.n_feat_dims;
    for (int d = 0; d < info.n_feat_dims; d++) mi.input_shape[d] = info.feat_shape[d];
    mi.n_classes = m.out_features;
    char hidden[256] = "";
    for (int h = 0; h < j.n_hidden; h++)
        snprintf(hidden + strlen(hidden), sizeof hidden - strlen(hidden), "%s%d",
                 h ? "," : "", j.hidden[h]);
    char *job_yaml = job_emit_yaml(&j);
    h5_attr attrs[] = {
        {"architecture", "mlp", 0}, {"hidden", hidden, 0},
        {"train_data", j.data_path, 0}, {"train_split", j.data_split, 0},
        {"train_rows", NULL, (double)n}, {"epochs", NULL, j.epochs},
        {"batch_size", NULL, j.batch_size}, {"lr", NULL, j.lr},
        {"momentum", NULL, j.momentum}, {"weight_decay", NULL, j.weight_decay},
        {"seed", NULL, (double)j.train_seed}, {"train_loss", NULL, tloss},
        {"train_accuracy", NULL, tacc}, {"eval_split", j.eval_split, 0},
        {"eval_loss", NULL, eloss}, {"eval_accuracy", NULL, eacc},
        {"job_yaml", job_yaml, 0}, {"attrib_version", ATTRIB_VERSION, 0},
    };
    h5_model_save(j.model_path, &m, &mi, attrs, (int)(sizeof attrs / sizeof attrs[0]), err);
    free(job_yaml);
    if (!err->code) {
        printf("wrote %s (sha256 %s)", j.model_path, mi.sha256);
        if (ne) printf("; %s accuracy %.2f%%", j.eval_split, 100 * eacc);
        printf("\n");
    }
out:
    free(x); free(y); free(xe); free(ye); free(grads);
    eng_sgd_free(&opt);
    if (ws.acts) eng_workspace_free(&ws);
    eng_model_free(&m);
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
               "Trains an MLP (model.hidden) on data.path/data.split with SGD+momentum\n"
               "(train section) and writes model.path. Deterministic for a train.seed.\n"
               "See jobs/train_mlp.yaml and docs/jobs.md.\n");
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
