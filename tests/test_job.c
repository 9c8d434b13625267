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
                      "data, model, methods, metrics, influence, train_data, ground_truth, "
                      "run, train, output, sweep)"},
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
         "dataa: unknown key (known top-level keys: data, model, methods, metrics, "
         "influence, train_data, ground_truth, run, train, output, sweep)", 2},
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
         "train.optimizer: expected one of sgd, adam, adamw, newton, got 'rmsprop'", 2},
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
         "bad.yaml: run needs methods: or influence: (or both); the job has neither", 0},
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

/* --------------------------------------------------------------- sweeps */

static const char *SWEEP_JOB =
    "data: {path: d.h5}\n"
    "model: {path: m.h5}\n"
    "methods:\n"
    "  - {name: ig, kind: integrated_gradients, n_steps: 4}\n"
    "  - {name: ig2, kind: integrated_gradients, n_steps: 4}\n"
    "output: {path: o.h5}\n"
    "sweep:\n"
    "  methods.ig.n_steps: [8, 16, 32]\n"
    "  methods.ig2.n_steps: [2, 3]\n"
    "  model.path: [models/a.h5, 'b/c']\n"
    "  data.rows: [\"0:10\", {x: 1}]\n";

static void test_sweeps(void) {
    job_sweep sw;
    at_err e = {0};
    /* the last key's value is invalid as data.rows: the error names it */
    int rc = job_sweep_parse(SWEEP_JOB, "s.yaml", NULL, 0, &sw, &e);
    CHECK(rc == AT_EUSER, "sweep with a mapping as data.rows: rc %d", rc);
    CHECK(strstr(e.msg, "s.yaml: sweep.data.rows: point 'methods.ig.n_steps=8,"
                        "methods.ig2.n_steps=2,path=a,rows={x:1}': value {x: 1}: ") == e.msg,
          "sweep value error: %s", e.msg);
    CHECK(sw.n_points == 0 && sw.name == NULL, "sweep not emptied after an error");

    /* the same without the bad value: 3 x 2 x 2 x 1 points, first key slowest */
    const char *sets[] = {"sweep.data.rows=[\"0:10\"]"};
    memset(&e, 0, sizeof e);
    /* a --set inside the sweep walks its keys ("data", "rows"): an error */
    rc = job_sweep_parse(SWEEP_JOB, "s.yaml", sets, 1, &sw, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, "sweep.data: expected a list of values"),
          "--set sweep.data.rows: rc %d %s", rc, e.msg);
    job_sweep_free(&sw);
    const char *ok_sets[] = {"run.seed=3",
                             "sweep={methods.ig.n_steps: [8, 16, 32], methods.ig2.n_steps: "
                             "[2, 3], model.path: [models/a.h5, 'b/c'], data.rows: "
                             "[\"0:10\"]}"};
    memset(&e, 0, sizeof e);
    rc = job_sweep_parse(SWEEP_JOB, "s.yaml", ok_sets, 2, &sw, &e);
    CHECK(rc == 0, "sweep: %s", e.msg);
    CHECK(sw.n_points == 12 && sw.n_keys == 4, "sweep: %d points, %d keys", sw.n_points,
          sw.n_keys);
    if (rc == 0 && sw.n_points == 12) {
        CHECK(!strcmp(sw.label[0], "methods.ig.n_steps") && !strcmp(sw.label[2], "path") &&
                  !strcmp(sw.label[3], "rows"),
              "labels: %s %s %s", sw.label[0], sw.label[2], sw.label[3]);
        CHECK(!strcmp(sw.name[0], "methods.ig.n_steps=8,methods.ig2.n_steps=2,path=a,rows=0:10"),
              "name 0: %s", sw.name[0]);
        CHECK(!strcmp(sw.name[1], "methods.ig.n_steps=8,methods.ig2.n_steps=2,path=c,rows=0:10"),
              "name 1: %s", sw.name[1]);
        CHECK(!strcmp(sw.name[11], "methods.ig.n_steps=32,methods.ig2.n_steps=3,path=c,rows=0:10"),
              "name 11: %s", sw.name[11]);
        for (int p = 0; p < 12; p++) {
            CHECK(strchr(sw.name[p], '/') == NULL, "name %d has a '/': %s", p, sw.name[p]);
            int i0 = job_sweep_index(&sw, p, 0), i1 = job_sweep_index(&sw, p, 1);
            int i2 = job_sweep_index(&sw, p, 2);
            CHECK(i0 == p / 4 && i1 == p / 2 % 2 && i2 == p % 2, "point %d indices %d %d %d",
                  p, i0, i1, i2);
        }
        CHECK(!strcmp(sw.sets[1 * 4 + 2], "model.path=\"b/c\""), "point 1 set: %s",
              sw.sets[1 * 4 + 2]);
        /* a point is the job with its sets as overrides, after the caller's */
        const char *ps[] = {"run.seed=3", sw.sets[7 * 4 + 0], sw.sets[7 * 4 + 1],
                            sw.sets[7 * 4 + 2], sw.sets[7 * 4 + 3]};
        job *pj = at_malloc(sizeof *pj, "test job");
        rc = job_parse(SWEEP_JOB, "s.yaml", ps, 5, JOB_PURPOSE_RUN, pj, &e);
        CHECK(rc == 0 && pj->methods[0].n_steps == 16 && pj->methods[1].n_steps == 3 &&
                  !strcmp(pj->model_path, "b/c") && pj->seed == 3 && pj->row_end == 10,
              "point 7: rc %d n_steps %d %d model %s", rc, pj->methods[0].n_steps,
              pj->methods[1].n_steps, pj->model_path);
        char *y = job_emit_yaml(pj);
        CHECK(strstr(y, "sweep") == NULL, "a point's effective job has a sweep:\n%s", y);
        free(y);
        char *sy = job_sweep_emit_yaml(&sw);
        CHECK(!strcmp(sy, "sweep:\n  methods.ig.n_steps: [8, 16, 32]\n  methods.ig2.n_steps: "
                          "[2, 3]\n  model.path: [models/a.h5, \"b/c\"]\n  data.rows: "
                          "[\"0:10\"]\n"),
              "sweep yaml:\n%s", sy);
        free(sy);
        free(pj);
    }
    job_sweep_free(&sw);
    /* no sweep: 0 points, no error */
    memset(&e, 0, sizeof e);
    rc = job_sweep_parse("data: {path: d.h5}\n", "s.yaml", NULL, 0, &sw, &e);
    CHECK(rc == 0 && sw.n_points == 0 && e.code == 0, "no sweep: rc %d", rc);
    /* two points with one name */
    rc = job_sweep_parse("data: {path: d.h5}\nmodel: {path: m.h5}\nmethods: [{name: s, kind: "
                         "saliency}]\noutput: {path: o.h5}\nsweep: {model.path: [x/m.h5, "
                         "y/m.h5]}\n", "s.yaml", NULL, 0, &sw, &e);
    CHECK(rc == AT_EUSER && strstr(e.msg, "points 0 and 1 have the same name 'path=m'"),
          "same names: %s", e.msg);
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
        if (rc == 0 && strstr(text, "\nsweep:")) { /* a point's error: the sweep's to find */
            job_sweep sw;
            rc = job_sweep_parse(text, path, NULL, 0, &sw, &e);
            CHECK(rc != 0 || sw.n_points == 0, "%s: job_sweep_parse: %d points", path,
                  sw.n_points);
            job_sweep_free(&sw);
        }
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

/* ------------------------------------------- training-data attribution */

/* The tda defaults of a job with influence methods. */
static void tda_defaults(job_tda *t) {
    memset(t, 0, sizeof *t);
    strcpy(t->train_split, "train");
    t->train_start = 0;
    t->train_end = -1;
    t->train_block_rows = 512;
    t->top_k = 10;
    t->loo_points = 0;
    t->loo_tol = 1e-10;
    t->loo_max_iter = 100;
    t->lds_subsets = 0;
    t->lds_fraction = 0.5;
    t->lds_seeds = 1;
    t->lds_bootstrap = 1000;
}

static void check_infl(const job_influence *got, const job_influence *want, const char *what) {
    int same = memcmp(got, want, sizeof *got) == 0;
    CHECK(same, "%s: influence entry differs", what);
    if (!same) {
        char *a = job_influence_emit(got), *b = job_influence_emit(want);
        printf("--- got\n%s--- expected\n%s---\n", a, b);
        free(a);
        free(b);
    }
}

static const char *MIN_INFL_JOB =
    "data: {path: d.h5}\n"
    "model: {path: m.h5}\n"
    "influence:\n"
    "  - {name: dot, kind: grad_dot}\n"
    "  - {name: cos, kind: grad_cos}\n"
    "  - {name: tr, kind: tracin, checkpoints: ck.h5}\n"
    "  - {name: if, kind: influence}\n"
    "  - {name: if_cg, kind: influence, inverse: cg}\n"
    "  - {name: if_lissa, kind: influence, inverse: lissa}\n"
    "  - {name: trak, kind: trak}\n"
    "output: {path: o.h5}\n"
    "run: {seed: 77}\n"; /* after influence: proj_seed still takes it */

static void test_influence_defaults(void) {
    job j, x;
    default_expected(&x);
    strcpy(x.data_path, "d.h5");
    strcpy(x.model_path, "m.h5");
    strcpy(x.output_path, "o.h5");
    x.seed = 77;
    x.n_influence = 7;
    job_influence *f = &x.influence[0];
    strcpy(f->name, "dot");
    f->kind = JOB_INFL_GRAD_DOT;
    f->projection = JOB_PROJ_NONE; /* proj_dim, proj_seed 0 with none */
    f = &x.influence[1];
    strcpy(f->name, "cos");
    f->kind = JOB_INFL_GRAD_COS;
    f = &x.influence[2];
    strcpy(f->name, "tr");
    f->kind = JOB_INFL_TRACIN;
    strcpy(f->checkpoints, "ck.h5");
    for (int i = 3; i < 6; i++) {
        f = &x.influence[i];
        f->kind = JOB_INFL_INFLUENCE;
        f->inverse = JOB_INV_EXACT;
        f->curvature = JOB_CURV_GAUSS_NEWTON;
        f->damping = 1e-3;
        f->damping_relative = 0;
        f->hessian_rows = 0;
    }
    strcpy(x.influence[3].name, "if");
    strcpy(x.influence[4].name, "if_cg");
    x.influence[4].inverse = JOB_INV_CG;
    x.influence[4].cg_tol = 1e-6;
    x.influence[4].cg_max_iter = 100;
    strcpy(x.influence[5].name, "if_lissa");
    x.influence[5].inverse = JOB_INV_LISSA;
    x.influence[5].lissa_depth = 1000;
    x.influence[5].lissa_scale = 10.0;
    x.influence[5].lissa_repeats = 1;
    x.influence[5].lissa_batch = 64;
    f = &x.influence[6];
    strcpy(f->name, "trak");
    f->kind = JOB_INFL_TRAK;
    f->projection = JOB_PROJ_RADEMACHER;
    f->proj_dim = 512;
    f->proj_seed = 77;
    f->damping = 1e-6;
    f->damping_relative = 1;
    tda_defaults(&x.tda);
    if (parse_ok(MIN_INFL_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "influence defaults")) {
        for (int i = 0; i < 7; i++) check_infl(&j.influence[i], &x.influence[i], x.influence[i].name);
        check_same(&j, &x, "influence defaults");
    }
    round_trip(MIN_INFL_JOB, NULL, 0, JOB_PURPOSE_RUN, "round trip: influence defaults");

    /* The effective job lists the resolved values, and only the fields that apply. */
    if (parse_ok(MIN_INFL_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "influence emit")) {
        char *y = job_emit_yaml(&j);
        CHECK(strstr(y, "influence:\n  - name: \"dot\"\n    kind: grad_dot\n    layers: []\n"
                        "    projection: none\n    normalize: false\n  - name: \"cos\"\n") != NULL,
              "emitted grad_dot:\n%s", y);
        CHECK(strstr(y, "  - name: \"trak\"\n    kind: trak\n    layers: []\n"
                        "    projection: rademacher\n    proj_dim: 512\n    proj_seed: 77\n"
                        "    checkpoints: \"\"\n    models: []\n    damping: 1.0e-06\n"
                        "    damping_relative: true\n") != NULL,
              "emitted trak:\n%s", y);
        CHECK(strstr(y, "    inverse: cg\n    curvature: gauss_newton\n    damping: 0.001\n"
                        "    damping_relative: false\n    hessian_rows: 0\n    cg_tol: 1.0e-06\n"
                        "    cg_max_iter: 100\n  - name") != NULL,
              "emitted influence cg (no lissa fields):\n%s", y);
        CHECK(strstr(y, "train_data:\n  split: \"train\"\n  rows: \"0:\"\n  block_rows: 512\n"
                        "  top_k: 10\n  store: \"\"\nground_truth:\n  loo:\n    points: 0\n"
                        "    tol: 1.0e-10\n    max_iter: 100\n  lds:\n    subsets: 0\n"
                        "    fraction: 0.5\n    seeds: 1\n    bootstrap: 1000\nrun:\n") != NULL,
              "emitted train_data, ground_truth:\n%s", y);
        CHECK(!strstr(y, "methods:"), "no methods emitted:\n%s", y);
        free(y);
        char *e = job_influence_emit(&j.influence[5]);
        CHECK(!strcmp(e, "name: \"if_lissa\"\nkind: influence\nlayers: []\ninverse: lissa\n"
                         "curvature: gauss_newton\ndamping: 0.001\ndamping_relative: false\n"
                         "hessian_rows: 0\nlissa_depth: 1000\nlissa_scale: 10.0\n"
                         "lissa_repeats: 1\nlissa_batch: 64\n"),
              "job_influence_emit:\n%s", e);
        free(e);
        e = job_influence_emit(&j.influence[6]);
        CHECK(strstr(e, "proj_seed: 77\n") != NULL, "plan text has the resolved seed:\n%s", e);
        free(e);
    }

    /* Without influence, tda is all 0 and not emitted. */
    if (parse_ok(MIN_RUN_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "no influence")) {
        CHECK(j.n_influence == 0 && is_zero(&j.tda, sizeof j.tda) &&
                  is_zero(j.influence, sizeof j.influence),
              "no influence: tda and influence all 0");
        char *y = job_emit_yaml(&j);
        CHECK(!strstr(y, "influence") && !strstr(y, "train_data") && !strstr(y, "ground_truth"),
              "no influence sections emitted:\n%s", y);
        free(y);
    }
    /* proj_seed given wins over run.seed; projection none zeroes dim and seed */
    if (parse_ok("influence:\n  - {name: a, kind: trak, proj_seed: 5, projection: gaussian}\n"
                 "  - {name: b, kind: trak, projection: none, proj_dim: 0}\n"
                 "  - {name: c, kind: grad_cos, projection: kronecker, proj_dim: 64}\n"
                 "run: {seed: 9}\n",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "proj_seed")) {
        CHECK(j.influence[0].proj_seed == 5 && j.influence[0].proj_dim == 512 &&
                  j.influence[0].projection == JOB_PROJ_GAUSSIAN,
              "given proj_seed: %llu", (unsigned long long)j.influence[0].proj_seed);
        CHECK(j.influence[1].projection == JOB_PROJ_NONE && j.influence[1].proj_dim == 0 &&
                  j.influence[1].proj_seed == 0,
              "none: dim %d seed %llu", j.influence[1].proj_dim,
              (unsigned long long)j.influence[1].proj_seed);
        CHECK(j.influence[2].projection == JOB_PROJ_KRONECKER && j.influence[2].proj_dim == 64 &&
                  j.influence[2].proj_seed == 9,
              "kronecker: seed from run.seed");
    }
    /* kfac, ekfac: Gauss-Newton by default and when written */
    if (parse_ok("influence: [{name: k, kind: influence, inverse: kfac},\n"
                 "  {name: e, kind: influence, inverse: ekfac, curvature: gauss_newton}]\n",
                 NULL, 0, JOB_PURPOSE_ANY, &j, "kfac")) {
        CHECK(j.influence[0].inverse == JOB_INV_KFAC &&
                  j.influence[0].curvature == JOB_CURV_GAUSS_NEWTON &&
                  j.influence[1].inverse == JOB_INV_EKFAC,
              "kfac, ekfac");
    }

    /* run needs methods or influence: either one, or both */
    const char *base = "data: {path: d.h5}\nmodel: {path: m.h5}\noutput: {path: o.h5}\n";
    const char *with[] = {"methods: [{name: s, kind: saliency}]\n",
                          "influence: [{name: s, kind: grad_dot}]\n",
                          "methods: [{name: s, kind: saliency}]\n"
                          "influence: [{name: t, kind: grad_dot}]\n"};
    for (int k = 0; k < 3; k++) {
        char text[512];
        snprintf(text, sizeof text, "%s%s", base, with[k]);
        if (parse_ok(text, NULL, 0, JOB_PURPOSE_RUN, &j, with[k]))
            CHECK(j.n_methods == (k != 1) && j.n_influence == (k != 0), "%s: counts %d %d",
                  with[k], j.n_methods, j.n_influence);
    }
    at_err e = {0};
    int rc = job_parse(base, "t.yaml", NULL, 0, JOB_PURPOSE_RUN, &j, &e);
    CHECK(rc == AT_EUSER &&
              !strcmp(e.msg, "t.yaml: run needs methods: or influence: (or both); the job "
                             "has neither"),
          "neither: %s", e.msg);
    if (parse_ok(base, NULL, 0, JOB_PURPOSE_ANY, &j, "neither, purpose any"))
        CHECK(j.n_methods == 0 && j.n_influence == 0, "any: nothing required");
    const char *s_in[] = {"influence=[{name: x, kind: grad_cos}]"};
    if (parse_ok(base, s_in, 1, JOB_PURPOSE_RUN, &j, "influence from --set"))
        CHECK(j.n_influence == 1 && j.influence[0].kind == JOB_INFL_GRAD_COS,
              "influence from --set");

    CHECK(!strcmp(job_infl_kind_name(JOB_INFL_TRAK), "trak") &&
              !strcmp(job_infl_kind_name(JOB_INFL_GRAD_DOT), "grad_dot") &&
              !strcmp(job_infl_kind_name((job_infl_kind)0), "?"),
          "influence kind names");
    CHECK(!strcmp(job_inverse_name(JOB_INV_EKFAC), "ekfac") &&
              !strcmp(job_inverse_name(JOB_INV_EXACT), "exact"),
          "inverse names");
    CHECK(!strcmp(job_projection_name(JOB_PROJ_NONE), "none") &&
              !strcmp(job_projection_name(JOB_PROJ_KRONECKER), "kronecker") &&
              !strcmp(job_projection_name((job_projection)5), "?"),
          "projection names");
    CHECK(!strcmp(job_curvature_name(JOB_CURV_HESSIAN), "hessian") &&
              !strcmp(job_curvature_name(JOB_CURV_GAUSS_NEWTON), "gauss_newton"),
          "curvature names");
}

/* Every influence field given, ground truth on, a Newton fit. */
static const char *FULL_INFL_JOB =
    "data: {path: d.h5, rows: \":100\"}\n"
    "model: {path: m.h5, layers: [{kind: flatten}, {kind: linear, name: fc, out_features: 3}]}\n"
    "methods: [{name: sal, kind: saliency}]\n"
    "influence:\n"
    "  - name: if\n"
    "    kind: influence\n"
    "    layers: [fc]\n"
    "    inverse: lissa\n"
    "    curvature: hessian\n"
    "    damping: 0.25\n"
    "    damping_relative: true\n"
    "    hessian_rows: 300\n"
    "    lissa_depth: 7\n"
    "    lissa_scale: 3.5\n"
    "    lissa_repeats: 2\n"
    "    lissa_batch: 9\n"
    "  - name: cg\n"
    "    kind: influence\n"
    "    inverse: cg\n"
    "    cg_tol: 1e-9\n"
    "    cg_max_iter: 12\n"
    "  - name: tk\n"
    "    kind: trak\n"
    "    layers: [fc, \"a.b-c_1\"]\n"
    "    projection: sjlt\n"
    "    proj_dim: 1048576\n"
    "    proj_seed: 18446744073709551615\n"
    "    checkpoints: \"ck #1.h5\"\n"
    "    models: [m2.h5, \"m 3.h5\"]\n"
    "    damping: 0\n"
    "    damping_relative: false\n"
    "  - {name: tr, kind: tracin, checkpoints: ck.h5, normalize: true, projection: none}\n"
    "train_data:\n"
    "  split: tr\n"
    "  rows: \"10:90\"\n"
    "  block_rows: 7\n"
    "  top_k: 1000\n"
    "  store: /scratch/store\n"
    "ground_truth:\n"
    "  loo: {points: 12, tol: 1e-12, max_iter: 7}\n"
    "  lds: {subsets: 5, fraction: 0.25, seeds: 3, bootstrap: 0}\n"
    "train:\n"
    "  optimizer: newton\n"
    "  weight_decay: 0.01\n"
    "  tol: 1e-9\n"
    "  max_iter: 20\n"
    "  loss: mse\n"
    "output: {path: o.h5}\n";

static void test_influence_full(void) {
    job j;
    if (!parse_ok(FULL_INFL_JOB, NULL, 0, JOB_PURPOSE_RUN, &j, "full influence job")) return;
    job_influence x[4];
    memset(x, 0, sizeof x);
    strcpy(x[0].name, "if");
    x[0].kind = JOB_INFL_INFLUENCE;
    x[0].n_layers = 1;
    strcpy(x[0].layers[0], "fc");
    x[0].inverse = JOB_INV_LISSA;
    x[0].curvature = JOB_CURV_HESSIAN;
    x[0].damping = 0.25;
    x[0].damping_relative = 1;
    x[0].hessian_rows = 300;
    x[0].lissa_depth = 7;
    x[0].lissa_scale = 3.5;
    x[0].lissa_repeats = 2;
    x[0].lissa_batch = 9;
    strcpy(x[1].name, "cg");
    x[1].kind = JOB_INFL_INFLUENCE;
    x[1].inverse = JOB_INV_CG;
    x[1].curvature = JOB_CURV_GAUSS_NEWTON;
    x[1].damping = 1e-3;
    x[1].cg_tol = 1e-9;
    x[1].cg_max_iter = 12;
    strcpy(x[2].name, "tk");
    x[2].kind = JOB_INFL_TRAK;
    x[2].n_layers = 2;
    strcpy(x[2].layers[0], "fc");
    strcpy(x[2].layers[1], "a.b-c_1");
    x[2].projection = JOB_PROJ_SJLT;
    x[2].proj_dim = 1048576;
    x[2].proj_seed = UINT64_MAX;
    strcpy(x[2].checkpoints, "ck #1.h5");
    x[2].n_models = 2;
    strcpy(x[2].models[0], "m2.h5");
    strcpy(x[2].models[1], "m 3.h5");
    strcpy(x[3].name, "tr");
    x[3].kind = JOB_INFL_TRACIN;
    strcpy(x[3].checkpoints, "ck.h5");
    x[3].normalize = 1;
    CHECK(j.n_influence == 4 && j.n_methods == 1, "counts %d %d", j.n_influence, j.n_methods);
    for (int i = 0; i < 4; i++) check_infl(&j.influence[i], &x[i], x[i].name);
    job_tda t;
    memset(&t, 0, sizeof t);
    strcpy(t.train_split, "tr");
    t.train_start = 10;
    t.train_end = 90;
    t.train_block_rows = 7;
    t.top_k = 1000;
    strcpy(t.store, "/scratch/store");
    t.loo_points = 12;
    t.loo_tol = 1e-12;
    t.loo_max_iter = 7;
    t.lds_subsets = 5;
    t.lds_fraction = 0.25;
    t.lds_seeds = 3;
    t.lds_bootstrap = 0;
    CHECK(!memcmp(&j.tda, &t, sizeof t), "train_data and ground_truth fields");
    /* newton: its own fields; the iterative ones are 0 and not emitted */
    CHECK(j.optimizer == JOB_OPT_NEWTON && j.newton_tol == 1e-9 && j.newton_max_iter == 20 &&
              j.weight_decay == 0.01 && j.loss == ENG_LOSS_MSE,
          "newton settings");
    CHECK(j.epochs == 0 && j.batch_size == 0 && j.lr == 0 && j.momentum == 0 &&
              j.schedule == 0 && j.checkpoint_every == 0 && j.beta1 == 0,
          "iterative fields are 0 with newton: %d %d %g", j.epochs, j.batch_size, j.lr);
    char *y = job_emit_yaml(&j);
    CHECK(strstr(y, "train:\n  optimizer: newton\n  tol: 1.0e-09\n  max_iter: 20\n"
                    "  weight_decay: 0.01\n  loss: mse\n") != NULL &&
              !strstr(y, "epochs") && !strstr(y, "  lr:") && !strstr(y, "  schedule:") &&
              !strstr(y, "batch_size"),
          "emitted newton train:\n%s", y);
    CHECK(strstr(y, "    layers: [\"fc\", \"a.b-c_1\"]\n") &&
              strstr(y, "    models: [\"m2.h5\", \"m 3.h5\"]\n"),
          "emitted lists:\n%s", y);
    free(y);
    round_trip(FULL_INFL_JOB, NULL, 0, JOB_PURPOSE_RUN, "round trip: full influence");
    round_trip(FULL_INFL_JOB, NULL, 0, JOB_PURPOSE_TRAIN, "round trip: full influence (train)");
    /* every kind, inverse, curvature and projection round-trips */
    const char *inv[] = {"exact", "cg", "lissa", "kfac", "ekfac"};
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < (i < 3 ? 2 : 1); c++) {
            char text[256];
            snprintf(text, sizeof text,
                     "influence: [{name: a, kind: influence, inverse: %s, curvature: %s}]",
                     inv[i], c ? "hessian" : "gauss_newton");
            round_trip(text, NULL, 0, JOB_PURPOSE_ANY, text);
            if (parse_ok(text, NULL, 0, JOB_PURPOSE_ANY, &j, text))
                CHECK((int)j.influence[0].inverse == i + 1 &&
                          (int)j.influence[0].curvature == c + 1,
                      "%s: enums", text);
        }
    const char *kinds[] = {"grad_dot", "grad_cos", "tracin", "trak"};
    const char *proj[] = {"none", "gaussian", "rademacher", "sjlt", "kronecker"};
    for (int k = 0; k < 4; k++)
        for (int p = 0; p < 5; p++) {
            char text[256];
            snprintf(text, sizeof text,
                     "influence: [{name: a, kind: %s, projection: %s%s%s}]\nrun: {seed: 4}\n",
                     kinds[k], proj[p], p ? ", proj_dim: 33" : "",
                     k == 2 ? ", checkpoints: c.h5" : "");
            round_trip(text, NULL, 0, JOB_PURPOSE_ANY, text);
            if (parse_ok(text, NULL, 0, JOB_PURPOSE_ANY, &j, text))
                CHECK((int)j.influence[0].projection == p &&
                          j.influence[0].proj_dim == (p ? 33 : 0) &&
                          j.influence[0].proj_seed == (p ? 4u : 0u),
                      "%s: projection %d dim %d", text, j.influence[0].projection,
                      j.influence[0].proj_dim);
        }
    /* Newton defaults */
    if (parse_ok("train: {optimizer: newton, weight_decay: 1e-3}\n", NULL, 0, JOB_PURPOSE_ANY,
                 &j, "newton defaults"))
        CHECK(j.newton_tol == 1e-10 && j.newton_max_iter == 50 && j.epochs == 0,
              "newton defaults: tol %g max_iter %d", j.newton_tol, j.newton_max_iter);
    if (parse_ok("train: {}\n", NULL, 0, JOB_PURPOSE_ANY, &j, "sgd: no newton fields"))
        CHECK(j.newton_tol == 0 && j.newton_max_iter == 0 && j.epochs == 10,
              "sgd: newton fields 0");
}

static void test_influence_overrides(void) {
    job j;
    const char *sets[] = {
        "influence.trak.proj_dim=1024",     /* by name */
        "influence.0.layers=[fc1, fc2]",    /* by index */
        "influence.if.inverse=cg",          /* switch inverse: its defaults come */
        "influence.if.cg_tol=1e-4",
        "influence.3={name: new, kind: grad_cos}", /* append */
        "train_data.rows=5:50",
        "ground_truth.lds.subsets=8",       /* creates ground_truth and lds */
        "train.epochs=2",
    };
    const char *text = "influence:\n"
                       "  - {name: dot, kind: grad_dot}\n"
                       "  - {name: trak, kind: trak}\n"
                       "  - {name: if, kind: influence}\n";
    if (parse_ok(text, sets, 8, JOB_PURPOSE_ANY, &j, "influence overrides")) {
        CHECK(j.influence[1].proj_dim == 1024, "by name: proj_dim %d", j.influence[1].proj_dim);
        CHECK(j.influence[0].n_layers == 2 && !strcmp(j.influence[0].layers[1], "fc2"),
              "by index: layers");
        CHECK(j.influence[2].inverse == JOB_INV_CG && j.influence[2].cg_tol == 1e-4 &&
                  j.influence[2].cg_max_iter == 100,
              "inverse switched: cg_tol %g max_iter %d", j.influence[2].cg_tol,
              j.influence[2].cg_max_iter);
        CHECK(j.n_influence == 4 && j.influence[3].kind == JOB_INFL_GRAD_COS, "appended");
        CHECK(j.tda.train_start == 5 && j.tda.train_end == 50, "train_data.rows");
        CHECK(j.tda.lds_subsets == 8 && j.tda.lds_fraction == 0.5, "ground_truth created");
    }
    struct {
        const char *set, *want;
    } bad[] = {
        {"influence.trk.proj_dim=5",
         "--set influence.trk.proj_dim=5: no influence method named 'trk' (influence: dot, "
         "trak, if)"},
        {"influence.7.kind=trak", "--set influence.7.kind=trak: influence has no entry 7 (it "
                                  "has 3)"},
        {"influence.dot.inverse=cg",
         "--set influence.dot.inverse=cg: influence[0].inverse: 'dot' is of kind grad_dot, "
         "which has no inverse (fields of grad_dot: name, kind, layers, projection, proj_dim, "
         "proj_seed, normalize)"},
        {"influence.trak.proj_dim=0",
         "--set influence.trak.proj_dim=0: influence[1].proj_dim: projection rademacher needs "
         "proj_dim, the projected dimension in 1..1048576 (e.g. 512)"},
        {"ground_truth.loo.points=3",
         "--set ground_truth.loo.points=3: ground_truth.loo.points: leave-one-out needs "
         "train.optimizer: newton with train.weight_decay > 0 (their objective is what each "
         "point is refitted on); the job has no train section"},
        {"influence.if.name=dot",
         "--set influence.if.name=dot: influence[2].name: duplicate name 'dot' (also "
         "influence[0] at line 2)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_err e = {0};
        const char *s1[] = {bad[i].set};
        int rc = job_parse(text, "test.yaml", s1, 1, JOB_PURPOSE_ANY, &j, &e);
        CHECK(rc == AT_EUSER && !strcmp(e.msg, bad[i].want), "--set %s:\n  got  %s\n  want %s",
              bad[i].set, e.msg, bad[i].want);
        CHECK(is_zero(&j, sizeof j), "--set %s: job not zeroed", bad[i].set);
    }
}

/* Every influence rule: the exact message with file and line. */
static void test_influence_errors(void) {
    const job_purpose ANY = JOB_PURPOSE_ANY, RUN = JOB_PURPOSE_RUN;
    static char many[2048];
    strcpy(many, "influence:\n");
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "  - {name: f%d, kind: grad_dot}\n", i);
    const bad_case cases[] = {
        {"influence: []\n", ANY, "bad.yaml:1: influence: expected a list of 1 to 16 "
                                 "training-data attribution methods, got 0 entries", 1},
        {"influence: {name: a}\n", ANY, "influence: expected a list of 1 to 16 "
                                        "training-data attribution methods, got a mapping", 1},
        {many, ANY, "influence: expected a list of 1 to 16 training-data attribution "
                    "methods, got 17 entries", 2},
        {"influence:\n  - trak\n", ANY,
         "bad.yaml:2: influence[0]: expected a mapping with name and kind, got 'trak'", 2},
        {"influence:\n  - name: a\n", ANY, "bad.yaml:2: influence[0].kind: required field "
                                           "is missing (grad_dot, grad_cos, tracin, "
                                           "influence or trak)", 2},
        {"influence:\n  - kind: trak\n", ANY, "bad.yaml:2: influence[0].name: required field "
                                              "is missing", 2},
        {"influence:\n  - {name: a, kind: datamodels}\n", ANY,
         "bad.yaml:2: influence[0].kind: expected one of grad_dot, grad_cos, tracin, "
         "influence, trak, got 'datamodels'", 2},
        {"influence:\n  - {name: a, kind: trak}\n  - {name: b, kind: trak, projdim: 3}\n", ANY,
         "bad.yaml:3: influence[1].projdim: unknown key (known keys in influence[]: name, "
         "kind, layers, projection, proj_dim, proj_seed, normalize, checkpoints, models, "
         "inverse, curvature, damping, damping_relative, hessian_rows, cg_tol, cg_max_iter, "
         "lissa_depth, lissa_scale, lissa_repeats, lissa_batch)", 3},
        {"influence:\n  - name: a\n    kind: grad_cos\n    normalize: true\n", ANY,
         "bad.yaml:4: influence[0].normalize: 'a' is of kind grad_cos, which has no "
         "normalize: grad_cos always normalises (fields of grad_cos: name, kind, layers, "
         "projection, proj_dim, proj_seed)", 4},
        {"influence:\n  - name: a\n    kind: influence\n    projection: gaussian\n", ANY,
         "bad.yaml:4: influence[0].projection: 'a' is of kind influence, which has no "
         "projection (fields of influence: name, kind, layers, inverse, curvature, damping, "
         "damping_relative, hessian_rows, cg_tol, cg_max_iter, lissa_depth, lissa_scale, "
         "lissa_repeats, lissa_batch)", 4},
        {"influence:\n  - {name: a, kind: trak, inverse: cg}\n", ANY,
         "influence[0].inverse: 'a' is of kind trak, which has no inverse (fields of trak: "
         "name, kind, layers, projection, proj_dim, proj_seed, checkpoints, models, damping, "
         "damping_relative)", 2},
        {"influence:\n  - {name: a, kind: grad_dot, checkpoints: c.h5}\n", ANY,
         "influence[0].checkpoints: 'a' is of kind grad_dot, which has no checkpoints", 2},
        {"influence:\n  - {name: a, kind: tracin, models: [m.h5]}\n", ANY,
         "influence[0].models: 'a' is of kind tracin, which has no models", 2},
        {"influence:\n  - {name: a, kind: grad_dot, damping: 0.1}\n", ANY,
         "influence[0].damping: 'a' is of kind grad_dot, which has no damping", 2},
        {"influence:\n  - name: a\n    kind: influence\n    cg_tol: 1e-3\n", ANY,
         "bad.yaml:4: influence[0].cg_tol: only used with inverse: cg (inverse is exact)", 4},
        {"influence:\n  - name: a\n    kind: influence\n    inverse: cg\n"
         "    lissa_depth: 10\n", ANY,
         "bad.yaml:5: influence[0].lissa_depth: only used with inverse: lissa (inverse is cg)",
         5},
        {"influence:\n  - {name: a, kind: influence, inverse: kfac,\n"
         "     curvature: hessian}\n", ANY,
         "bad.yaml:3: influence[0].curvature: inverse kfac approximates the Gauss-Newton "
         "matrix: write curvature: gauss_newton, or inverse: exact, cg or lissa for the "
         "Hessian", 3},
        {"influence:\n  - {name: a, kind: influence, curvature: hessian, inverse: ekfac}\n", ANY,
         "influence[0].curvature: inverse ekfac approximates the Gauss-Newton matrix", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: newton}\n", ANY,
         "influence[0].inverse: expected one of exact, cg, lissa, kfac, ekfac, got 'newton'", 2},
        {"influence:\n  - {name: a, kind: influence, curvature: fisher}\n", ANY,
         "influence[0].curvature: expected one of gauss_newton, hessian, got 'fisher'", 2},
        {"influence:\n  - {name: a, kind: tracin}\n", ANY,
         "bad.yaml:2: influence[0].checkpoints: required field is missing: tracin needs a "
         "checkpoint file (the train.checkpoints of the job that trained the model, with "
         "checkpoint_every > 0)", 2},
        {"influence:\n  - name: a\n    kind: tracin\n    checkpoints: \"\"\n", ANY,
         "bad.yaml:4: influence[0].checkpoints: must not be empty: tracin needs", 4},
        {"influence:\n  - {name: a, kind: grad_dot, projection: gaussian}\n", ANY,
         "bad.yaml:2: influence[0].proj_dim: projection gaussian needs proj_dim, the "
         "projected dimension in 1..1048576 (e.g. 512)", 2},
        {"influence:\n  - name: a\n    kind: grad_dot\n    proj_dim: 64\n", ANY,
         "bad.yaml:4: influence[0].proj_dim: only used with a projection other than none "
         "(projection is none)", 4},
        {"influence:\n  - name: a\n    kind: trak\n    projection: none\n    proj_seed: 3\n",
         ANY, "bad.yaml:5: influence[0].proj_seed: only used with a projection other than "
              "none", 5},
        {"influence:\n  - {name: a, kind: trak, projection: srht}\n", ANY,
         "influence[0].projection: expected one of none, gaussian, rademacher, sjlt, "
         "kronecker, got 'srht'", 2},
        {"influence:\n  - {name: a, kind: trak, proj_dim: 1048577}\n", ANY,
         "influence[0].proj_dim: expected an integer in 0..1048576, got '1048577'", 2},
        {"influence:\n  - {name: a, kind: trak, proj_seed: -1}\n", ANY,
         "influence[0].proj_seed: expected an integer >= 0, got '-1'", 2},
        {"influence:\n  - {name: a, kind: trak, damping: -1e-3}\n", ANY,
         "influence[0].damping: expected a number >= 0, got '-1e-3'", 2},
        {"influence:\n  - {name: a, kind: influence, hessian_rows: -1}\n", ANY,
         "influence[0].hessian_rows: expected an integer >= 0, got '-1'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: cg, cg_tol: 0}\n", ANY,
         "influence[0].cg_tol: expected a number > 0, got '0'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: cg, cg_max_iter: 0}\n", ANY,
         "influence[0].cg_max_iter: expected an integer in 1..1000000, got '0'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: lissa, lissa_scale: 0}\n", ANY,
         "influence[0].lissa_scale: expected a number > 0, got '0'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: lissa, lissa_depth: 0}\n", ANY,
         "influence[0].lissa_depth: expected an integer in 1..10000000, got '0'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: lissa, lissa_repeats: 0}\n", ANY,
         "influence[0].lissa_repeats: expected an integer in 1..10000, got '0'", 2},
        {"influence:\n  - {name: a, kind: influence, inverse: lissa, lissa_batch: 0}\n", ANY,
         "influence[0].lissa_batch: expected an integer in 1..1000000, got '0'", 2},
        {"influence:\n  - {name: a, kind: grad_dot, layers: fc}\n", ANY,
         "influence[0].layers: expected a list of 0 to 16 layer names (e.g. [fc1, fc2]), got "
         "'fc'", 2},
        {"influence:\n  - name: a\n    kind: grad_dot\n    layers: [fc, \"a b\"]\n", ANY,
         "bad.yaml:4: influence[0].layers[1]: expected a layer name of letters, digits, '_', "
         "'.' and '-', got \"a b\"", 4},
        {"influence:\n  - name: a\n    kind: grad_dot\n    layers:\n      - fc\n      - fc\n",
         ANY, "bad.yaml:6: influence[0].layers[1]: 'fc' is listed twice (also [0])", 6},
        {"influence:\n  - {name: a, kind: grad_dot, layers: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,"
         "q]}\n", ANY, "influence[0].layers: expected a list of 0 to 16 layer names (e.g. "
                       "[fc1, fc2]), got 17 entries", 2},
        {"influence:\n  - {name: a, kind: trak, models: [\"\"]}\n", ANY,
         "influence[0].models[0]: expected a non-empty path, got \"\"", 2},
        {"influence:\n  - {name: a, kind: trak, models: [a, b, c, d, e, f, g, h, i]}\n", ANY,
         "influence[0].models: expected a list of 0 to 8 file paths, got 9 entries", 2},
        {"influence:\n  - {name: a, kind: trak, models: [x.h5, x.h5]}\n", ANY,
         "influence[0].models[1]: 'x.h5' is listed twice (also [0])", 2},
        {"influence:\n  - {name: a, kind: trak}\n  - {name: a, kind: grad_dot}\n", ANY,
         "bad.yaml:3: influence[1].name: duplicate name 'a' (also influence[0] at line 2)", 3},
        {"methods:\n  - {name: a, kind: saliency}\ninfluence:\n  - {name: b, kind: trak}\n"
         "  - {name: a, kind: grad_dot}\n", ANY,
         "bad.yaml:5: influence[1].name: duplicate name 'a' (also methods[0] at line 2): "
         "names are unique across methods and influence", 5},
        {"influence:\n  - {name: a, kind: trak}\nmethods:\n  - {name: a, kind: saliency}\n",
         ANY, "bad.yaml:2: influence[0].name: duplicate name 'a' (also methods[0] at line 4)",
         2},
        {"influence:\n  - {name: a b, kind: trak}\n", ANY,
         "influence[0].name: expected a name of letters, digits, '_' and '-', got 'a b'", 2},
        /* train_data, ground_truth */
        {"methods: [{name: a, kind: saliency}]\ntrain_data: {top_k: 3}\n", ANY,
         "bad.yaml:2: train_data: only used with influence: (the job has no influence "
         "methods)", 2},
        {"ground_truth:\n  loo: {points: 3}\n", ANY,
         "bad.yaml:1: ground_truth: only used with influence: (the job has no influence "
         "methods)", 1},
        {"influence: [{name: a, kind: trak}]\ntrain_data:\n  top_k: 1001\n", ANY,
         "bad.yaml:3: train_data.top_k: expected an integer in 0..1000, got '1001'", 3},
        {"influence: [{name: a, kind: trak}]\ntrain_data:\n  block_rows: 0\n", ANY,
         "train_data.block_rows: expected an integer in 1..1000000, got '0'", 3},
        {"influence: [{name: a, kind: trak}]\ntrain_data:\n  rows: \"9:3\"\n", ANY,
         "bad.yaml:3: train_data.rows: expected \"start:end\"", 3},
        {"influence: [{name: a, kind: trak}]\ntrain_data:\n  split: \"\"\n", ANY,
         "train_data.split: expected a non-empty string", 3},
        {"influence: [{name: a, kind: trak}]\ntrain_data:\n  path: x.h5\n", ANY,
         "bad.yaml:3: train_data.path: unknown key (known keys in train_data: split, rows, "
         "block_rows, top_k, store)", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  loo:\n    pts: 3\n", ANY,
         "bad.yaml:4: ground_truth.loo.pts: unknown key (known keys in ground_truth.loo: "
         "points, tol, max_iter)", 4},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  loo: 3\n", ANY,
         "bad.yaml:3: ground_truth.loo: expected a mapping of fields, got '3'", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  lds: {fraction: 1.0}\n", ANY,
         "bad.yaml:3: ground_truth.lds.fraction: expected a number in (0, 1), got '1.0'", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  lds: {fraction: 0}\n", ANY,
         "ground_truth.lds.fraction: expected a number in (0, 1), got '0'", 3},
        {"influence: [{name: a, kind: trak}]\ntrain: {}\nground_truth:\n  lds: {subsets: 4}\n",
         ANY, "bad.yaml:4: ground_truth.lds.subsets: expected 0 (off) or an integer in "
              "5..100000 (a Spearman correlation over fewer subsets means nothing), got 4", 4},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  lds: {seeds: 0}\n", ANY,
         "ground_truth.lds.seeds: expected an integer in 1..1000, got '0'", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  loo: {tol: 0}\n", ANY,
         "ground_truth.loo.tol: expected a number > 0, got '0'", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  loo: {points: -1}\n", ANY,
         "ground_truth.loo.points: expected an integer in 0..1000000, got '-1'", 3},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  lds:\n    subsets: 10\n", ANY,
         "bad.yaml:4: ground_truth.lds.subsets: LDS trains a model on each subset: it needs a "
         "train section (train.optimizer and its settings)", 4},
        {"influence: [{name: a, kind: trak}]\ntrain: {optimizer: adam}\n"
         "ground_truth:\n  loo:\n    points: 5\n", ANY,
         "bad.yaml:5: ground_truth.loo.points: leave-one-out needs train.optimizer: newton "
         "with train.weight_decay > 0 (their objective is what each point is refitted on); "
         "train.optimizer is adam", 5},
        {"influence: [{name: a, kind: trak}]\nground_truth:\n  loo:\n    points: 5\n", ANY,
         "ground_truth.loo.points: leave-one-out needs train.optimizer: newton with "
         "train.weight_decay > 0 (their objective is what each point is refitted on); the job "
         "has no train section", 4},
        /* newton */
        {"train:\n  optimizer: newton\n", ANY,
         "bad.yaml:2: train.weight_decay: optimizer newton needs weight_decay > 0 (the L2 "
         "term makes the objective strictly convex: without it the Hessian of a softmax model "
         "is singular), got 0", 2},
        {"train:\n  optimizer: newton\n  weight_decay: 0.0\n", ANY,
         "bad.yaml:3: train.weight_decay: optimizer newton needs weight_decay > 0", 3},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  lr: 0.1\n", ANY,
         "bad.yaml:4: train.lr: only used with optimizer: sgd, adam or adamw (optimizer is "
         "newton)", 4},
        {"train:\n  epochs: 3\n  optimizer: newton\n  weight_decay: 0.1\n", ANY,
         "bad.yaml:2: train.epochs: only used with optimizer: sgd, adam or adamw (optimizer "
         "is newton)", 2},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  batch_size: 64\n", ANY,
         "train.batch_size: only used with optimizer: sgd, adam or adamw", 4},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  momentum: 0.5\n", ANY,
         "train.momentum: only used with optimizer: sgd (optimizer is newton)", 4},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  schedule: cosine\n", ANY,
         "train.schedule: only used with optimizer: sgd, adam or adamw", 4},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  checkpoint_every: 1\n", ANY,
         "train.checkpoint_every: only used with optimizer: sgd, adam or adamw", 4},
        {"train:\n  tol: 1e-8\n", ANY,
         "bad.yaml:2: train.tol: only used with optimizer: newton (optimizer is sgd)", 2},
        {"train:\n  optimizer: adamw\n  max_iter: 5\n", ANY,
         "train.max_iter: only used with optimizer: newton (optimizer is adamw)", 3},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  max_iter: 0\n", ANY,
         "train.max_iter: expected an integer in 1..10000, got '0'", 4},
        {"train:\n  optimizer: newton\n  weight_decay: 0.1\n  tol: 0\n", ANY,
         "train.tol: expected a number > 0, got '0'", 4},
        /* run */
        {"data: {path: d.h5}\nmodel: {path: m.h5}\ninfluence: [{name: a, kind: trak}]\n", RUN,
         "bad.yaml: output.path: required field is missing", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *bc = &cases[i];
        at_err e = {0};
        job j;
        int rc = job_parse(bc->text, "bad.yaml", NULL, 0, bc->purpose, &j, &e);
        CHECK(rc == AT_EUSER && e.code == AT_EUSER, "influence case %zu: rc %d (%s)", i, rc,
              e.msg);
        CHECK(strstr(e.msg, bc->want) != NULL, "influence case %zu:\n  got  %s\n  want %s", i,
              e.msg, bc->want);
        char prefix[64];
        if (bc->line > 0)
            snprintf(prefix, sizeof prefix, "bad.yaml:%d: ", bc->line);
        else
            snprintf(prefix, sizeof prefix, "bad.yaml: ");
        CHECK(strncmp(e.msg, prefix, strlen(prefix)) == 0,
              "influence case %zu: message does not start with '%s': %s", i, prefix, e.msg);
        CHECK(is_zero(&j, sizeof j), "influence case %zu: job not zeroed after an error", i);
    }
}

/* tests/jobs/influence*.yaml: valid run jobs (and train jobs when they
 * have a train section) that round-trip. */
static void test_influence_job_files(const char *src) {
    const char *files[] = {"influence_mlp.yaml", "influence_logreg.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tests/jobs/%s", src, files[i]);
        char *text = NULL;
        at_err e = {0};
        int rc = job_read_file(path, &text, &e);
        CHECK(rc == 0, "%s: %s", path, e.msg);
        if (rc) continue;
        job j;
        if (parse_ok(text, NULL, 0, JOB_PURPOSE_RUN, &j, path)) {
            CHECK(j.n_influence >= 6, "%s: %d influence methods", path, j.n_influence);
            round_trip(text, NULL, 0, JOB_PURPOSE_RUN, path);
            if (j.has_train) round_trip(text, NULL, 0, JOB_PURPOSE_TRAIN, path);
        }
        free(text);
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
    test_influence_defaults();
    test_influence_full();
    test_influence_overrides();
    test_influence_errors();
    test_sweeps();
#ifdef ATTRIB_SRC_DIR
    test_influence_job_files(ATTRIB_SRC_DIR);
#endif
    CHECK(dir != NULL, "no bad_jobs directory: pass it as argv[1] or build with "
                       "ATTRIB_SRC_DIR");
    if (dir) test_bad_job_files(dir);
    printf("test_job: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
