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

#include "core.h"
#include "job.h"
#include "methods.h"

/* Engine rows per batched forward/backward inside a unit. Fixed (not a
 * function of rank count) so that batching never changes results. */
#define PLAN_ENGINE_BATCH 2048

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
} plan;

/* Build the plan. Returns 0 or AT_EUSER. */
int plan_build(plan *p, const job *j, int64_t row_start, int64_t n_rows,
               int64_t n_features, int64_t n_classes, at_err *err);
void plan_free(plan *p);
/* First unit of (method, rb): units are contiguous per (method, rb). */
int64_t plan_first_unit(const plan *p, int method, int64_t rb);
/* Translate the job's method settings into a method spec (not planned). */
void plan_method_spec(const job_method *jm, mth_spec *out);

/* Print the plan (for --dry-run): units, rows, steps, passes, output size. */
void plan_print(FILE *f, const plan *p, const job *j, int n_ranks);

/* Progress on rank 0: a live bar on a terminal, a plain line every
 * `interval` seconds otherwise (SLURM logs). */
typedef struct {
    int64_t units_total, units_done;
    double work_total, work_done; /* engine rows */
    double rows_total, rows_done; /* rows x (fraction of a method's grid) */
    double t0, last;
    double interval;
    int tty;
    int printed;
} progress;

void progress_init(progress *pr, int64_t units_total, double work_total,
                   double rows_total, double interval);
void progress_add(progress *pr, int64_t units, double work, double rows);
void progress_finish(progress *pr);

/* Commands. argv excludes the command name. */
int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* Shared CLI helpers. */
typedef struct {
    const char *job_path;
    const char *out_path; /* -o */
    const char *sets[256];
    int n_sets;
    int dry_run;
    int help;
} cli_job_args;

/* Parse "JOB.yaml [-o OUT] [--set k=v]... [--dry-run] [--help]". Returns 0
 * or AT_EUSER (message in err). */
int cli_parse_job_args(int argc, char **argv, int allow_out, cli_job_args *a,
                       at_err *err);
/* Print an error the way users see it: "attrib: error: ..." on stderr. */
void cli_error(const at_err *err);

/* `attrib validate` of a job with a train section and no methods: checks it
 * as a training job (purpose TRAIN, its splits open). *is_train = 0 when the
 * job is not one; then nothing is printed and 0 is returned. */
int train_validate(const cli_job_args *a, int *is_train, at_err *err);

#endif
