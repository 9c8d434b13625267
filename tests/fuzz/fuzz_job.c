/* fuzz_job.c — libFuzzer target for the job loader (io/job.c).
 *
 * Input: optional override lines "--set k=v\n" (at most 4) at the start, then
 * YAML text. For purposes ANY, RUN and TRAIN:
 *   - job_parse either succeeds or fails with AT_EUSER, a message naming the
 *     source, and the job zeroed;
 *   - if it succeeds, the effective job that job_emit_yaml writes parses
 *     again (no overrides) to a job that is byte-for-byte the same, and
 *     emitting that one gives the same text (the round trip results files
 *     rely on: their job_yaml attribute is itself a valid job file);
 *   - its layer list (model.layers, residual blocks flattened), written as a
 *     model file's `architecture` (arch_emit_specs), parses back without
 *     residual blocks to the same specs: what `attrib train` saves loads.
 * The text may hold layer lists (model.layers, residual blocks, references
 * by name) and every train field; job.dict has their words. A broken
 * property aborts (a crash for libFuzzer, a failed ctest replay).
 * FUZZ_JOB_VERBOSE=1 prints what job_parse said for each purpose; at exit
 * it prints how many parses succeeded, and how many of those had layers.
 * See docs/robustness.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "job.h"

#define SOURCE "fuzz.yaml"
#define MAX_SETS 4

static void die(const char *what, const char *text, const char *detail) {
    fprintf(stderr, "fuzz_job: %s\n--- input text ---\n%s\n--- detail ---\n%s\n", what, text,
            detail ? detail : "");
    abort();
}

static int is_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

static long n_parsed, n_ok, n_ok_layers;

static void print_stats(void) {
    fprintf(stderr, "fuzz_job: %ld of %ld parses succeeded, %ld with model.layers\n", n_ok,
            n_parsed, n_ok_layers);
}

static void check_purpose(const char *text, const char *const *sets, int n_sets,
                          job_purpose purpose) {
    static job j, j2; /* large: keep them off the stack */
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_JOB_VERBOSE") && strcmp(getenv("FUZZ_JOB_VERBOSE"), "0") != 0;
    at_err e = {0};
    int rc = job_parse(text, SOURCE, sets, n_sets, purpose, &j, &e);
    n_parsed++;
    if (rc == 0) {
        n_ok++;
        n_ok_layers += j.n_layers > 0;
    }
    if (verbose)
        fprintf(stderr, "  %s: %s\n",
                purpose == JOB_PURPOSE_ANY ? "any" : purpose == JOB_PURPOSE_RUN ? "run" : "train",
                rc ? e.msg : "ok");
    if (rc != 0) {
        if (rc != AT_EUSER || e.code != rc)
            die("job_parse failed with a code other than 2", text, e.msg);
        if (!e.msg[0]) die("job_parse failed without a message", text, NULL);
        if (strncmp(e.msg, SOURCE, strlen(SOURCE)) != 0 && strncmp(e.msg, "--set ", 6) != 0)
            die("error message names neither the file nor the --set", text, e.msg);
        if (!is_zero(&j, sizeof j)) die("job not zeroed after an error", text, e.msg);
        return;
    }
    char *y1 = job_emit_yaml(&j);
    at_err e2 = {0};
    rc = job_parse(y1, SOURCE, NULL, 0, purpose, &j2, &e2);
    if (rc != 0) die("the emitted job does not parse", text, e2.msg);
    char *y2 = job_emit_yaml(&j2);
    if (strcmp(y1, y2) != 0) die("emit(parse(emit(job))) differs from emit(job)", text, y1);
    if (memcmp(&j, &j2, sizeof j) != 0) die("parse(emit(job)) differs from job", text, y1);
    if (j.n_layers > 0) {
        static eng_layer specs[JOB_MAX_LAYERS];
        char *arch = arch_emit_specs(j.layers, j.n_layers, "");
        int n = 0;
        at_err e3 = {0};
        if (arch_parse_text(arch, "architecture", 0, specs, JOB_MAX_LAYERS, &n, &e3) != 0)
            die("the job's layers, as a model file's architecture, do not parse", text, e3.msg);
        if (n != j.n_layers || memcmp(specs, j.layers, (size_t)n * sizeof *specs) != 0)
            die("the job's layers, as a model file's architecture, parse to other specs", text,
                arch);
        free(arch);
    }
    free(y2);
    free(y1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once++) atexit(print_stats);
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* leading "--set k=v" lines are overrides */
    const char *sets[MAX_SETS];
    int n_sets = 0;
    char *text = buf;
    while (n_sets < MAX_SETS && strncmp(text, "--set ", 6) == 0) {
        char *nl = strchr(text, '\n');
        if (!nl) break;
        *nl = '\0';
        sets[n_sets++] = text + 6;
        text = nl + 1;
    }
    check_purpose(text, sets, n_sets, JOB_PURPOSE_ANY);
    check_purpose(text, sets, n_sets, JOB_PURPOSE_RUN);
    check_purpose(text, sets, n_sets, JOB_PURPOSE_TRAIN);
    free(buf);
    return 0;
}
