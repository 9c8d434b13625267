/* run.c — `attrib run` and `attrib validate`: the MPI lifecycle of a job.
 *
 * Stages (all ranks; every failure is agreed on collectively, so all ranks
 * exit together with the same code):
 *   1. rank 0 reads the job file and broadcasts its text; every rank parses
 *      the same text with the same --set overrides;
 *   2. every rank opens the data and model files and checks them; the
 *      baselines and the plan of work units (pipeline.h);
 *   3. digest: the ranks share the row blocks, hash them (the data SHA-256 is
 *      a hash over the blocks' hashes) and refuse non-finite values, before
 *      anything is written; then the plan text and hash (resume.c);
 *   4. resume: what the output path and OUT.shards/ already hold (resume.c);
 *   5. work: the pending units, durable in shards (work.c); a stop (signal,
 *      stop file, max_wall_time) ends here with exit 75, resumable;
 *   6. assemble: the results file from the shards (assemble.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "h5io.h"
#include "h5train.h"
#include "pipeline.h"

static void bcast_string(run_ctx *c, char **s) {
    long n = c->rank == 0 && *s ? (long)strlen(*s) + 1 : 0;
    MPI_Bcast(&n, 1, MPI_LONG, 0, c->comm);
    if (c->rank != 0) {
        free(*s);
        *s = n ? at_malloc((size_t)n, "broadcast text") : NULL;
    }
    if (n) MPI_Bcast(*s, (int)n, MPI_CHAR, 0, c->comm);
}

int run_job_input_load(run_ctx *c, const cli_job_args *a, run_job_input *in, at_err *err) {
    memset(in, 0, sizeof *in);
    if (a->job_text) {
        in->text = at_strdup(a->job_text, "job text");
    } else {
        if (c->rank == 0) job_read_file(a->job_path, &in->text, err);
        int rc = run_agree(c, err);
        if (rc) {
            free(in->text);
            in->text = NULL;
            return rc;
        }
        bcast_string(c, &in->text);
    }
    AT_CHECK(a->n_sets >= 0 && (size_t)a->n_sets < sizeof in->sets / sizeof in->sets[0]);
    in->n_sets = a->n_sets;
    memcpy(in->sets, a->sets, (size_t)a->n_sets * sizeof *in->sets);
    if (a->out_path) {
        size_t len = strlen(a->out_path) + 16;
        in->out_set = at_malloc(len, "-o override");
        snprintf(in->out_set, len, "output.path=%s", a->out_path);
        in->sets[in->n_sets++] = in->out_set;
    }
    return 0;
}

void run_job_input_free(run_job_input *in) {
    free(in->text);
    free(in->out_set);
    memset(in, 0, sizeof *in);
}

void run_ctx_start(run_ctx *c) {
    memset(c, 0, sizeof *c);
    c->comm = MPI_COMM_WORLD;
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    at_log_set_rank(c->rank);
    c->t_start = c->t_run = at_now();
    run_iso_now(c->started_at, sizeof c->started_at);
    MPI_Bcast(c->started_at, sizeof c->started_at, MPI_CHAR, 0, c->comm);
}

/* ------------------------------------------------------------ stage 1, 2 */

/* Everything that can be checked before computing. Collective. */

/* Reference rows (expected_gradients, gradient_shap) and feature groups
 * (a patch grid or the data file's feature_mask dataset) of every method:
 * rank 0 reads, every rank gets the same bytes. Collective. */
static int load_refs_and_groups(run_ctx *c, at_err *err) {
    const job *j = &c->j;
    const int64_t D = c->info.n_features;
    int rc = 0;
    for (int m = 0; m < j->n_methods && !rc; m++) {
        const job_method *jm = &j->methods[m];
        mth_spec probe;
        plan_method_spec(jm, &probe);
        if (mth_uses_refs(&probe)) {
            int64_t n = 0;
            if (c->rank == 0 &&
                h5_dataset_reference_rows(j->data_path, jm->reference_split, jm->n_references,
                                          D, &c->refs[m], &n, err))
                at_err_prefix(err, "methods[%d] (%s): reference_split: ", m, jm->name);
            if ((rc = run_agree(c, err))) break;
            long long nn = n;
            MPI_Bcast(&nn, 1, MPI_LONG_LONG, 0, c->comm);
            if (c->rank != 0) c->refs[m] = at_malloc((size_t)nn * D * sizeof(float), "reference rows");
            MPI_Bcast(c->refs[m], (int)(nn * D), MPI_FLOAT, 0, c->comm);
            c->n_refs[m] = (int)nn;
        }
        if (jm->n_patch || jm->feature_mask[0]) {
            c->groups[m] = at_malloc((size_t)D * sizeof(int32_t), "feature groups");
            if (jm->feature_mask[0]) {
                if (c->rank == 0 &&
                    h5_dataset_read_groups(j->data_path, jm->feature_mask, D, c->groups[m],
                                           &c->n_groups[m], err))
                    at_err_prefix(err, "methods[%d] (%s): ", m, jm->name);
                if ((rc = run_agree(c, err))) break;
                MPI_Bcast(c->groups[m], (int)D, MPI_INT32_T, 0, c->comm);
                MPI_Bcast(&c->n_groups[m], 1, MPI_INT, 0, c->comm);
            } else {
                int nd = c->info.n_feat_dims, shape[3] = {0};
                for (int d = 0; d < nd; d++) shape[d] = (int)c->info.feat_shape[d];
                int spatial = nd == 1 ? 1 : 2;
                if (jm->n_patch != spatial) {
                    at_err_set(err, AT_EUSER,
                               "%s: methods[%d] (%s): patch has %d dims; rows of %s split "
                               "'%s' need %d (%s)", j->source_path, m, jm->name, jm->n_patch,
                               j->data_path, j->data_split, spatial,
                               spatial == 1 ? "[features]" : "[height, width]");
                } else {
                    c->n_groups[m] = mth_groups_grid(nd, shape, jm->patch, c->groups[m]);
                }
                if ((rc = run_agree(c, err))) break;
            }
        }
    }
    return rc;
}

int run_open_inputs(run_ctx *c, at_err *err) {
    const job *j = &c->j;
    int rc;
    if (j->stop_file[0])
        snprintf(c->stop_path, sizeof c->stop_path, "%s", j->stop_file);
    else
        snprintf(c->stop_path, sizeof c->stop_path, "%s.stop", j->output_path);
    if (h5_reader_open(&c->rd, j->data_path, j->data_split, &c->info, err) == 0) {
        int64_t n = c->info.n_rows;
        int64_t r0 = j->row_start, r1 = j->row_end < 0 ? n : j->row_end;
        if (r0 >= n || r1 > n)
            at_err_set(err, AT_EUSER,
                       "%s: data.rows: rows %lld:%lld are outside split '%s', which has %lld rows",
                       j->source_path, (long long)r0, (long long)r1, j->data_split,
                       (long long)n);
        c->row_start = r0;
        c->n_rows = r1 - r0;
    }
    if ((rc = run_agree(c, err))) return rc;
    h5_model_load(j->model_path, &c->model, &c->minfo, err);
    if ((rc = run_agree(c, err))) return rc;
    if (j->model_epoch > 0) {
        /* a checkpoint's parameters in model.path's architecture; the
         * content hash (model_sha256, the plan's model.sha256) is then
         * that of the parameters used */
        int k = -1;
        if (h5_ckpt_find_epoch(j->model_ckpt_path, j->model_epoch, &k, err) == 0 &&
            h5_ckpt_load(j->model_ckpt_path, k, &c->model, NULL, NULL, err) == 0)
            h5_model_hash(&c->model, c->minfo.sha256);
        if (err->code) at_err_prefix(err, "%s: model.epoch %d: ", j->source_path, j->model_epoch);
        if ((rc = run_agree(c, err))) return rc;
    }
    if (c->model.in_features != c->info.n_features)
        at_err_set(err, AT_EUSER,
                   "model %s takes %d input features but dataset %s split '%s' has %lld "
                   "features per row",
                   j->model_path, c->model.in_features, j->data_path, j->data_split,
                   (long long)c->info.n_features);
    return run_agree(c, err);
}

static int prepare(run_ctx *c, const cli_job_args *a, at_err *err) {
    run_job_input in;
    if (run_job_input_load(c, a, &in, err)) return AT_EUSER;
    job_parse(in.text, a->job_path, in.sets, in.n_sets, JOB_PURPOSE_RUN, &c->j, err);
    run_job_input_free(&in);
    int rc = run_agree(c, err);
    if (rc) return rc;
    job *j = &c->j;
    c->job_yaml = job_emit_yaml(j);
    if (j->n_influence) return 0; /* influence.c opens its own files */

    if ((rc = run_open_inputs(c, err))) return rc;
    if (!err->code && c->model.token_input)
        at_err_set(err, AT_EUSER,
                   "model %s takes token ids (layer '%s' is an embedding); attribution "
                   "methods need a continuous input",
                   j->model_path, c->model.layers[0].name);
    for (int m = 0; m < j->n_methods && !err->code; m++) {
        const job_method *jm = &j->methods[m];
        if (jm->target == JOB_TARGET_CLASS && jm->target_class >= c->model.out_features)
            at_err_set(err, AT_EUSER,
                       "methods[%d] (%s): target class %d does not exist; model %s has %d "
                       "classes (0..%d)",
                       m, jm->name, jm->target_class, j->model_path, c->model.out_features,
                       c->model.out_features - 1);
    }
    if ((rc = run_agree(c, err))) return rc;

    /* baselines: the dataset mean is computed by rank 0 and broadcast */
    const int64_t D = c->info.n_features;
    for (int m = 0; m < j->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        mth_spec probe;
        plan_method_spec(jm, &probe);
        if (!mth_uses_baseline(&probe)) continue;
        float *b = at_malloc((size_t)D * sizeof(float), "baseline");
        if (jm->baseline == JOB_BASELINE_MEAN) {
            double *mean = at_calloc((size_t)D, sizeof(double), "baseline mean");
            if (c->rank == 0) h5_dataset_mean(j->data_path, jm->baseline_split, mean, D, err);
            if ((rc = run_agree(c, err))) {
                free(mean);
                free(b);
                return rc;
            }
            MPI_Bcast(mean, (int)D, MPI_DOUBLE, 0, c->comm);
            for (int64_t d = 0; d < D; d++) b[d] = (float)mean[d];
            free(mean);
        } else {
            float v = jm->baseline == JOB_BASELINE_CONSTANT ? (float)jm->baseline_value : 0.0f;
            for (int64_t d = 0; d < D; d++) b[d] = v;
        }
        c->baseline[m] = b;
    }

    if ((rc = load_refs_and_groups(c, err))) return rc;

    plan_input pin = {.model = &c->model, .ndim = c->info.n_feat_dims};
    for (int d = 0; d < c->info.n_feat_dims; d++) pin.shape[d] = (int)c->info.feat_shape[d];
    for (int m = 0; m < j->n_methods; m++) {
        pin.group[m] = c->groups[m];
        pin.n_groups[m] = c->n_groups[m];
    }
    plan_build(&c->p, j, &pin, c->row_start, c->n_rows, err);
    if ((rc = run_agree(c, err))) return rc;
    snprintf(c->shard_dir, sizeof c->shard_dir, "%s.shards", j->output_path);
    return 0;
}

void run_ctx_free(run_ctx *c) {
    if (c->rd) h5_reader_close(c->rd);
    eng_model_free(&c->model);
    for (int m = 0; m < JOB_MAX_METHODS; m++) {
        free(c->baseline[m]);
        free(c->refs[m]);
        free(c->groups[m]);
    }
    plan_free(&c->p);
    free(c->job_yaml);
    free(c->plan_text);
    free(c->done);
}

/* --------------------------------------------------------------- stage 3 */

/* The data SHA-256 over the selected rows (SHA-256 of the row blocks'
 * SHA-256s, in order), a check that every value is finite and, for methods
 * that explain the label, that every label is a class of the model. Each
 * rank reads an even share of the blocks. Collective. */
static int digest(run_ctx *c, at_err *err) {
    const plan *p = &c->p;
    const int64_t D = p->n_features, BR = p->block_rows;
    uint8_t *bh = at_calloc((size_t)p->n_rb * 32 + 1, 1, "block hashes");
    float *x = at_malloc((size_t)(BR * D + 1) * sizeof(float), "block rows");
    int32_t *label = at_malloc((size_t)(BR + 1) * sizeof(int32_t), "block labels");
    int64_t lo = p->n_rb * c->rank / c->size, hi = p->n_rb * (c->rank + 1) / c->size;
    for (int64_t rb = lo; rb < hi && !err->code; rb++) {
        int64_t r0 = rb * BR, n = p->n_rows - r0 < BR ? p->n_rows - r0 : BR;
        if (h5_reader_read(c->rd, c->row_start + r0, c->row_start + r0 + n, x, label, err)) break;
        for (int64_t i = 0; i < n * D; i++)
            if (!isfinite(x[i])) {
                at_err_set(err, AT_EUSER,
                           "%s: %s/images: row %lld has a non-finite value (%s) at feature %lld; "
                           "attributions need finite inputs — clean the data or select other "
                           "rows with data.rows",
                           c->j.data_path, c->j.data_split,
                           (long long)(c->row_start + r0 + i / D), isnan(x[i]) ? "NaN" : "Inf",
                           (long long)(i % D));
                break;
            }
        for (int m = 0; m < c->j.n_methods && !err->code; m++) {
            const job_method *jm = &c->j.methods[m];
            if (jm->target != JOB_TARGET_LABEL) continue;
            for (int64_t r = 0; r < n; r++)
                if (label[r] < 0 || label[r] >= p->n_classes) {
                    run_label_error(c, m, c->row_start + r0 + r, label[r], err);
                    break;
                }
        }
        at_sha256 h;
        at_sha256_init(&h);
        at_sha256_update(&h, x, (size_t)(n * D) * sizeof(float));
        at_sha256_update(&h, label, (size_t)n * sizeof(int32_t));
        at_sha256_final(&h, bh + 32 * rb);
    }
    free(x);
    free(label);
    int rc = run_agree(c, err);
    if (!rc) {
        /* each block's hash was written by one rank only: OR gives all */
        MPI_Allreduce(MPI_IN_PLACE, bh, (int)(p->n_rb * 32), MPI_UINT8_T, MPI_BOR, c->comm);
        at_sha256_buf_hex(bh, (size_t)p->n_rb * 32, c->data_sha);
    }
    free(bh);
    return rc;
}

/* Any method that explains the label (digest checks the labels then). */
static int labels_checked(const run_ctx *c) {
    for (int m = 0; m < c->j.n_methods; m++)
        if (c->j.methods[m].target == JOB_TARGET_LABEL) return 1;
    return 0;
}

/* Does the sweep's memo hold this run's digest: the same rows in the same
 * blocks and, when labels are checked, against the same class count? */
static int digest_remembered(const run_ctx *c) {
    const run_digest_memo *m = c->digest_memo;
    return m && m->valid && !strcmp(m->data_path, c->j.data_path) &&
           !strcmp(m->data_split, c->j.data_split) && m->row_start == c->row_start &&
           m->n_rows == c->n_rows && m->block_rows == c->p.block_rows &&
           (!labels_checked(c) || m->label_classes == c->p.n_classes);
}

static void digest_remember(const run_ctx *c) {
    run_digest_memo *m = c->digest_memo;
    if (!m) return;
    m->valid = 1;
    snprintf(m->data_path, sizeof m->data_path, "%s", c->j.data_path);
    snprintf(m->data_split, sizeof m->data_split, "%s", c->j.data_split);
    m->row_start = c->row_start;
    m->n_rows = c->n_rows;
    m->block_rows = c->p.block_rows;
    m->label_classes = labels_checked(c) ? c->p.n_classes : -1;
    memcpy(m->data_sha, c->data_sha, sizeof m->data_sha);
}

/* ------------------------------------------------------------- commands */

static void print_summary(run_ctx *c, const work_stats *ws, const assemble_stats *as) {
    const plan *p = &c->p;
    const int nm = p->n_methods;
    int64_t tot[JOB_MAX_METHODS + 1], tot_all[JOB_MAX_METHODS + 1];
    double mx_all[JOB_MAX_METHODS];
    tot[0] = as->correct;
    for (int m = 0; m < nm; m++) tot[1 + m] = as->n_rel_over[m];
    MPI_Reduce(tot, tot_all, 1 + nm, MPI_INT64_T, MPI_SUM, 0, c->comm);
    MPI_Reduce(as->max_rel_delta, mx_all, nm, MPI_DOUBLE, MPI_MAX, 0, c->comm);
    if (c->rank != 0) return;
    printf("wrote %s\n", c->j.output_path);
    printf("  %lld samples of %s split '%s' (rows %lld:%lld); model accuracy on them %.2f%%\n",
           (long long)c->n_rows, c->j.data_path, c->j.data_split, (long long)c->row_start,
           (long long)(c->row_start + c->n_rows), 100.0 * (double)tot_all[0] / (double)c->n_rows);
    for (int m = 0; m < nm; m++) {
        const job_method *jm = &c->j.methods[m];
        printf("  /attributions/%s/scores  %s", jm->name, job_method_kind_name(jm->kind));
        if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS)
            printf(" (%d %s steps, baseline %s)", jm->n_steps, job_quadrature_name(jm->quadrature),
                   job_baseline_name(jm->baseline));
        else
            printf(" (%d column%s)", p->specs[m].n_cols, p->specs[m].n_cols == 1 ? "" : "s");
        mth_delta_kind dk = mth_delta(&p->specs[m]);
        if (dk)
            printf("; %s: max %.3g, %lld rows above 1e-2",
                   dk == MTH_DELTA_OUTPUT ? "|sum - f(x)|/|f(x)| (biases absorb relevance)"
                                          : "completeness |sum - (f(x)-f(b))|/|f(x)-f(b)|",
                   mx_all[m], (long long)tot_all[1 + m]);
        printf("\n");
    }
    if (c->n_done_before)
        printf("  resumed: %lld of %lld units were done by earlier runs\n",
               (long long)c->n_done_before, (long long)p->n_units);
    printf("  %d rank(s), scheduler %s, %.2f s total (compute %.2f s, assemble %.2f s)\n", c->size,
           job_scheduler_name(c->j.scheduler), at_now() - c->t_run, ws->compute_s,
           as->fold_s + as->write_s);
}

int run_job_prepare(run_ctx *c, const cli_job_args *a, at_err *err) {
    int rc;
    if ((rc = prepare(c, a, err))) return rc;
    eng_set_threads(c->j.blas_threads);
    if (c->j.n_influence) return 0;
    if (digest_remembered(c)) {
        memcpy(c->data_sha, c->digest_memo->data_sha, sizeof c->data_sha);
    } else {
        if ((rc = digest(c, err))) return rc;
        digest_remember(c);
    }
    resume_plan_text(c);
    return 0;
}

int run_job_compute(run_ctx *c, const cli_job_args *a, at_err *err) {
    int rc;
    int complete = 0;
    if ((rc = resume_prepare(c, &complete, err))) return rc;
    if (complete) {
        if (c->rank == 0)
            printf("%s already holds this job's results (plan %.12s...); nothing to do. Use "
                   "--fresh to compute them again.\n",
                   c->j.output_path, c->plan_hash);
        return 0;
    }
    if (c->rank == 0) {
        AT_INFO("run %s: %lld rows x %d method(s) = %lld units on %d rank(s), scheduler %s",
                a->job_path, (long long)c->n_rows, c->j.n_methods, (long long)c->p.n_units,
                c->size, job_scheduler_name(c->j.scheduler));
        eng_memory mem;
        const int eb = plan_engine_batch(&c->model);
        eng_plan_memory(&c->model, eb, ENG_F32, &mem);
        char pb[32], wb[32];
        at_human_bytes((double)mem.params, pb, sizeof pb);
        at_human_bytes((double)mem.total, wb, sizeof wb);
        AT_INFO("model: %d layers, %zu parameters (%s); engine workspace per rank %s at "
                "%d rows",
                c->model.n_layers, c->model.n_params, pb, wb, eb);
        if (c->n_done_before)
            AT_INFO("resuming: %lld of %lld units are done in %s/", (long long)c->n_done_before,
                    (long long)c->p.n_units, c->shard_dir);
    }

    work_stats ws = {0};
    if ((rc = work_run(c, &ws, err))) return rc;
    if (ws.stop != STOP_NONE) {
        if (c->rank == 0) {
            fprintf(stderr,
                    "attrib: stopped early: %s. %lld of %lld units are done and kept in %s/; "
                    "rerun the same command to resume (exit %d).\n",
                    stop_reason_text(ws.stop), (long long)ws.units_done_all,
                    (long long)c->p.n_units, c->shard_dir, AT_EXIT_RESUMABLE);
            fflush(stderr);
        }
        return AT_EXIT_RESUMABLE;
    }
    assemble_stats as = {0};
    if ((rc = assemble_results(c, &ws, &as, err))) return rc;
    resume_cleanup(c);
    print_summary(c, &ws, &as);
    return 0;
}

static const char *RUN_HELP =
    "usage: attrib run JOB.yaml [-o OUT.h5] [--set section.key=value]... [--dry-run] [--fresh]\n"
    "Runs the job's methods (feature attribution, docs/methods.md) or its influence\n"
    "methods (training-data attribution, docs/influence.md) on its data with its\n"
    "model and writes one HDF5 results file (docs/format.md). Run as one process\n"
    "or under mpirun/srun -n N; the scores are the same bytes for any N and either\n"
    "scheduler.\n"
    "Finished work units go to OUT.h5.shards/ as they complete (influence jobs: the\n"
    "gradient features go to OUT.h5.store/ or train_data.store); rerunning the same\n"
    "command after an interruption resumes from there (docs/resume.md).\n"
    "  -o OUT.h5        results file (overrides output.path)\n"
    "  --set k=v        override a job field, e.g. --set methods.ig.n_steps=64\n"
    "  --dry-run        print the plan (units, rows, steps, passes, output size)\n"
    "                   and exit\n"
    "  --fresh          discard OUT.h5.shards/ (even of another plan) and start over\n"
    "  --points SPEC    a sweep's points only: I, I:J (half-open) or I/N (every p\n"
    "                   with p % N == I); merges only when that is every point\n"
    "A job with a sweep: section runs every point into OUT.h5.sweep/NNNN.h5, then\n"
    "merges them into OUT.h5 (docs/jobs.md, Sweeps; attrib merge).\n"
    "Stops cleanly at a unit boundary on SIGTERM, SIGUSR1 or SIGINT, when the stop\n"
    "file (OUT.h5.stop, or run.stop_file) appears, or before run.max_wall_time;\n"
    "then exits 75: rerun the same command to resume.\n";

static const char *VALIDATE_HELP =
    "usage: attrib validate JOB.yaml [--set section.key=value]...\n"
    "Checks the job file (syntax, fields, values) and opens its data and model\n"
    "files (every selected row must be finite); prints the plan. Exit 0 when\n"
    "valid, 2 with a message when not.\n";

static int run_main(int argc, char **argv, int validate_only) {
    MPI_Init(NULL, NULL);
    run_ctx c;
    run_ctx_start(&c);
    at_err err = {0};
    cli_job_args a;
    char *job_text = NULL;
    int rc = 0;
    if (cli_parse_job_args(argc, argv, !validate_only, &a, &err)) {
        if (c.rank == 0) cli_error(&err);
        MPI_Finalize();
        return AT_EUSER;
    }
    if (a.help) {
        if (c.rank == 0) fputs(validate_only ? VALIDATE_HELP : RUN_HELP, stdout);
        MPI_Finalize();
        return 0;
    }
    c.fresh = a.fresh;
    eng_set_threads(1);
    if (validate_only) { /* a training job is checked as one */
        int is_train = 0;
        if (c.rank == 0) rc = train_validate(&a, &is_train, &err);
        MPI_Bcast(&is_train, 1, MPI_INT, 0, c.comm);
        MPI_Bcast(&rc, 1, MPI_INT, 0, c.comm);
        if (is_train) {
            if (rc && c.rank == 0) cli_error(&err);
            goto out;
        }
    }
    /* Stop requests are honoured from here on (before: the default
     * actions, nothing is written yet). */
    if (!validate_only && !a.dry_run) stop_install_handlers();
    job_sweep sw;
    if ((rc = sweep_load(&c, &a, &sw, &job_text, &err))) goto out;
    a.job_text = job_text; /* read once: every point, or the run, parses this text */
    if (sw.n_points) {
        rc = sweep_main(&c, &a, &sw, validate_only, &err);
        job_sweep_free(&sw);
        goto out;
    }
    if (a.points) {
        at_err_set(&err, AT_EUSER, "%s: --points selects points of a sweep; the job has no "
                   "sweep: section", a.job_path);
        if (c.rank == 0) cli_error(&err);
        rc = AT_EUSER;
        goto out;
    }
    if ((rc = run_job_prepare(&c, &a, &err))) goto out;
    if (c.j.n_influence) {
        rc = infl_main(&c, validate_only, a.dry_run, &err);
        goto out;
    }
    if (validate_only || a.dry_run) {
        if (c.rank == 0) {
            if (validate_only) printf("%s: job is valid\n", a.job_path);
            plan_print(stdout, &c.p, &c.j, c.size);
            plan_print_memory(stdout, &c.p, &c.j, &c.model, c.size);
            printf("plan hash %s\n", c.plan_hash);
            if (a.dry_run) resume_describe(&c, stdout);
        }
        goto out;
    }
    rc = run_job_compute(&c, &a, &err);
out:
    run_ctx_free(&c);
    free(job_text);
    MPI_Finalize();
    return rc;
}

int cmd_run(int argc, char **argv) { return run_main(argc, argv, 0); }
int cmd_validate(int argc, char **argv) { return run_main(argc, argv, 1); }
