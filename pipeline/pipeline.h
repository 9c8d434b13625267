/* pipeline.h — the coordinator: CLI commands, the plan of work units, the
 * MPI lifecycle, folds and progress. Internal to the attrib binary.
 *
 * Model of use
 * ------------
 * main() parses the command line and calls one cmd_* function, which
 * returns a process exit code (0 ok, 2 bad input, 3 I/O, 4 internal). Only
 * the pipeline decides what is fatal: library code returns statuses.
 *
 * A plan is a list of work units in a fixed order: for each method (job
 * order), for each row block, for each column block. Unit u covers rows
 * [row0, row0 + nrows) of the selected rows and columns [c0, c1) of the
 * method's grid. The plan depends only on the job, the data shape and the
 * model, never on the rank count, so results are the same for any number
 * of ranks.
 */
#ifndef ATTRIB_PIPELINE_H
#define ATTRIB_PIPELINE_H

#include <stdint.h>
#include <stdio.h>

#include <mpi.h>

#include "core.h"
#include "h5io.h"
#include "job.h"
#include "methods.h"

/* Exit code of a run that stopped early (signal, stop file, max_wall_time)
 * with its finished units durable: rerun the same command to resume.
 * 75 is EX_TEMPFAIL of sysexits.h ("try again later"). */
#define AT_EXIT_RESUMABLE 75

/* Engine rows per batched forward/backward inside a unit: up to
 * PLAN_ENGINE_BATCH, fewer when the model's workspace would exceed
 * PLAN_ENGINE_BYTES (a CNN holds far more activations per row than an MLP).
 * A function of the model only (never of the rank count), so batching
 * never changes results. */
#define PLAN_ENGINE_BATCH 2048
#define PLAN_ENGINE_BYTES ((size_t)256 << 20)
int plan_engine_batch(const eng_model *m);

typedef struct {
    int method;      /* index into job.methods */
    int64_t rb;      /* row block index */
    int64_t row0;    /* first row, relative to the selection */
    int nrows;
    int cb;          /* column block index */
    int c0, c1;      /* grid columns [c0, c1) */
} plan_unit;

typedef struct {
    int n_methods;
    mth_spec specs[JOB_MAX_METHODS]; /* planned (nodes and weights filled) */
    int n_cb[JOB_MAX_METHODS];       /* column blocks per method */
    int col_step[JOB_MAX_METHODS];   /* columns per block */
    int64_t row_start, n_rows;       /* selected rows of the split */
    int block_rows;
    int64_t n_rb;                    /* row blocks */
    int64_t n_units;
    plan_unit *units;                /* (n_units) */
    double *costs;                   /* (n_units) engine rows, for schedulers */
    int64_t n_features, n_classes;
    int width;                       /* doubles per row of a unit partial: the
                                        widest method's (shards store this) */
} plan;

/* What the plan needs to know of the input and the methods' groups. */
typedef struct {
    const eng_model *model;
    int ndim, shape[3];                     /* per-row shape of the data */
    const int32_t *group[JOB_MAX_METHODS];  /* (D) feature groups, or NULL */
    int n_groups[JOB_MAX_METHODS];
} plan_input;

/* Build the plan: every method planned (mth_plan) on every rank the same.
 * Returns 0 or AT_EUSER naming the method. */
int plan_build(plan *p, const job *j, const plan_input *in, int64_t row_start,
               int64_t n_rows, at_err *err);
void plan_free(plan *p);
/* First unit of (method, rb): units are contiguous per (method, rb). */
int64_t plan_first_unit(const plan *p, int method, int64_t rb);
/* Translate the job's method settings into a method spec (not planned:
 * no input shape, groups or layer yet). */
void plan_method_spec(const job_method *jm, mth_spec *out);

/* Print the plan (for --dry-run): units, rows, steps, passes, output size. */
void plan_print(FILE *f, const plan *p, const job *j, int n_ranks);

/* Progress on rank 0: a live bar on a terminal, a plain line every
 * `interval` seconds otherwise (SLURM logs). */
typedef struct {
    int64_t units_total, units_done;
    double work_total, work_done; /* engine rows */
    double work_base;             /* done before this run (resumed) */
    double rows_total, rows_done; /* rows x (fraction of a method's grid) */
    double t0, last;
    double interval;
    int tty;
    int printed;
} progress;

void progress_init(progress *pr, int64_t units_total, double work_total,
                   double rows_total, double interval);
/* Work already done when the run started (a resumed run): counted in the
 * totals, not in the rate or the ETA. */
void progress_base(progress *pr, int64_t units, double work);
void progress_add(progress *pr, int64_t units, double work, double rows);
void progress_finish(progress *pr);

/* The digest of a run's rows (run.c, stage 3), remembered over the points
 * of a sweep: a point that reads the same rows in the same blocks takes
 * the data SHA-256 from here instead of hashing the rows again. The label
 * check is part of it: remembered with the model's class count. */
typedef struct {
    int valid;
    char data_path[JOB_PATH_MAX];
    char data_split[JOB_NAME_MAX];
    int64_t row_start, n_rows;
    int block_rows;
    int64_t label_classes; /* labels checked against this class count; -1: not checked */
    char data_sha[65];
} run_digest_memo;

/* --------------------------------------------------- a run, on every rank
 *
 * run.c drives it: prepare (job, data, model, baselines, plan), digest (data
 * SHA-256 and a finiteness check, spread over ranks), the plan hash, resume
 * (the shard directory OUT.shards/: what is done, what changed), then
 * work.c computes the pending units and makes them durable in shards, and
 * assemble.c folds every unit from the shards in plan order and writes the
 * results file. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    job j;
    char *job_yaml;          /* effective job, emitted */
    h5_reader *rd;
    h5_dataset_info info;
    eng_model model;
    h5_model_info minfo;
    int64_t row_start, n_rows;
    float *baseline[JOB_MAX_METHODS]; /* (D) per method that uses one */
    float *refs[JOB_MAX_METHODS];     /* (n_refs, D) reference rows (expected
                                         gradients, gradient_shap) */
    int n_refs[JOB_MAX_METHODS];
    int32_t *groups[JOB_MAX_METHODS]; /* (D) feature groups, or NULL */
    int n_groups[JOB_MAX_METHODS];
    plan p;
    double t_start;          /* the command's start: run.max_wall_time counts from it */
    double t_run;            /* this run's start (a sweep point's own; else
                                t_start): time_total_s and started_at */
    char started_at[32];
    int fresh;               /* --fresh: discard shards of this output */
    int sweep_point;         /* a point of a sweep (sweep.c owns the stop file) */
    run_digest_memo *digest_memo; /* a sweep's (sweep.c), or NULL */
    /* provenance and resume */
    char data_sha[65];
    char *plan_text;         /* "key = value" lines that decide the results */
    char plan_hash[65];      /* SHA-256 of plan_text */
    char shard_dir[JOB_PATH_MAX + 16]; /* OUT.shards */
    char stop_path[JOB_PATH_MAX + 16]; /* run.stop_file or OUT.stop */
    uint8_t *done;           /* (n_units) 1 = in a shard already */
    int64_t n_done_before;   /* units done when this run started */
    int attempt;             /* this run's number in the shard directory */
} run_ctx;

/* The rows of one row block, with the model's view of them. */
typedef struct {
    int64_t rb;
    int nrows;
    float *x;        /* (block_rows, D) */
    int32_t *label;  /* (block_rows) */
    float *logits;   /* (block_rows, C) */
    int32_t *pred;   /* (block_rows) */
} block_cache;

void block_cache_init(block_cache *b, const plan *p);
void block_cache_free(block_cache *b);
/* Read row block rb (and its logits and predictions) unless cached. */
int block_load(run_ctx *c, mth_scratch *sc, block_cache *b, int64_t rb, at_err *err);
/* "DATA: /split/labels[row] = label is not a class of the model ..." */
int run_label_error(run_ctx *c, int m, int64_t row, int32_t label, at_err *err);
/* Targets of method m for the cached block's rows. */
int block_targets(run_ctx *c, int m, const block_cache *b, int32_t *t, at_err *err);

/* Open data.split (c->rd, c->info, c->row_start, c->n_rows) and load
 * model.path (c->model, c->minfo), checking data.rows and that the model
 * takes the rows' features; set c->stop_path (run.stop_file, or
 * OUTPUT.stop). Collective; errors agreed. */
int run_open_inputs(run_ctx *c, at_err *err);

/* All ranks agree on the outcome of a stage: returns the largest code of
 * any rank; the lowest failing rank prints its message. Collective. */
int run_agree(run_ctx *c, const at_err *err);
void run_nap(void); /* 0.2 ms: waiting without spinning */
void run_iso_now(char *out, size_t cap); /* UTC, ISO 8601 */

/* Why a run stops early; larger values win when ranks disagree. */
typedef enum {
    STOP_NONE = 0,
    STOP_WALL_TIME,  /* run.max_wall_time would be passed by the next unit */
    STOP_FILE,       /* the stop file appeared */
    STOP_SIGNAL,     /* SIGTERM, SIGUSR1 or SIGINT */
    STOP_ERROR,      /* a rank failed; the others stop too */
} stop_reason;

/* Signal handlers for SIGTERM, SIGUSR1 and SIGINT: the first one asks for a
 * stop at the next unit boundary; a second SIGINT kills (Ctrl-C twice). */
void stop_install_handlers(void);
int stop_signal_received(void); /* signal number, or 0 */
const char *stop_reason_text(stop_reason r);

typedef struct {
    int64_t units_computed;  /* by this rank in this run (durable) */
    int64_t shards_written;
    double compute_s;        /* in units */
    double shard_s;          /* writing shards */
    stop_reason stop;        /* agreed over ranks */
    int64_t units_done_all;  /* agreed: units in shards after this run */
} work_stats;

/* Compute the pending units (c->done == 0) with the job's scheduler; each
 * rank writes its finished units to its own shards. Collective; returns 0
 * (check st->stop) or an error code agreed by all ranks. */
int work_run(run_ctx *c, work_stats *st, at_err *err);

typedef struct {
    double fold_s, write_s;
    int64_t n_rel_over[JOB_MAX_METHODS]; /* per method: samples with |delta| >
                                            1e-2 |f(x)-f(b)| (LRP: |f(x)|) */
    double max_rel_delta[JOB_MAX_METHODS];
    int64_t correct;         /* predicted == label */
} assemble_stats;

/* Fold every unit from the shards in plan order, finalize, and write the
 * results file (OUT.partial, then renamed). Collective. */
int assemble_results(run_ctx *c, const work_stats *ws, assemble_stats *st, at_err *err);

/* "key: value" lines (job_method_emit, job_influence_emit) as attributes of
 * group grp, except name and kind: numbers as float64 (int64 when
 * integral), booleans as int64 0/1, lists of numbers as float64 vectors,
 * the rest as strings. Collective. */
void results_fields_attrs(h5_results *r, const char *grp, const char *fields, at_err *err);

/* ---- training-data attribution (influence.c) ---- */

/* `attrib run|validate` of a job with an influence: section, after the job
 * is parsed (c->j) and the MPI context set: everything from opening the
 * files to the results file. validate: check and print the plan only;
 * dry_run likewise (both print the memory plan).
 * Returns the exit code (agreed by all ranks). */
int infl_main(run_ctx *c, int validate_only, int dry_run, at_err *err);

/* The shard directory's scan: which units are done, and where. */
typedef struct {
    int n_files;
    char **files;       /* (n_files) paths */
    int32_t *file_of;   /* (n_units) index into files, -1 = not done */
    int64_t *row_of;    /* (n_units) first row of the unit in the file */
    int max_attempt;    /* largest attempt number among shard names */
} shard_scan;

/* Rank 0: scan c->shard_dir. Unreadable shards are reported and renamed
 * *.bad (their units are recomputed); shards of another plan are an error. */
int shard_scan_dir(run_ctx *c, shard_scan *s, at_err *err);
/* Broadcast a scan from rank 0 (other ranks receive it). Collective. */
void shard_scan_bcast(run_ctx *c, shard_scan *s);
void shard_scan_free(shard_scan *s);

/* The plan text and hash of a prepared run (c->plan_text, c->plan_hash). */
void resume_plan_text(run_ctx *c);
/* "key: old -> new; ..." of two plan texts, for messages. */
void resume_plan_diff(const char *was, const char *now, char *out, size_t cap);
/* Before computing (collective): an existing results file of this job ->
 * *complete = 1; of another job -> refused unless output.overwrite; an
 * existing OUT.shards/ of this plan -> its units are done (c->done), of
 * another plan -> refused unless --fresh; then the directory and its
 * plan.txt exist, stale *.tmp and stop files are gone. */
int resume_prepare(run_ctx *c, int *complete, at_err *err);
/* For --dry-run (rank 0, reads only): what a run would find and do. */
void resume_describe(run_ctx *c, FILE *f);
/* After the results file is in place: remove OUT.shards/ (rank 0) unless
 * output.keep_shards. */
void resume_cleanup(run_ctx *c);

/* Commands. argv excludes the command name. */
int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_import_synthetic(int argc, char **argv); /* synth.c */
int cmd_render(int argc, char **argv);           /* render.c */
int cmd_report(int argc, char **argv);           /* report.c */
int cmd_inspect(int argc, char **argv);          /* inspect.c */
int cmd_topk(int argc, char **argv);             /* inspect.c */
int cmd_merge(int argc, char **argv);            /* sweep.c */

/* Shared CLI helpers. */
#define CLI_MAX_SETS 256 /* --set options on a command line */
typedef struct {
    const char *job_path;
    const char *out_path; /* -o */
    /* the user's --set options (at most CLI_MAX_SETS), then a sweep
     * point's sets and its stop file (sweep.c) */
    const char *sets[CLI_MAX_SETS + JOB_SWEEP_MAX_KEYS + 1];
    int n_sets;
    int dry_run;
    int fresh;
    int help;
    const char *points;   /* --points SPEC (sweeps): I, I:J or I/N */
    const char *job_text; /* the job file's text when already read (a sweep
                             reads it once for all points), else NULL */
} cli_job_args;

/* Parse "JOB.yaml [-o OUT] [--set k=v]... [--dry-run] [--fresh] [--help]". Returns 0
 * or AT_EUSER (message in err). */
int cli_parse_job_args(int argc, char **argv, int allow_out, cli_job_args *a,
                       at_err *err);
/* Print an error the way users see it: "attrib: error: ..." on stderr. */
void cli_error(const at_err *err);

/* The text of a job and its overrides, on every rank. */
typedef struct {
    char *text; /* the job file's text */
    /* a's --set options, then -o OUT as output.path=OUT (applied last) */
    const char *sets[sizeof((cli_job_args *)0)->sets / sizeof(const char *) + 1];
    int n_sets;
    char *out_set; /* "output.path=OUT" */
} run_job_input;
/* a->job_text, or a's job file read by rank 0, broadcast; and a's
 * overrides. 0 or the agreed error code (nothing to free then).
 * Collective. Release with run_job_input_free. */
int run_job_input_load(run_ctx *c, const cli_job_args *a, run_job_input *in, at_err *err);
void run_job_input_free(run_job_input *in);

/* The context of a command on MPI_COMM_WORLD (after MPI_Init): comm, rank,
 * size, the log's rank, the start time and rank 0's started_at. Collective. */
void run_ctx_start(run_ctx *c);

/* One run of a job (no sweep), on every rank: c has comm, rank, size,
 * t_start, started_at and fresh set. run_job_prepare reads and checks the
 * job (a's text or file, --set and -o), opens its inputs, builds the plan,
 * digests the rows and sets the plan hash (influence jobs: up to the job
 * only); run_job_compute resumes, computes, assembles and prints the
 * summary (returns AT_EXIT_RESUMABLE on a stop). Collective; codes agreed.
 * run_ctx_free releases what they filled. */
int run_job_prepare(run_ctx *c, const cli_job_args *a, at_err *err);
int run_job_compute(run_ctx *c, const cli_job_args *a, at_err *err);
void run_ctx_free(run_ctx *c);

/* Directories (resume.c). mkdir_p: mkdir -p dir; 0, or AT_EUSER "cannot
 * create the directory D (why)" (the caller prefixes what it was for).
 * unlink_entries: unlink the files of dir whose names end with suffix
 * ("" = all of them); subdirectories are left alone. */
int mkdir_p(const char *dir, at_err *err);
void unlink_entries(const char *dir, const char *suffix);

/* Memory per rank of the plan (plan.c; docs/jobs.md "Memory per rank"):
 * bytes by purpose and the estimated peak. */
typedef struct {
    double params, workspace, block, partial, shard_buffer, inputs, fold, outputs;
    double peak; /* params + inputs + max(compute stage, assembly stage) */
} plan_memory;
void plan_memory_estimate(const plan *p, const job *j, const eng_model *m, int n_ranks,
                          plan_memory *out);
void plan_print_memory(FILE *f, const plan *p, const job *j, const eng_model *m,
                       int n_ranks);
/* Forward+backward passes of the whole plan and an upper bound of the
 * results file's size (uncompressed). */
void plan_totals(const plan *p, double *passes, double *out_bytes);

/* ---- sweeps (sweep.c; job.h explains points) ---- */

/* Rank 0 reads a's job file; every rank expands its sweep with a's --set
 * and -o (job_sweep_parse). sw->n_points = 0 without a sweep. *text: the
 * job's text on every rank, read once for all points (set a->job_text);
 * the caller frees it, also on failure. Collective; errors agreed and
 * printed. */
int sweep_load(run_ctx *c, const cli_job_args *a, job_sweep *sw, char **text, at_err *err);
/* `attrib run|validate` of a sweep: validate or --dry-run print every
 * point's plan line and totals; run computes the points that --points
 * selects (all by default) into OUTPUT.sweep/NNNN.h5, skipping complete
 * ones, and merges when every point is selected. Returns the exit code. */
int sweep_main(run_ctx *c, const cli_job_args *a, const job_sweep *sw, int validate_only,
               at_err *err);

/* `attrib validate` of a job with a train section and no methods: checks it
 * as a training job (purpose TRAIN, its splits open). *is_train = 0 when the
 * job is not one; then nothing is printed and 0 is returned. */
int train_validate(const cli_job_args *a, int *is_train, at_err *err);

#endif
