/* test_job.c — io/job.c: parsing, defaults, --set, emit/parse round trip,
 * error messages (text, field path, line), the files in tests/bad_jobs.
 *
 * Usage: test_job [BAD_JOBS_DIR]   (default: ATTRIB_SRC_DIR/tests/bad_jobs)
 * Prints every failed check and exits 1 if there was any. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

static int n_checks, n_failed;

static void check(int ok, const char *file, int line, const char *fmt, ...) {
    n_checks++;
    if (ok) return;
    n_failed++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}
#define CHECK(cond, ...) check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static int is_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* Parse text (no overrides unless given) and report a failure as a check. */
static int parse_ok(const char *text, const char *const *sets, int n_sets,
                    job_purpose purpose, job *j, const char *what) {
    at_err e = {0};
    int rc = job_parse(text, "test.yaml", sets, n_sets, purpose, j, &e);
    CHECK(rc == 0, "%s: job_parse failed: %s", what, e.msg);
    return rc == 0;
}

/* Compare two jobs byte for byte; on a difference print both as YAML. */
static void check_same(const job *a, const job *b, const char *what) {
    int same = memcmp(a, b, sizeof *a) == 0;
    CHECK(same, "%s: jobs differ", what);
    if (!same) {
        char *ya = job_emit_yaml(a), *yb = job_emit_yaml(b);
        printf("--- got\n%s--- expected\n%s---\n", ya, yb);
        free(ya);
        free(yb);
    }
}

/* The defaults every job gets for its metrics section and every gradient
 * method for its noise wrapper fields. */
static void metrics_defaults(job *x) {
    x->metrics.curve_steps = 20;
    x->metrics.infidelity_sigma = 0.1;
    x->metrics.sensitivity_radius = 0.02;
    x->metrics.top_k = 20;
}

static void noise_defaults(job *x) {
    for (int i = 0; i < x->n_methods; i++) {
        job_method *m = &x->methods[i];
        m->noise_samples = 20;
        m->noise_sigma = 0.15;
    }
}

/* ------------------------------------------------------------ full job */

static const char *FULL_JOB =
    "# every field given\n"
    "data:\n"
    "  path: data/mnist.h5\n"
    "  split: val\n"
    "  rows: \"100:900\"\n"
    "model:\n"
    "  path: models/mlp.h5\n"
    "  hidden: [512, 256]\n"
    "  input_shape: [1, 28, 28]\n"
    "methods:\n"
    "  - name: ig-gl\n"
    "    kind: integrated_gradients\n"
    "    target: label\n"
    "    n_steps: 64\n"
    "    quadrature: gauss_legendre\n"
    "    baseline: constant\n"
    "    baseline_value: 0.5\n"
    "  - name: ig_mean\n"
    "    kind: integrated_gradients\n"
    "    target: 7\n"
    "    n_steps: 2\n"
    "    quadrature: riemann_trapezoid\n"
    "    baseline: mean\n"
    "    baseline_split: train2\n"
    "  - {name: sal, kind: saliency, abs: false, target: predicted}\n"
    "  - name: ixg\n"
    "    kind: input_x_gradient\n"
    "run:\n"
    "  scheduler: dynamic\n"
    "  block_rows: 128\n"
    "  step_block: 16\n"
    "  seed: 12345678901234\n"
    "  blas_threads: 4\n"
    "  progress_interval: 0.5\n"
    "  checkpoint_interval: 0\n"
    "  max_wall_time: \"1-02:03:04\"\n"
    "  stop_file: /tmp/stop-now\n"
    "train:\n"
    "  epochs: 20\n"
    "  batch_size: 64\n"
    "  lr: 0.1\n"
    "  momentum: 0.5\n"
    "  weight_decay: 1e-4\n"
    "  optimizer: sgd\n"
    "  nesterov: true\n"
    "  schedule: step\n"
    "  step_size: 3\n"
    "  gamma: 0.5\n"
    "  loss: cross_entropy\n"
    "  label_smoothing: 0.1\n"
    "  checkpoint_every: 2\n"
    "  checkpoints: ck/train.h5\n"
    "  seed: 7\n"
    "  eval_split: \"\"\n"
    "output:\n"
    "  path: results/out.h5\n"
    "  compression: 0\n"
    "  overwrite: true\n"
    "  keep_shards: true\n";

static void full_expected(job *x) {
    memset(x, 0, sizeof *x);
    strcpy(x->source_path, "test.yaml");
    strcpy(x->data_path, "data/mnist.h5");
    strcpy(x->data_split, "val");
    x->row_start = 100;
    x->row_end = 900;
    strcpy(x->model_path, "models/mlp.h5");
    x->n_hidden = 2;
    x->hidden[0] = 512;
    x->hidden[1] = 256;
    x->input_ndim = 3;
    x->input_shape[0] = 1;
    x->input_shape[1] = x->input_shape[2] = 28;
    x->n_methods = 4;
    job_method *m = &x->methods[0];
    strcpy(m->name, "ig-gl");
    m->kind = JOB_METHOD_INTEGRATED_GRADIENTS;
    m->target = JOB_TARGET_LABEL;
    m->n_steps = 64;
    m->quadrature = JOB_QUAD_GAUSS_LEGENDRE;
    m->baseline = JOB_BASELINE_CONSTANT;
    m->baseline_value = 0.5;
    m = &x->methods[1];
    strcpy(m->name, "ig_mean");
    m->kind = JOB_METHOD_INTEGRATED_GRADIENTS;
    m->target = JOB_TARGET_CLASS;
    m->target_class = 7;
    m->n_steps = 2;
    m->quadrature = JOB_QUAD_RIEMANN_TRAPEZOID;
    m->baseline = JOB_BASELINE_MEAN;
    strcpy(m->baseline_split, "train2");
    m = &x->methods[2];
    strcpy(m->name, "sal");
    m->kind = JOB_METHOD_SALIENCY;
    m->target = JOB_TARGET_PREDICTED;
    m->abs_value = 0;
    m = &x->methods[3];
    strcpy(m->name, "ixg");
    m->kind = JOB_METHOD_INPUT_X_GRADIENT;
    m->target = JOB_TARGET_PREDICTED;
    x->scheduler = JOB_SCHED_DYNAMIC;
    x->block_rows = 128;
    x->step_block = 16;
    x->seed = 12345678901234u;
    x->blas_threads = 4;
    x->progress_interval = 0.5;
    x->checkpoint_interval = 0.0;
    x->max_wall_time = 86400.0 + 2 * 3600.0 + 3 * 60.0 + 4.0;
    strcpy(x->stop_file, "/tmp/stop-now");
    x->has_train = 1;
    x->epochs = 20;
    x->batch_size = 64;
    x->lr = 0.1;
    x->momentum = 0.5;
    x->weight_decay = 1e-4;
    x->optimizer = ENG_OPT_SGD;
    x->nesterov = 1;
    x->schedule = ENG_SCHED_STEP;
    x->step_size = 3;
    x->gamma = 0.5;
    x->loss = ENG_LOSS_XENT;
    x->label_smoothing = 0.1;
    x->checkpoint_every = 2;
    strcpy(x->checkpoint_path, "ck/train.h5");
    x->train_seed = 7;
    x->eval_split[0] = '\0';
    strcpy(x->output_path, "results/out.h5");
    x->compression = 0;
    x->overwrite = 1;
    x->keep_shards = 1;
    metrics_defaults(x);
    noise_defaults(x);
}

static void test_full(void) {
    job j, x;
    full_expected(&x);
    if (parse_ok(FULL_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "full job (run)"))
        check_same(&j, &x, "full job (run)");
    if (parse_ok(FULL_JOB, NULL, 0, JOB_PURPOSE_TRAIN, &j, "full job (train)"))
        check_same(&j, &x, "full job (train)");
}

/* ------------------------------------------------------------- defaults */

static const char *MIN_RUN_JOB =
    "data: {path: d.h5}\n"
    "model: {path: m.h5}\n"
    "methods:\n"
    "  - {name: ig, kind: integrated_gradients}\n"
    "  - {name: sal, kind: saliency}\n"
    "  - {name: ixg, kind: input_x_gradient}\n"
    "output: {path: o.h5}\n";

/* The defaults of everything but paths, methods and hidden. */
static void default_expected(job *x) {
    memset(x, 0, sizeof *x);
    strcpy(x->source_path, "test.yaml");
    strcpy(x->data_split, "test");
    x->row_start = 0;
    x->row_end = -1;
    x->scheduler = JOB_SCHED_STATIC;
    x->block_rows = 64;
    x->step_block = 0;
    x->seed = 0;
    x->blas_threads = 1;
    x->progress_interval = 5.0;
    x->checkpoint_interval = 60.0;
    x->max_wall_time = 0.0;
    x->epochs = 10;
    x->batch_size = 128;
    x->lr = 0.05;
    x->momentum = 0.9;
    x->weight_decay = 0.0;
    x->optimizer = ENG_OPT_SGD; /* the fields of adam and of other schedules stay 0 */
    x->schedule = ENG_SCHED_CONSTANT;
    x->loss = ENG_LOSS_XENT;
    x->label_smoothing = 0.0;
    x->checkpoint_every = 0;
    x->train_seed = 0;
    strcpy(x->eval_split, "test");
    x->compression = 4;
    x->overwrite = 0;
    metrics_defaults(x);
}

static void test_defaults(void) {
    job j, x;
    default_expected(&x);
    strcpy(x.data_path, "d.h5");
    strcpy(x.model_path, "m.h5");
    strcpy(x.output_path, "o.h5");
    x.n_methods = 3;
    job_method *m = &x.methods[0];
    strcpy(m->name, "ig");
    m->kind = JOB_METHOD_INTEGRATED_GRADIENTS;
    m->target = JOB_TARGET_PREDICTED;
    m->n_steps = 50;
    m->quadrature = JOB_QUAD_GAUSS_LEGENDRE;
    m->baseline = JOB_BASELINE_ZERO;
    m = &x.methods[1];
    strcpy(m->name, "sal");
    m->kind = JOB_METHOD_SALIENCY;
    m->target = JOB_TARGET_PREDICTED;
    m->abs_value = 1;
    m = &x.methods[2];
    strcpy(m->name, "ixg");
    m->kind = JOB_METHOD_INPUT_X_GRADIENT;
    m->target = JOB_TARGET_PREDICTED;
    noise_defaults(&x);
    if (parse_ok(MIN_RUN_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "minimal run job"))
        check_same(&j, &x, "minimal run job");

    /* Baseline defaults: constant -> 0.0, mean -> "train". */
    if (parse_ok("methods: [{name: a, kind: integrated_gradients, baseline: "
                 "constant}, {name: b, kind: integrated_gradients, baseline: mean}]",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "baseline defaults")) {
        CHECK(j.methods[0].baseline_value == 0.0 && !j.methods[0].baseline_split[0],
              "constant baseline: value 0.0, no split");
        CHECK(!strcmp(j.methods[1].baseline_split, "train"),
              "mean baseline split defaults to train, got '%s'",
              j.methods[1].baseline_split);
    }

    /* Per-kind defaults: "50 (shapley_sampling 25, kernel_shap 200, ...)". */
    if (parse_ok("methods: [{name: a, kind: shapley_sampling}, {name: b, kind: kernel_shap}, "
                 "{name: c, kind: expected_gradients}, {name: d, kind: rise}, "
                 "{name: e, kind: sobol}, {name: f, kind: lime}, {name: g, kind: occlusion}]",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "per-kind defaults")) {
        CHECK(j.methods[0].n_samples == 25, "shapley n_samples %d", j.methods[0].n_samples);
        CHECK(j.methods[1].n_samples == 200, "kernel_shap n_samples %d", j.methods[1].n_samples);
        CHECK(j.methods[2].n_samples == 50, "EG n_samples %d", j.methods[2].n_samples);
        CHECK(j.methods[3].n_samples == 2000 && j.methods[3].grid == 7 &&
                  j.methods[3].keep_prob == 0.5,
              "rise defaults %d %d %g", j.methods[3].n_samples, j.methods[3].grid,
              j.methods[3].keep_prob);
        CHECK(j.methods[4].n_samples == 32 && j.methods[4].grid == 8, "sobol defaults");
        CHECK(j.methods[5].n_samples == 200 && j.methods[5].ridge == 1.0 &&
                  j.methods[5].distance == 1 && j.methods[5].kernel_width == 0.0,
              "lime defaults");
        CHECK(j.methods[6].n_window == 2 && j.methods[6].window[0] == 4 &&
                  j.methods[6].window[1] == 4 && j.methods[6].n_stride == 0,
              "occlusion defaults");
        char *y = job_emit_yaml(&j);
        job k;
        if (parse_ok(y, NULL, 0, JOB_PURPOSE_ANY, &k, "per-kind defaults, emitted"))
            CHECK(!memcmp(j.methods, k.methods, sizeof j.methods), "emitted methods parse back");
        free(y);
    }

    /* An empty job is valid for ANY: every default, nothing else. */
    default_expected(&x);
    const char *empties[] = {"", "# only a comment\n", "---\n", "{}"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++)
        if (parse_ok(empties[i], NULL, 0, JOB_PURPOSE_ANY, &j, "empty job"))
            check_same(&j, &x, empties[i]);

    /* "train:" alone enables training with every default. */
    x.has_train = 1;
    strcpy(x.data_path, "d.h5");
    strcpy(x.model_path, "m.h5");
    x.n_hidden = 1;
    x.hidden[0] = 32;
    strcpy(x.checkpoint_path, "m.ckpt.h5"); /* derived from model.path */
    if (parse_ok("data: {path: d.h5}\nmodel: {path: m.h5, hidden: [32]}\ntrain:\n",
                 NULL, 0, JOB_PURPOSE_TRAIN, &j, "train: alone"))
        check_same(&j, &x, "train: alone");

    /* rows forms */
    struct {
        const char *text;
        int64_t a, b;
    } rows[] = {
        {"data: {rows: \"0:1000\"}", 0, 1000}, {"data: {rows: \":500\"}", 0, 500},
        {"data: {rows: \"100:\"}", 100, -1},   {"data: {rows: \":\"}", 0, -1},
        {"data: {rows: 250}", 0, 250},         {"data: {rows: '7:8'}", 7, 8},
        {"data:\n  rows: 3:9\n", 3, 9},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (parse_ok(rows[i].text, NULL, 0, JOB_PURPOSE_ANY, &j, rows[i].text))
            CHECK(j.row_start == rows[i].a && j.row_end == rows[i].b,
                  "%s: rows %lld:%lld", rows[i].text, (long long)j.row_start,
                  (long long)j.row_end);

    /* Scalar spellings that are accepted. */
    if (parse_ok("output: {overwrite: True}\nrun: {progress_interval: 2, seed: "
                 "18446744073709551615}\ntrain: {lr: .5e1, weight_decay: 1E-3}\n"
                 "methods: [{name: a, kind: saliency, target: 0}]",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "spellings")) {
        CHECK(j.overwrite == 1, "True is true");
        CHECK(j.progress_interval == 2.0, "an integer is a number");
        CHECK(j.seed == UINT64_MAX, "seed takes 64 bits");
        CHECK(j.lr == 5.0 && j.weight_decay == 1e-3, "float spellings");
        CHECK(j.methods[0].target == JOB_TARGET_CLASS && j.methods[0].target_class == 0,
              "target 0 is class 0");
    }
    /* Enum and string values may be quoted. */
    if (parse_ok("data: {split: \"7\"}\nrun: {scheduler: \"static\"}\n"
                 "methods: [{name: \"a\", kind: 'saliency', target: \"label\"}]",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "quoted enums")) {
        CHECK(!strcmp(j.data_split, "7"), "quoted split");
        CHECK(j.methods[0].target == JOB_TARGET_LABEL, "quoted target label");
    }
    /* A plain number is a fine string. */
    if (parse_ok("data: {split: 2024}", NULL, 0, JOB_PURPOSE_ANY, &j, "number string"))
        CHECK(!strcmp(j.data_split, "2024"), "split 2024, got %s", j.data_split);
}

/* ------------------------------------------------------------ overrides */

static const char *SET_JOB =
    "data:\n"
    "  path: d.h5\n"
    "model:\n"
    "  path: m.h5\n"
    "methods:\n"
    "  - name: ig\n"
    "    kind: integrated_gradients\n"
    "  - name: sal\n"
    "    kind: saliency\n"
    "run:\n"
    "  seed: 3\n"
    "output:\n"
    "  path: o.h5\n";

static void test_overrides(void) {
    job j;
    const char *s1[] = {
        "methods.0.n_steps=64",          /* list index */
        "methods.sal.abs=false",         /* method name */
        "methods.ig.quadrature=riemann_left",
        "methods.ig.target=label",
        "train.epochs=3",                /* creates the section */
        "run.block_rows=32",             /* creates a key */
        "run.seed=4", "run.seed=5",      /* the last one wins */
        "model.hidden=[256, 128]",       /* flow list */
        "model.hidden.1=64",             /* index into a plain list */
        "output.overwrite=true",         /* boolean */
        "run.progress_interval=0.25",    /* number */
        "data.path=other data.h5",       /* string with a space */
        "data.rows=10:20",               /* a:b as a plain scalar */
        "train.eval_split=\"\"",         /* empty string */
        "output={path: x.h5, compression: 9}", /* a whole section */
    };
    if (parse_ok(SET_JOB, s1, (int)(sizeof s1 / sizeof s1[0]), JOB_PURPOSE_RUN, &j,
                 "overrides")) {
        CHECK(j.methods[0].n_steps == 64, "by index: n_steps %d", j.methods[0].n_steps);
        CHECK(j.methods[1].abs_value == 0, "by name: abs");
        CHECK(j.methods[0].quadrature == JOB_QUAD_RIEMANN_LEFT, "enum");
        CHECK(j.methods[0].target == JOB_TARGET_LABEL, "target label");
        CHECK(j.has_train && j.epochs == 3 && j.batch_size == 128, "created train");
        CHECK(j.block_rows == 32, "created key");
        CHECK(j.seed == 5, "last --set wins: %llu", (unsigned long long)j.seed);
        CHECK(j.n_hidden == 2 && j.hidden[0] == 256 && j.hidden[1] == 64, "hidden");
        CHECK(j.overwrite == 0, "output replaced wholesale: overwrite back to default");
        CHECK(j.progress_interval == 0.25, "number");
        CHECK(!strcmp(j.data_path, "other data.h5"), "string: %s", j.data_path);
        CHECK(j.row_start == 10 && j.row_end == 20, "rows");
        CHECK(j.eval_split[0] == '\0', "empty eval_split");
        CHECK(!strcmp(j.output_path, "x.h5") && j.compression == 9, "whole section");
    }

    /* Replace a method, append one, fill a null section. */
    const char *s2[] = {
        "methods.1={name: ixg, kind: input_x_gradient}",
        "methods.2={name: new, kind: saliency, abs: false}",
        "methods.new.target=4",
        "train.lr=0.5",
    };
    const char *text2 = "data: {path: d.h5}\nmodel: {path: m.h5}\n"
                        "methods: [{name: ig, kind: integrated_gradients}, "
                        "{name: sal, kind: saliency}]\n"
                        "output: {path: o.h5}\ntrain:\n";
    if (parse_ok(text2, s2, 4, JOB_PURPOSE_RUN, &j, "method overrides")) {
        CHECK(j.n_methods == 3, "n_methods %d", j.n_methods);
        CHECK(!strcmp(j.methods[1].name, "ixg") &&
                  j.methods[1].kind == JOB_METHOD_INPUT_X_GRADIENT,
              "replaced method");
        CHECK(!strcmp(j.methods[2].name, "new") && j.methods[2].abs_value == 0 &&
                  j.methods[2].target == JOB_TARGET_CLASS &&
                  j.methods[2].target_class == 4,
              "appended method");
        CHECK(j.has_train && j.lr == 0.5, "null section filled");
    }

    /* Overrides on an empty job can make a complete one. */
    const char *s3[] = {"data.path=d.h5", "model.path=m.h5",
                        "methods=[{name: a, kind: saliency}]", "output.path=o.h5"};
    if (parse_ok("", s3, 4, JOB_PURPOSE_RUN, &j, "job from overrides"))
        CHECK(j.n_methods == 1 && !strcmp(j.output_path, "o.h5"), "job from overrides");

    /* Errors: the exact --set in the message, never a file line. */
    struct {
        const char *set, *want;
    } bad[] = {
        {"methods.ig2.n_steps=5",
         "--set methods.ig2.n_steps=5: no method named 'ig2' (methods: ig, sal)"},
        {"methods.5.n_steps=5", "--set methods.5.n_steps=5: methods has no entry 5 "
                                "(it has 2)"},
        {"methods.2.n_steps=5", "methods has no entry 2"},
        {"noequals", "--set noequals: expected section.key=value"},
        {"=5", "--set =5: expected section.key=value"},
        {"run..seed=1", "--set run..seed=1: empty key in the path"},
        {"data.path.x=1", "--set data.path.x=1: data.path is a single value, it has "
                          "no 'x'"},
        {"run.block_rows=[1,", "--set run.block_rows=[1,: cannot parse the value"},
        {"run.block_rows=*a", "--set run.block_rows=*a: "},
        {"methods.0.n_steps=fifty",
         "--set methods.0.n_steps=fifty: methods[0].n_steps: expected an integer "
         "in 1..100000, got 'fifty'"},
        {"methods.ig.n_steps=\"5\"", "--set methods.ig.n_steps=\"5\": "
                                     "methods[0].n_steps: expected an integer"},
        {"data.pathh=x", "--set data.pathh=x: data.pathh: unknown key (known keys "
                         "in data: path, split, rows)"},
        {"methods.sal.n_steps=5",
         "--set methods.sal.n_steps=5: methods[1].n_steps: not a field of kind "
         "saliency (fields: name, kind, target, abs, noise, noise_samples, noise_sigma)"},
        {"bogus.x=1", "--set bogus.x=1: bogus: unknown key (known top-level keys: "
                      "data, model, methods, metrics, run, train, output)"},
        {"run.seed=-1", "--set run.seed=-1: run.seed: expected an integer >= 0, "
                        "got '-1'"},
        {"methods.1={kind: saliency}",
         "--set methods.1={kind: saliency}: methods[1].name: required field is "
         "missing"},
        {"train.eval_split=", "--set train.eval_split=: train.eval_split: expected a "
                              "string, got an empty value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_err e = {0};
        const char *sets[] = {"run.seed=9", bad[i].set};
        int rc = job_parse(SET_JOB, "test.yaml", sets, 2, JOB_PURPOSE_RUN, &j, &e);
        CHECK(rc == AT_EUSER && e.code == AT_EUSER, "--set %s: rc %d", bad[i].set, rc);
        CHECK(strstr(e.msg, bad[i].want) != NULL, "--set %s:\n  got  %s\n  want %s",
              bad[i].set, e.msg, bad[i].want);
        CHECK(strstr(e.msg, "test.yaml") == NULL, "--set %s: message names the file: %s",
              bad[i].set, e.msg);
        CHECK(is_zero(&j, sizeof j), "--set %s: job not zeroed after an error",
              bad[i].set);
    }
    /* A name clash between a --set and the file names both. */
    {
        at_err e = {0};
        const char *sets[] = {"methods.0.name=sal"};
        int rc = job_parse(SET_JOB, "test.yaml", sets, 1, JOB_PURPOSE_RUN, &j, &e);
        CHECK(rc == AT_EUSER && !strcmp(e.msg, "test.yaml:8: methods[1].name: "
                                               "duplicate method name 'sal' (also "
                                               "methods[0], from --set "
                                               "methods.0.name=sal)"),
              "name clash with a --set: %s", e.msg);
    }
    /* A file error is still reported with its line when a --set is given. */
    {
        at_err e = {0};
        const char *sets[] = {"run.seed=1"};
        int rc = job_parse("run:\n  block_rows: 0\n", "test.yaml", sets, 1,
                           JOB_PURPOSE_ANY, &j, &e);
        CHECK(rc == AT_EUSER && strstr(e.msg, "test.yaml:2: run.block_rows:"),
              "file line with overrides: %s", e.msg);
    }
}

/* ------------------------------------------------------------ round trip */

static void round_trip(const char *text, const char *const *sets, int n_sets,
                       job_purpose purpose, const char *what) {
    job a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (!parse_ok(text, sets, n_sets, purpose, &a, what)) return;
    char *y1 = job_emit_yaml(&a);
    at_err e = {0};
    int rc = job_parse(y1, "test.yaml", NULL, 0, purpose, &b, &e);
    CHECK(rc == 0, "%s: emitted job does not parse: %s\n%s", what, e.msg, y1);
    if (rc == 0) {
        check_same(&b, &a, what);
        char *y2 = job_emit_yaml(&b);
        CHECK(!strcmp(y1, y2), "%s: emit is not stable:\n%s\n%s", what, y1, y2);
        free(y2);
    }
    free(y1);
}

static void test_round_trip(void) {
    round_trip(FULL_JOB, NULL, 0, JOB_PURPOSE_RUN, "round trip: full");
    round_trip(MIN_RUN_JOB, NULL, 0, JOB_PURPOSE_RUN, "round trip: defaults");
    round_trip("", NULL, 0, JOB_PURPOSE_ANY, "round trip: empty");
    const char *sets[] = {"train.momentum=0.3", "run.progress_interval=1e-300",
                          "methods.ig.baseline=constant",
                          "methods.ig.baseline_value=-0.0", "run.seed=18446744073709551615"};
    round_trip(SET_JOB, sets, 5, JOB_PURPOSE_RUN, "round trip: overrides");
    round_trip("data:\n"
               "  path: \"we\\\"ird \\\\ pa\\th\\n/d\\u00f6nn\\u00e9es/\\x01.h5\"\n"
               "  rows: \"5:\"\n"
               "  split: 'it''s'\n"
               "model: {path: 'm#1.h5', hidden: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
               "12, 13, 14, 15, 1000000]}\n"
               "methods:\n"
               "  - {name: A-z_09, kind: integrated_gradients, target: 2147483647,\n"
               "     baseline: constant, baseline_value: 3.14159265358979,\n"
               "     quadrature: riemann_middle, n_steps: 100000}\n"
               "train: {lr: 0.1, momentum: 0.999999, weight_decay: 1e300}\n",
               NULL, 0, JOB_PURPOSE_TRAIN, "round trip: odd strings and numbers");

    /* Numbers come back bit for bit. */
    const char *nums[] = {"10", "12000", "1e15", "1e16", "0.1", "1e-4", "1.5e-5",
                          "-0.0", "5e-324", "0.30000000000000004",
                          "1.7976931348623157e308", "2.2250738585072014e-308",
                          "-123456789.125"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "methods: [{name: m, kind: integrated_gradients, baseline: "
                 "constant, baseline_value: %s}]",
                 nums[i]);
        round_trip(text, NULL, 0, JOB_PURPOSE_ANY, nums[i]);
    }

    /* Every method field value is emitted in a form that reads back. */
    const char *quads[] = {"riemann_left", "riemann_right", "riemann_middle",
                           "riemann_trapezoid", "gauss_legendre"};
    for (int q = 0; q < 5; q++) {
        char text[256];
        snprintf(text, sizeof text,
                 "methods: [{name: m, kind: integrated_gradients, quadrature: %s, "
                 "baseline: mean, baseline_split: val}]",
                 quads[q]);
        round_trip(text, NULL, 0, JOB_PURPOSE_ANY, quads[q]);
    }
}

/* -------------------------------------------------------- bad job texts */

typedef struct {
    const char *text;
    job_purpose purpose;
    const char *want; /* substring of the message */
    int line;         /* > 0: the message starts "bad.yaml:LINE:"; 0: "bad.yaml: " */
} bad_case;

static void test_bad_texts(void) {
    static char long_path[2048], long_name[256], many_methods[4096],
        deep[256];
    strcpy(long_path, "data:\n  path: ");
    memset(long_path + strlen(long_path), 'p', 1024);
    strcpy(long_name, "methods:\n  - kind: saliency\n    name: ");
    memset(long_name + strlen(long_name), 'n', 64);
    strcpy(many_methods, "methods:\n");
    for (int i = 0; i < 33; i++)
        snprintf(many_methods + strlen(many_methods),
                 sizeof many_methods - strlen(many_methods),
                 "  - {name: m%d, kind: saliency}\n", i);
    strcpy(deep, "x: ");
    for (int i = 0; i < 40; i++) strcat(deep, "[");

    const job_purpose ANY = JOB_PURPOSE_ANY, RUN = JOB_PURPOSE_RUN,
                      TRAIN = JOB_PURPOSE_TRAIN;
    const bad_case cases[] = {
        /* YAML syntax */
        {"data:\n  path: [a\n", ANY, "YAML syntax error: did not find expected ',' or ']'",
         -3},
        {"data:\n  path: a\n bad\n", ANY, "YAML syntax error", -3},
        {"run:\n\tseed: 1\n", ANY, "YAML syntax error: found character that cannot "
                                   "start any token", -2},
        {"data: {path: \"a\xff\"}\n", ANY, "YAML syntax error: invalid", -1},
        {"data: &x {path: a}\nmodel: *x\n", ANY,
         "YAML aliases (*name) are not supported", 2},
        {"data: {}\n---\nrun: {}\n", ANY, "only one YAML document is allowed", 2},
        {"? [a, b]\n: c\n", ANY, "mapping keys must be plain text", 1},
        {deep, ANY, "YAML nested deeper than 32 levels", 1},
        /* structure */
        {"- data\n- model\n", ANY, "the top level must be a mapping", 1},
        {"just text\n", ANY, "the top level must be a mapping of sections "
                             "(data:, model:, methods:, ...), got 'just text'", 1},
        {"data: {}\ndataa:\n  path: x\n", ANY,
         "dataa: unknown key (known top-level keys: data, model, methods, metrics, run, "
         "train, output)", 2},
        {"data:\n  split: a\n  pathh: x\n", ANY,
         "data.pathh: unknown key (known keys in data: path, split, rows)", 3},
        {"run:\n  seed: 1\n  seed: 2\n", ANY,
         "run.seed: duplicate key (first given at line 2)", 3},
        {"run: {}\nrun: {}\n", ANY, "run: duplicate key (first given at line 1)", 2},
        {"data: x.h5\n", ANY, "data: expected a mapping of fields, got 'x.h5'", 1},
        {"model:\n  - path\n", ANY, "model: expected a mapping of fields, got a list",
         2},
        {"methods:\n  name: a\n", ANY,
         "methods: expected a list of 1 to 32 methods, got a mapping", 2},
        {"methods: []\n", ANY, "methods: expected a list of 1 to 32 methods, got 0 "
                               "entries", 1},
        {many_methods, ANY, "got 33 entries", 2},
        {"methods:\n  - saliency\n", ANY,
         "methods[0]: expected a mapping with name and kind, got 'saliency'", 2},
        /* types and ranges */
        {"run: {max_wall_time: 1h30m}\n", ANY,
         "run.max_wall_time: expected a duration >= 0", 1},
        {"run: {max_wall_time: \"10:75\"}\n", ANY, "run.max_wall_time: expected a duration", 1},
        {"run: {max_wall_time: -5}\n", ANY, "run.max_wall_time: expected a duration", 1},
        {"run: {max_wall_time: \"1-02:03\"}\n", ANY, "run.max_wall_time: expected", 1},
        {"run: {scheduler: guided}\n", ANY,
         "run.scheduler: expected one of static, dynamic, got 'guided'", 1},
        {"run: {checkpoint_interval: -1}\n", ANY, "run.checkpoint_interval: expected", 1},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n    n_steps: fifty\n",
         ANY, "methods[0].n_steps: expected an integer in 1..100000, got 'fifty'", 4},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: 1.5}]", ANY,
         "n_steps: expected an integer in 1..100000, got '1.5'", 1},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: \"5\"}]", ANY,
         "n_steps: expected an integer in 1..100000, got \"5\" (quoted, so a string)",
         1},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: true}]", ANY,
         "got 'true'", 1},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: 0}]", ANY,
         "got '0'", 1},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: 100001}]", ANY,
         "got '100001'", 1},
        {"methods: [{name: a, kind: integrated_gradients, n_steps: 050}]", ANY,
         "got '050'", 1},
        {"run:\n  block_rows: 0\n", ANY,
         "run.block_rows: expected an integer in 1..1000000, got '0'", 2},
        {"run:\n  blas_threads: 257\n", ANY, "run.blas_threads: expected an integer "
                                             "in 1..256", 2},
        {"run:\n  step_block: -1\n", ANY, "run.step_block: expected an integer >= 0, "
                                          "got '-1'", 2},
        {"run:\n  step_block: 3000000000\n", ANY, "got '3000000000' (too large)", 2},
        {"run:\n  seed: 99999999999999999999\n", ANY,
         "run.seed: expected an integer >= 0, got '99999999999999999999' (too large)",
         2},
        {"run:\n  seed: 0x10\n", ANY, "run.seed: expected an integer >= 0, got '0x10'",
         2},
        {"run:\n  progress_interval: 0\n", ANY,
         "run.progress_interval: expected a number > 0, got '0'", 2},
        {"run:\n  progress_interval: .inf\n", ANY, "expected a number > 0, got '.inf'",
         2},
        {"run:\n  progress_interval: 1e999\n", ANY, "got '1e999' (not finite)", 2},
        {"run:\n  progress_interval: nan\n", ANY, "got 'nan'", 2},
        {"run:\n  progress_interval: \"5\"\n", ANY, "expected a number > 0, got \"5\"",
         2},
        {"train:\n  lr: abc\n", ANY, "train.lr: expected a number > 0, got 'abc'", 2},
        {"train:\n  momentum: 1.0\n", ANY,
         "train.momentum: expected a number in [0, 1), got '1.0'", 2},
        {"train:\n  weight_decay: -1e-3\n", ANY, "expected a number >= 0", 2},
        {"train:\n  epochs: 0\n", ANY, "train.epochs: expected an integer in "
                                       "1..100000", 2},
        {"train:\n  batch_size: [1]\n", ANY, "train.batch_size: expected an integer "
                                             "in 1..1000000, got a list", 2},
        {"train:\n  eval_split: ~\n", ANY,
         "train.eval_split: expected a string, got an empty value (write \"\" for an "
         "empty string)", 2},
        {"output:\n  overwrite: yes\n", ANY,
         "output.overwrite: expected true or false, got 'yes'", 2},
        {"output:\n  overwrite: \"true\"\n", ANY, "expected true or false", 2},
        {"output:\n  compression: 10\n", ANY,
         "output.compression: expected an integer in 0..9, got '10'", 2},
        {"output:\n  path:\n", ANY,
         "output.path: expected a non-empty string, got an empty value", 2},
        {"data:\n  split: \"\"\n", ANY, "data.split: expected a non-empty string, got "
                                        "\"\"", 2},
        {"data:\n  path: [a]\n", ANY, "data.path: expected a non-empty string, got a "
                                      "list", 2},
        {"data:\n  path: \"a\\0b\"\n", ANY, "got text with a NUL character", 2},
        {long_path, ANY, "data.path: expected a non-empty string of at most 1023 "
                         "bytes, got 1024 bytes", 2},
        /* rows */
        {"data:\n  rows: \"5:5\"\n", ANY, "data.rows: expected \"start:end\"", 2},
        {"data:\n  rows: \"9:3\"\n", ANY, "got \"9:3\"", 2},
        {"data:\n  rows: \"a:b\"\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: \"-1:5\"\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: \"1:2:3\"\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: \"100\"\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: 0\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: -5\n", ANY, "data.rows: expected", 2},
        {"data:\n  rows: \":0\"\n", ANY, "data.rows: expected", 2},
        /* layers, input_shape */
        {"model:\n  layers:\n    - {kind: relu}\n    - {kind: conv2d, name: c, "
         "out_channels: 4}\n", ANY,
         "bad.yaml:4: model.layers[1].kernel: layer 'c' (conv2d): required key is missing",
         4},
        {"model:\n  layers:\n    - {kind: linear, out_features: 4, stride: 2}\n", ANY,
         "model.layers[0].stride: layer 'layers.0' (linear): not a key of this kind (keys of "
         "linear: kind, name, input, out_features, bias)", 3},
        {"model:\n  layers:\n    - {kind: lstm}\n", ANY,
         "model.layers[0].kind: expected one of linear, relu,", 3},
        {"model:\n  layers:\n    - {kind: lstm}\n", ANY, "seq_mean, residual, got 'lstm'", 3},
        {"model:\n  layers:\n    - kind: residual\n      name: b\n      body:\n"
         "        - {kind: relu}\n        - {kind: add, inputs: [b.body.0]}\n", ANY,
         "bad.yaml:7: model.layers[0].body[1].inputs: layer 'b.body.1' (add): expected a "
         "list of 2 layer names, got a list of 1", 7},
        {"model:\n  layers:\n    - {kind: relu, name: a}\n    - {kind: tanh, name: a}\n",
         ANY, "model.layers[1].name: layer 'a' (tanh): duplicate layer name (also layer #0, "
         "model.layers[0], line 3)", 4},
        {"model:\n  layers:\n    - {kind: relu, input: b}\n    - {kind: tanh, name: b}\n",
         ANY, "model.layers[0].input: layer 'layers.0' (relu): 'b' is layer #1, which "
         "comes later", 3},
        {"model:\n  layers: []\n", ANY,
         "model.layers: expected a list of 1 to 512 layers, got an empty list", 2},
        {"model:\n  layers: {kind: relu}\n", ANY,
         "model.layers: expected a list of 1 to 512 layers, got a mapping", 2},
        {"model:\n  layers: [{kind: relu}]\n  hidden: [4]\n", ANY,
         "model.hidden: give model.layers or model.hidden (the MLP shorthand), not both", 3},
        {"model:\n  hidden: [4]\n  layers: [{kind: relu}]\n", ANY,
         "model.layers: give model.layers or model.hidden", 3},
        {"model:\n  input_shape: []\n", ANY,
         "model.input_shape: expected a list of 1 to 3 integers >= 1 (e.g. [1, 28, 28]), "
         "got 0 entries", 2},
        {"model:\n  input_shape: [1, 2, 3, 4]\n", ANY, "got 4 entries", 2},
        {"model:\n  input_shape: 784\n", ANY, "model.input_shape: expected a list", 2},
        {"model:\n  input_shape: [1, 0]\n", ANY,
         "model.input_shape[1]: expected an integer >= 1, got '0'", 2},
        {"model:\n  input_shape: [65536, 65536]\n", ANY,
         "model.input_shape: 4294967296 elements per example, at most 2147483647", 2},
        /* train settings that belong to another optimizer, schedule or loss */
        {"train:\n  optimizer: adam\n  momentum: 0.9\n", ANY,
         "train.momentum: only used with optimizer: sgd (optimizer is adam)", 3},
        {"train:\n  nesterov: true\n  optimizer: adamw\n", ANY,
         "train.nesterov: only used with optimizer: sgd (optimizer is adamw)", 2},
        {"train:\n  betas: [0.9, 0.99]\n", ANY,
         "train.betas: only used with optimizer: adam or adamw (optimizer is sgd)", 2},
        {"train:\n  eps: 1e-6\n", ANY, "train.eps: only used with optimizer: adam", 2},
        {"train:\n  step_size: 3\n", ANY,
         "train.step_size: only used with schedule: step (schedule is constant)", 2},
        {"train:\n  schedule: cosine\n  gamma: 0.5\n", ANY,
         "train.gamma: only used with schedule: step (schedule is cosine)", 3},
        {"train:\n  schedule: step\n  min_lr: 0.001\n", ANY,
         "train.min_lr: only used with schedule: cosine (schedule is step)", 3},
        {"train:\n  loss: mse\n  label_smoothing: 0.1\n", ANY,
         "train.label_smoothing: only used with loss: cross_entropy (loss is mse)", 3},
        {"train:\n  momentum: 0\n  nesterov: true\n", ANY,
         "train.nesterov: needs momentum > 0 (momentum is 0)", 3},
        {"train:\n  optimizer: rmsprop\n", ANY,
         "train.optimizer: expected one of sgd, adam, adamw, got 'rmsprop'", 2},
        {"train:\n  schedule: linear\n", ANY,
         "train.schedule: expected one of constant, step, cosine, got 'linear'", 2},
        {"train:\n  loss: margin\n", ANY,
         "train.loss: expected one of cross_entropy, mse, got 'margin'", 2},
        {"train:\n  optimizer: adam\n  betas: [0.9]\n", ANY,
         "train.betas: expected a list of two numbers in [0, 1) (e.g. [0.9, 0.999]), got "
         "1 entries", 3},
        {"train:\n  optimizer: adam\n  betas: [0.9, 1]\n", ANY,
         "train.betas: expected a list of two numbers in [0, 1)", 3},
        {"train:\n  optimizer: adam\n  betas: [0.9, \"0.9\"]\n", ANY,
         "got \"0.9\" (quoted, so a string)", 3},
        {"train:\n  optimizer: adam\n  eps: 0\n", ANY, "train.eps: expected a number > 0",
         3},
        {"train:\n  schedule: step\n  step_size: 0\n", ANY,
         "train.step_size: expected an integer in 1..100000, got '0'", 3},
        {"train:\n  label_smoothing: 1\n", ANY,
         "train.label_smoothing: expected a number in [0, 1), got '1'", 2},
        {"train:\n  checkpoint_every: -1\n", ANY,
         "train.checkpoint_every: expected an integer in 0..100000", 2},
        /* hidden */
        {"model:\n  hidden: []\n", ANY,
         "model.hidden: expected a list of 1 to 16 layer widths, got 0 entries", 2},
        {"model:\n  hidden: 256\n", ANY, "model.hidden: expected a list of 1 to 16 "
                                         "layer widths, got '256'", 2},
        {"model:\n  hidden: [256,\n    0]\n", ANY,
         "model.hidden[1]: expected an integer in 1..1000000, got '0'", 3},
        {"model:\n  hidden: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n", ANY,
         "got 17 entries", 2},
        /* methods */
        {"methods:\n  - name: a\n    target: label\n", ANY,
         "methods[0].kind: required field is missing", 2},
        {"methods:\n  - {name: a, kind: saliency}\n  - kind: saliency\n", ANY,
         "methods[1].name: required field is missing", 3},
        {"methods:\n  - name: a\n    kind: smoothgrad\n", ANY,
         "methods[0].kind: expected one of saliency, input_x_gradient, "
         "integrated_gradients, expected_gradients, gradient_shap, deeplift, lrp, "
         "guided_backprop, deconvolution, grad_cam, occlusion, feature_ablation, "
         "feature_permutation, shapley_sampling, kernel_shap, lime, sobol, rise, got "
         "'smoothgrad'", 3},
        {"methods:\n  - name: a b\n    kind: saliency\n", ANY,
         "methods[0].name: expected a name of letters, digits, '_' and '-', got 'a b'",
         2},
        {long_name, ANY, "methods[0].name: expected a name of letters, digits, '_' "
                         "and '-' of at most 63 bytes, got 64 bytes", 3},
        {"methods:\n  - name: ig\n    kind: saliency\n  - name: ig\n"
         "    kind: input_x_gradient\n", ANY,
         "methods[1].name: duplicate method name 'ig' (also methods[0] at line 2)", 4},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n  - name: s\n"
         "    kind: saliency\n    n_steps: 5\n", ANY,
         "methods[1].n_steps: not a field of kind saliency (fields: name, kind, "
         "target, abs, noise, noise_samples, noise_sigma)", 6},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n    abs: true\n", ANY,
         "methods[0].abs: not a field of kind integrated_gradients (fields: name, kind, "
         "target, n_steps, quadrature, baseline, baseline_value, baseline_split, noise, "
         "noise_samples, noise_sigma)", 4},
        {"methods:\n  - name: a\n    kind: input_x_gradient\n    quadrature: "
         "riemann_left\n", ANY,
         "methods[0].quadrature: not a field of kind input_x_gradient (fields: name, "
         "kind, target, noise, noise_samples, noise_sigma)", 4},
        {"methods:\n  - name: a\n    nsteps: 5\n    kind: saliency\n", ANY,
         "methods[0].nsteps: unknown key (known keys in methods[]: name, kind, target, "
         "n_steps, quadrature, baseline, baseline_value, baseline_split, abs, n_samples, "
         "reference_split, n_references, stdev, noise, noise_samples, noise_sigma, rule, "
         "epsilon, gamma, alpha, beta, layer, window, stride, patch, feature_mask, "
         "distance, kernel_width, ridge, grid, keep_prob)", 3},
        {"methods:\n  - name: a\n    name: b\n    kind: saliency\n", ANY,
         "methods[0].name: duplicate key (first given at line 2)", 3},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n"
         "    quadrature: riemann_trapezoid\n    n_steps: 1\n", ANY,
         "methods[0].n_steps: riemann_trapezoid needs n_steps >= 2, got 1", 5},
        {"methods:\n  - name: a\n    kind: saliency\n    noise_samples: 5\n", ANY,
         "methods[0].noise_samples: only used with noise other than none", 4},
        {"methods:\n  - {name: a, kind: lrp, gamma: 0.5}\n", ANY,
         "methods[0].gamma: only used with rule: gamma", 2},
        {"methods:\n  - {name: a, kind: lrp, rule: alpha_beta,\n     alpha: 3}\n", ANY,
         "methods[0].alpha: alpha - beta must be 1 (relevance is conserved), got alpha 3, "
         "beta 1", 3},
        {"methods:\n  - {name: a, kind: grad_cam}\n", ANY,
         "methods[0].layer: required field is missing", 2},
        {"methods:\n  - {name: a, kind: rise,\n     keep_prob: 1}\n", ANY,
         "methods[0].keep_prob: expected a number in (0, 1), got 1", 3},
        {"methods:\n  - {name: a, kind: kernel_shap, patch: [4, 4],\n     feature_mask: /m}\n",
         ANY, "methods[0].feature_mask: give patch or feature_mask, not both", 3},
        {"methods:\n  - {name: a, kind: occlusion, window: [2, 2],\n     stride: [1]}\n", ANY,
         "methods[0].stride: has 1 dims but window has 2", 3},
        {"methods:\n  - {name: a, kind: occlusion, window: [0, 2]}\n", ANY,
         "methods[0].window[0]: expected an integer in 1..1048576, got '0'", 2},
        {"methods:\n  - {name: a, kind: occlusion, window: [1, 2, 3, 4]}\n", ANY,
         "methods[0].window: expected a list of 1 to 3 integers >= 1 (e.g. [4, 4]), got 4 "
         "entries", 2},
        {"methods:\n  - {name: a, kind: saliency, noise: smooth}\n", ANY,
         "methods[0].noise: expected one of none, smoothgrad, smoothgrad_sq, vargrad, got "
         "'smooth'", 2},
        {"metrics: {curve_steps: 0}\n", ANY,
         "metrics.curve_steps: expected an integer in 1..100000, got '0'", 1},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n"
         "    quadrature: riemann_simpson\n", ANY,
         "methods[0].quadrature: expected one of riemann_left, riemann_right, "
         "riemann_middle, riemann_trapezoid, gauss_legendre, got 'riemann_simpson'", 4},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n"
         "    baseline_value: 0.5\n", ANY,
         "methods[0].baseline_value: only used with baseline: constant (baseline is "
         "zero)", 4},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n    baseline: "
         "constant\n    baseline_split: train\n", ANY,
         "methods[0].baseline_split: only used with baseline: mean (baseline is "
         "constant)", 5},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n    baseline: "
         "random\n", ANY, "methods[0].baseline: expected one of zero, constant, mean",
         4},
        {"methods:\n  - name: a\n    kind: integrated_gradients\n    baseline: "
         "constant\n    baseline_value: x\n", ANY,
         "methods[0].baseline_value: expected a number, got 'x'", 5},
        {"methods:\n  - name: a\n    kind: saliency\n    target: -1\n", ANY,
         "methods[0].target: expected predicted, label or a class index >= 0, got "
         "'-1'", 4},
        {"methods:\n  - name: a\n    kind: saliency\n    target: argmax\n", ANY,
         "got 'argmax'", 4},
        {"methods:\n  - name: a\n    kind: saliency\n    target: 99999999999\n", ANY,
         "got '99999999999' (too large)", 4},
        {"methods:\n  - name: a\n    kind: saliency\n    abs: 1\n", ANY,
         "methods[0].abs: expected true or false, got '1'", 4},
        /* required by purpose */
        {"model: {path: m.h5}\nmethods: [{name: a, kind: saliency}]\noutput: {path: "
         "o.h5}\n", RUN, "bad.yaml: data.path: required field is missing", 0},
        {"data:\n  split: test\nmodel: {path: m.h5}\nmethods: [{name: a, kind: "
         "saliency}]\noutput: {path: o.h5}\n", RUN,
         "bad.yaml: data.path: required field is missing", 0},
        {"data: {path: d.h5}\nmethods: [{name: a, kind: saliency}]\noutput: {path: "
         "o.h5}\n", RUN, "bad.yaml: model.path: required field is missing", 0},
        {"data: {path: d.h5}\nmodel: {path: m.h5}\noutput: {path: o.h5}\n", RUN,
         "bad.yaml: methods: required section is missing", 0},
        {"data: {path: d.h5}\nmodel: {path: m.h5}\nmethods: [{name: a, kind: "
         "saliency}]\n", RUN, "bad.yaml: output.path: required field is missing", 0},
        {"data: {path: d.h5}\nmodel: {path: m.h5}\ntrain: {}\n", TRAIN,
         "bad.yaml: model.layers: required field is missing (or model.hidden, the MLP "
         "shorthand)", 0},
        {"data: {path: d.h5}\nmodel: {path: m.h5, hidden: [8]}\n", TRAIN,
         "bad.yaml: train: required section is missing", 0},
        /* a present section is still checked when the purpose ignores it */
        {"data: {path: d.h5}\nmodel: {path: m.h5, hidden: [8]}\ntrain: {}\n"
         "methods:\n  - {name: a, kind: saliency, n_steps: 3}\n", TRAIN,
         "methods[0].n_steps: not a field of kind saliency", 5},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *bc = &cases[i];
        at_err e = {0};
        job j;
        int rc = job_parse(bc->text, "bad.yaml", NULL, 0, bc->purpose, &j, &e);
        CHECK(rc == AT_EUSER && e.code == AT_EUSER, "case %zu: rc %d (%s)", i, rc,
              e.msg);
        CHECK(strstr(e.msg, bc->want) != NULL, "case %zu:\n  got  %s\n  want %s", i,
              e.msg, bc->want);
        /* line > 0: "bad.yaml:L: ", < 0: a syntax error "bad.yaml:L:COL: " */
        char prefix[64];
        if (bc->line > 0)
            snprintf(prefix, sizeof prefix, "bad.yaml:%d: ", bc->line);
        else if (bc->line < 0)
            snprintf(prefix, sizeof prefix, "bad.yaml:%d:", -bc->line);
        else
            snprintf(prefix, sizeof prefix, "bad.yaml: ");
        CHECK(strncmp(e.msg, prefix, strlen(prefix)) == 0,
              "case %zu: message does not start with '%s': %s", i, prefix, e.msg);
        CHECK(is_zero(&j, sizeof j), "case %zu: job not zeroed after an error", i);
    }
}

/* ------------------------------------------------------ tests/bad_jobs */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_bad_job_files(const char *dir) {
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t k = strlen(de->d_name);
        if (k < 5 || strcmp(de->d_name + k - 5, ".yaml")) continue;
        names = at_realloc(names, (n + 1) * sizeof *names, "test: names");
        names[n++] = at_strdup(de->d_name, "test: name");
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    CHECK(n >= 12, "%s: expected at least 12 bad jobs, found %zu", dir, n);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = NULL;
        at_err e = {0};
        int rc = job_read_file(path, &text, &e);
        CHECK(rc == 0, "%s: %s", path, e.msg);
        if (rc) continue;
        const char *tag = "# expect: ";
        char want[512] = "";
        if (!strncmp(text, tag, strlen(tag))) {
            size_t k = strcspn(text + strlen(tag), "\n");
            if (k >= sizeof want) k = sizeof want - 1;
            memcpy(want, text + strlen(tag), k);
            want[k] = '\0';
        }
        CHECK(want[0] != '\0', "%s: first line is not '# expect: ...'", path);
        job j;
        rc = job_parse(text, path, NULL, 0, JOB_PURPOSE_RUN, &j, &e);
        CHECK(rc == AT_EUSER, "%s: job_parse returned %d (%s)", path, rc, e.msg);
        CHECK(want[0] && strstr(e.msg, want) != NULL, "%s:\n  got  %s\n  want %s",
              path, e.msg, want);
        CHECK(strncmp(e.msg, path, strlen(path)) == 0, "%s: message does not start "
              "with the file name: %s", path, e.msg);
        free(text);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* ----------------------------------------------------------- read_file */

static void test_read_file(void) {
    char *text = (char *)1;
    at_err e = {0};
    int rc = job_read_file("no/such/job.yaml", &text, &e);
    CHECK(rc == AT_EUSER && text == NULL, "missing file: rc %d", rc);
    CHECK(!strcmp(e.msg, "no/such/job.yaml: cannot read job file: No such file or "
                         "directory"),
          "missing file message: %s", e.msg);

    at_err_clear(&e);
    rc = job_read_file(".", &text, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, ".: cannot read job file: "),
          "directory: rc %d: %s", rc, e.msg);

    const char *tmp = "test_job_tmp.yaml";
    FILE *f = fopen(tmp, "wb");
    CHECK(f != NULL, "cannot write %s", tmp);
    if (!f) return;
    fputs(MIN_RUN_JOB, f);
    fclose(f);
    at_err_clear(&e);
    rc = job_read_file(tmp, &text, &e);
    CHECK(rc == 0 && text && !strcmp(text, MIN_RUN_JOB), "read back: %s", e.msg);
    free(text);

    f = fopen(tmp, "wb");
    fwrite("a: b\0c\n", 1, 7, f);
    fclose(f);
    at_err_clear(&e);
    rc = job_read_file(tmp, &text, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, "contains a NUL byte"), "NUL: %s", e.msg);
    remove(tmp);
}

/* -------------------------------------------------------- schema, names */

static void test_schema(void) {
    int n = 0;
    const job_field_doc *f = job_schema_fields(&n);
    CHECK(n > 30, "schema has %d fields", n);
    const char *types[] = {"string", "integer", "number", "boolean", "enum", "list",
                           "mapping", "string or integer", "enum or integer", "duration"};
    for (int i = 0; i < n; i++) {
        CHECK(f[i].path && f[i].type && f[i].deflt && f[i].doc && f[i].doc[0],
              "field %d incomplete", i);
        int known = 0;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            known |= !strcmp(f[i].type, types[t]);
        CHECK(known, "%s: type '%s'", f[i].path, f[i].type);
        CHECK(!strchr(f[i].doc, '|'), "%s: doc has a '|' (breaks docs table)",
              f[i].path);
        for (int k = 0; k < i; k++)
            CHECK(strcmp(f[i].path, f[k].path), "%s twice", f[i].path);
        /* The section of a field is listed before it. */
        const char *dot = strchr(f[i].path, '.');
        if (dot) {
            size_t len = (size_t)(dot - f[i].path);
            if (len > 2 && !strncmp(dot - 2, "[]", 2)) len -= 2;
            int found = 0;
            for (int k = 0; k < i; k++)
                found |= strlen(f[k].path) == len && !strncmp(f[k].path, f[i].path, len);
            CHECK(found, "%s: its section is not listed before it", f[i].path);
        }
    }

    CHECK(!strcmp(job_method_kind_name(JOB_METHOD_INTEGRATED_GRADIENTS),
                  "integrated_gradients"), "kind name");
    CHECK(!strcmp(job_quadrature_name(JOB_QUAD_RIEMANN_TRAPEZOID),
                  "riemann_trapezoid"), "quadrature name");
    CHECK(!strcmp(job_baseline_name(JOB_BASELINE_MEAN), "mean"), "baseline name");
    CHECK(!strcmp(job_scheduler_name(JOB_SCHED_STATIC), "static"), "scheduler name");
    CHECK(!strcmp(job_quadrature_name((job_quadrature)99), "?"), "bad enum name");
    job_method m;
    memset(&m, 0, sizeof m);
    char buf[16];
    m.target = JOB_TARGET_PREDICTED;
    CHECK(!strcmp(job_target_name(&m, buf, sizeof buf), "predicted"), "target name");
    m.target = JOB_TARGET_LABEL;
    CHECK(!strcmp(job_target_name(&m, buf, sizeof buf), "label"), "target name");
    m.target = JOB_TARGET_CLASS;
    m.target_class = 12;
    CHECK(!strcmp(job_target_name(&m, buf, sizeof buf), "12"), "target class");
}

/* ------------------------------------------------ layers and training */

static const char *LAYERS_JOB =
    "data: {path: d.h5}\n"
    "model:\n"
    "  path: models/cnn.h5\n"
    "  input_shape: [1, 28, 28]\n"
    "  layers:\n"
    "    - {kind: conv2d, name: conv1, out_channels: 8, kernel: 3, padding: 1}\n"
    "    - {kind: batchnorm2d}\n"
    "    - kind: residual\n"
    "      name: res\n"
    "      body:\n"
    "        - {kind: relu}\n"
    "        - {kind: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}\n"
    "    - {kind: maxpool2d, kernel: 2}\n"
    "    - {kind: flatten}\n"
    "    - {kind: dropout, p: 0.25}\n"
    "    - {kind: linear, name: fc, out_features: 10}\n"
    "train:\n"
    "  optimizer: adamw\n"
    "  betas: [0.8, 0.99]\n"
    "  eps: 1e-6\n"
    "  weight_decay: 0.01\n"
    "  schedule: cosine\n"
    "  min_lr: 0.0001\n"
    "  loss: mse\n"
    "  checkpoint_every: 5\n";

static void test_layers_and_training(void) {
    job j;
    if (parse_ok(LAYERS_JOB, NULL, 0, JOB_PURPOSE_TRAIN, &j, "layers job")) {
        CHECK(j.n_layers == 9 && j.n_hidden == 0, "9 layers after flattening, got %d",
              j.n_layers);
        CHECK(!strcmp(j.layers[0].name, "conv1") && j.layers[0].kind == ENG_LAYER_CONV2D &&
                  j.layers[0].out_features == 8 && j.layers[0].padding[1] == 1,
              "conv1");
        CHECK(!strcmp(j.layers[2].name, "res.body.0") && !strcmp(j.layers[4].name, "res") &&
                  j.layers[4].kind == ENG_LAYER_ADD && j.layers[4].src[0] == 3 &&
                  j.layers[4].src[1] == 1,
              "residual flattened: %s %s %d %d", j.layers[2].name, j.layers[4].name,
              j.layers[4].src[0], j.layers[4].src[1]);
        CHECK(j.layers[5].stride[0] == 2 && j.layers[7].p == 0.25 &&
                  !strcmp(j.layers[8].name, "fc") && j.layers[8].bias == 1,
              "pool, dropout, fc");
        CHECK(j.input_ndim == 3 && j.input_shape[0] == 1 && j.input_shape[2] == 28,
              "input_shape");
        CHECK(j.optimizer == ENG_OPT_ADAMW && j.beta1 == 0.8 && j.beta2 == 0.99 &&
                  j.adam_eps == 1e-6 && j.weight_decay == 0.01,
              "adamw settings");
        CHECK(j.momentum == 0 && j.nesterov == 0, "sgd fields are 0 for adamw: %g",
              j.momentum);
        CHECK(j.schedule == ENG_SCHED_COSINE && j.min_lr == 0.0001 && j.step_size == 0 &&
                  j.gamma == 0,
              "cosine settings");
        CHECK(j.loss == ENG_LOSS_MSE && j.label_smoothing == 0, "mse");
        CHECK(j.checkpoint_every == 5 && !strcmp(j.checkpoint_path, "models/cnn.ckpt.h5"),
              "checkpoints: %s", j.checkpoint_path);
        char *y = job_emit_yaml(&j);
        CHECK(strstr(y, "  layers:\n    - {kind: conv2d, name: conv1, out_channels: 8, "
                        "kernel: 3, stride: 1, padding: 1, dilation: 1, bias: true}\n") &&
                  strstr(y, "    - {kind: add, name: res, inputs: [res.body.1, layers.1]}\n") &&
                  strstr(y, "  input_shape: [1, 28, 28]\n") &&
                  strstr(y, "  betas: [0.8, 0.99]\n") && !strstr(y, "momentum") &&
                  !strstr(y, "step_size") && !strstr(y, "label_smoothing") &&
                  strstr(y, "  min_lr: 0.0001\n") &&
                  strstr(y, "  checkpoints: \"models/cnn.ckpt.h5\"\n"),
              "emitted layers job:\n%s", y);
        free(y);
    }
    round_trip(LAYERS_JOB, NULL, 0, JOB_PURPOSE_TRAIN, "round trip: layers");
    round_trip(LAYERS_JOB, NULL, 0, JOB_PURPOSE_ANY, "round trip: layers (any)");
    /* every optimizer, schedule and loss round-trips; the fields of the others are 0 */
    const char *opts[] = {"sgd", "adam", "adamw"}, *scheds[] = {"constant", "step", "cosine"},
               *losses[] = {"cross_entropy", "mse"};
    for (int o = 0; o < 3; o++)
        for (int k = 0; k < 3; k++)
            for (int l = 0; l < 2; l++) {
                char text[256];
                snprintf(text, sizeof text,
                         "model: {path: m, hidden: [3]}\ndata: {path: d}\ntrain: "
                         "{optimizer: %s, schedule: %s, loss: %s}\n",
                         opts[o], scheds[k], losses[l]);
                round_trip(text, NULL, 0, JOB_PURPOSE_TRAIN, text);
                if (!parse_ok(text, NULL, 0, JOB_PURPOSE_TRAIN, &j, text)) continue;
                CHECK(j.optimizer == o && j.schedule == k && j.loss == l, "%s: enums", text);
                CHECK((o == 0) == (j.momentum == 0.9) && (o != 0) == (j.beta2 == 0.999) &&
                          (o != 0) == (j.adam_eps == 1e-8),
                      "%s: optimizer defaults", text);
                CHECK((k == 1) == (j.step_size == 10 && j.gamma == 0.1) && j.min_lr == 0,
                      "%s: schedule defaults", text);
                CHECK(!strcmp(j.checkpoint_path, "m.ckpt.h5"), "%s: no .h5: %s", text,
                      j.checkpoint_path);
            }
    /* --set reaches into layers by index and by name */
    const char *sets[] = {"model.layers.fc.out_features=20", "model.layers.1.eps=0.001",
                          "model.layers.conv1.kernel=[5, 3]", "train.optimizer=sgd"};
    at_err e = {0};
    int rc = job_parse(LAYERS_JOB, "test.yaml", sets, 4, JOB_PURPOSE_TRAIN, &j, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, "test.yaml:19: train.betas: only used with "
                                          "optimizer: adam or adamw (optimizer is sgd)"),
          "betas after switching to sgd: %s", e.msg);
    if (parse_ok(LAYERS_JOB, sets, 3, JOB_PURPOSE_TRAIN, &j, "--set layers")) {
        CHECK(j.layers[8].out_features == 20, "by name: %d", j.layers[8].out_features);
        CHECK(j.layers[1].eps == 0.001, "by index");
        CHECK(j.layers[0].kernel[0] == 5 && j.layers[0].kernel[1] == 3, "kernel pair");
    }
    const char *bad_set[] = {"model.layers.conv1.kernel=0"};
    at_err_clear(&e);
    rc = job_parse(LAYERS_JOB, "test.yaml", bad_set, 1, JOB_PURPOSE_TRAIN, &j, &e);
    CHECK(rc == AT_EUSER && !strncmp(e.msg, "--set model.layers.conv1.kernel=0: "
                                             "model.layers[0].kernel: layer 'conv1' (conv2d): "
                                             "expected", 80),
          "layer error from a --set: %s", e.msg);
    CHECK(is_zero(&j, sizeof j), "job zeroed after a layer error");
    /* train needs layers or hidden, not both; run ignores their absence */
    const char *both = "data: {path: d}\nmodel: {path: m, layers: [{kind: linear, "
                       "out_features: 2}]}\ntrain:\n";
    if (parse_ok(both, NULL, 0, JOB_PURPOSE_TRAIN, &j, "layers without hidden"))
        CHECK(j.n_layers == 1 && j.n_hidden == 0, "layers only");
    /* a long model path: the derived checkpoint path does not fit */
    static char longp[1200];
    strcpy(longp, "model:\n  path: ");
    memset(longp + strlen(longp), 'm', 1020);
    strcat(longp, "\n");
    const char *no_ck[] = {"train.epochs=1"}, *ck[] = {"train.checkpoints=c.h5"};
    at_err_clear(&e);
    rc = job_parse(longp, "test.yaml", no_ck, 1, JOB_PURPOSE_ANY, &j, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, "test.yaml:2: train.checkpoints: the default "
                                          "(model.path with .ckpt.h5) is longer than 1023"),
          "long derived path: %s", e.msg);
    if (parse_ok(longp, ck, 1, JOB_PURPOSE_ANY, &j, "explicit checkpoints, long model path"))
        CHECK(!strcmp(j.checkpoint_path, "c.h5"), "explicit checkpoints");
    if (parse_ok(longp, NULL, 0, JOB_PURPOSE_ANY, &j, "no train: nothing derived"))
        CHECK(!j.checkpoint_path[0], "no train, no checkpoint path");
}

/* Every accepted duration form, through --set as users write them. */
static void test_durations(void) {
    static const struct {
        const char *text;
        double secs;
    } cases[] = {{"0", 0},        {"3600", 3600},  {"1.5", 1.5},      {"90s", 90},
                 {"30m", 1800},   {"2h", 7200},    {"1d", 86400},     {"0.5h", 1800},
                 {"05:30", 330},  {"1:00:00", 3600}, {"2-00:00:01", 172801}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char set[64];
        snprintf(set, sizeof set, "run.max_wall_time=%s", cases[i].text);
        const char *sets[] = {set};
        job j;
        if (parse_ok(MIN_RUN_JOB, sets, 1, JOB_PURPOSE_RUN, &j, set))
            CHECK(j.max_wall_time == cases[i].secs, "%s gives %g s, want %g", set,
                  j.max_wall_time, cases[i].secs);
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : NULL;
#ifdef ATTRIB_SRC_DIR
    if (!dir) dir = ATTRIB_SRC_DIR "/tests/bad_jobs";
#endif
    test_full();
    test_defaults();
    test_overrides();
    test_round_trip();
    test_bad_texts();
    test_durations();
    test_layers_and_training();
    test_read_file();
    test_schema();
    CHECK(dir != NULL, "no bad_jobs directory: pass it as argv[1] or build with "
                       "ATTRIB_SRC_DIR");
    if (dir) test_bad_job_files(dir);
    printf("test_job: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
