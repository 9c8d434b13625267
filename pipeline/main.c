/* main.c — the attrib command line. See pipeline.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "pipeline.h"


static const char *USAGE =
    "attrib " ATTRIB_VERSION " — attribution scores for neural networks at cluster scale\n"
    "\n"
    "usage: attrib COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run JOB.yaml [-o OUT.h5] [--set k=v]... [--dry-run] [--fresh]\n"
    "                        compute the job's attributions (1 process or mpirun -n N;\n"
    "                        the results are the same bytes for any N); resumes an\n"
    "                        interrupted run of the same job from OUT.h5.shards/\n"
    "  run JOB.yaml --points SPEC\n"
    "                        only a sweep's points I, I:J or I/N (SLURM array tasks)\n"
    "  merge JOB.yaml [-o OUT.h5] [--set k=v]...\n"
    "                        merge a sweep's points (OUT.h5.sweep/) into OUT.h5\n"
    "  validate JOB.yaml [--set k=v]...\n"
    "                        check a job file (and its data and model files) without running\n"
    "  train JOB.yaml [--set k=v]...\n"
    "                        train a model with the engine and write a model file\n"
    "  eval --model M.h5 --data D.h5 [--split test] [--rows A:B] [-o LOGITS.h5]\n"
    "                        accuracy and loss of a model on a dataset split\n"
    "  import fashion-mnist --out D.h5 [--from DIR]\n"
    "                        convert Debian's dataset-fashion-mnist into an attrib dataset\n"
    "  import synthetic-tokens --out D.h5 [--n-train N] [--n-test N] [--seq-len T]\n"
    "         [--vocab V] [--seed S]\n"
    "                        a token-sequence task with known relevant tokens (transformers)\n"
    "  render RESULTS.h5 --method M [--samples A:B] [-o OUT.png] [--point NAME]\n"
    "                        heatmap overlays (or influence proponents/opponents) as a PNG\n"
    "  report RESULTS.h5 -o DIR [--samples A:B] [--point NAME]\n"
    "                        a static HTML page: pictures, metrics, agreement, timing\n"
    "  inspect RESULTS.h5 [--point NAME] [--json]\n"
    "                        summary of a results file: job, methods, statistics, metrics,\n"
    "                        timing, load balance; sweeps: how each setting changed the answer\n"
    "  topk RESULTS.h5 --method M --sample I [--k K] [--opponents] [--csv]\n"
    "                        most influential train rows of a test sample (or features)\n"
    "\n"
    "options:\n"
    "  --help                show help (also: attrib COMMAND --help)\n"
    "  --version             print the version\n"
    "\n"
    "exit codes: 0 done; 2 bad job, input or command line; 3 I/O or system failure;\n"
    "            4 internal error; 75 stopped early (signal, stop file, max_wall_time),\n"
    "            finished work kept: rerun the same command to resume.\n"
    "docs: README.md, docs/jobs.md (job fields), docs/format.md (HDF5 layouts),\n"
    "      docs/inspect.md (inspect, topk), docs/pictures.md (render, report),\n"
    "      docs/cluster.md (SLURM, sweeps, time limits).\n";

void cli_error(const at_err *err) {
    fprintf(stderr, "attrib: error: %s\n", err->msg);
    fflush(stderr);
}

int cli_parse_job_args(int argc, char **argv, int allow_out, cli_job_args *a,
                       at_err *err) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            a->help = 1;
        } else if (strcmp(s, "--dry-run") == 0) {
            a->dry_run = 1;
        } else if (allow_out && strcmp(s, "--fresh") == 0) {
            a->fresh = 1;
        } else if (strcmp(s, "--set") == 0 || strncmp(s, "--set=", 6) == 0) {
            const char *v = s[5] == '=' ? s + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return at_err_set(err, AT_EUSER, "--set needs a value: --set section.key=value");
            if (!strchr(v, '='))
                return at_err_set(err, AT_EUSER,
                                  "--set %s: expected section.key=value (e.g. --set run.block_rows=32)", v);
            if (a->n_sets >= CLI_MAX_SETS)
                return at_err_set(err, AT_EUSER, "too many --set options (at most %d)",
                                  CLI_MAX_SETS);
            a->sets[a->n_sets++] = v;
        } else if (allow_out && (strcmp(s, "--points") == 0 || strncmp(s, "--points=", 9) == 0)) {
            const char *v = s[8] == '=' ? s + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v)
                return at_err_set(err, AT_EUSER, "--points needs a value: I, I:J or I/N");
            a->points = v;
        } else if (allow_out && (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0)) {
            if (i + 1 >= argc) return at_err_set(err, AT_EUSER, "%s needs a file name", s);
            a->out_path = argv[++i];
        } else if (s[0] == '-' && s[1] != '\0') {
            return at_err_set(err, AT_EUSER, "unknown option '%s' (see --help)", s);
        } else if (!a->job_path) {
            a->job_path = s;
        } else {
            return at_err_set(err, AT_EUSER, "unexpected argument '%s' (one job file only)", s);
        }
    }
    if (!a->help && !a->job_path)
        return at_err_set(err, AT_EUSER, "missing job file (usage: attrib COMMAND JOB.yaml)");
    return 0;
}

int main(int argc, char **argv) {
    at_elapsed();
    h5io_quiet();
    if (argc < 2) {
        fputs(USAGE, stderr);
        return AT_EUSER;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("attrib %s\n", ATTRIB_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "merge") == 0) return cmd_merge(argc - 2, argv + 2);
    if (strcmp(cmd, "validate") == 0) return cmd_validate(argc - 2, argv + 2);
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "render") == 0) return cmd_render(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc - 2, argv + 2);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 2, argv + 2);
    if (strcmp(cmd, "topk") == 0) return cmd_topk(argc - 2, argv + 2);
    if (strcmp(cmd, "import") == 0) {
        /* the synthetic generators live in synth.c: any argument that is
         * their name (and not the value of --out or --from) selects them */
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o") ||
                !strcmp(argv[i], "--from")) {
                i++;
                continue;
            }
            if (argv[i][0] == '-') continue;
            if (!strcmp(argv[i], "synthetic-tokens")) {
                for (int k = i; k + 1 < argc; k++) argv[k] = argv[k + 1];
                return cmd_import_synthetic(argc - 3, argv + 2); /* without the name */
            }
        }
        return cmd_import(argc - 2, argv + 2);
    }
    fprintf(stderr, "attrib: error: unknown command '%s'\n\n%s", cmd, USAGE);
    return AT_EUSER;
}
