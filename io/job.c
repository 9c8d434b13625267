/* job.c — job files: libyaml events -> a small tree -> --set overrides ->
 * one schema table -> a typed, validated job. See job.h.
 *
 * The tree keeps, for every node and every mapping key, the 1-based line it
 * came from, or the index of the --set that made it, so that every message
 * can say where the offending text is. The schema (SCHEMA below) is the only
 * description of a job: validation, defaults, emission and the documentation
 * table (job_schema_fields) are all driven by it. Defaults are written in the
 * table as YAML text and go through the same converter as the job's own
 * values, so a documented default is the default.
 *
 * Convention: every static int function returns 0, or the code recorded in
 * c->err (AT_EUSER for a bad job) after writing the message; the first
 * error stops everything. Tree nodes are owned by their parent; node_free
 * releases a subtree. */
#include "job.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Enum-typed fields are filled through int pointers (see conv). */
_Static_assert(sizeof(job_method_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(job_quadrature) == sizeof(int), "enum size");
_Static_assert(sizeof(job_baseline) == sizeof(int), "enum size");
_Static_assert(sizeof(job_scheduler) == sizeof(int), "enum size");

#define MAX_DEPTH 32            /* nesting of YAML collections */
#define MAX_JOB_FILE (16 << 20) /* bytes; job files are a few hundred */
#define SHOW_MAX 60             /* characters of a value quoted in a message */
#define HIDDEN_MAX_WIDTH 1000000

/* ------------------------------------------------------------ the tree */

typedef enum { JN_SCALAR = 1, JN_MAP, JN_SEQ } jn_type;

typedef struct jnode jnode;

typedef struct {
    char *key;  /* mapping key; NULL in a sequence */
    int line;   /* the key's line (1-based); 0 when a --set made it */
    int set;    /* index of the --set that made the key, -1 = the file */
    jnode *val;
} jentry;

struct jnode {
    jn_type type;
    int line, set;   /* where the node starts, as in jentry */
    char *text;      /* scalar text, NUL-terminated */
    size_t len;      /* scalar length in bytes (text may hold a NUL) */
    int plain;       /* scalar written without quotes or tag */
    int n, cap;      /* entries of a mapping or sequence */
    jentry *ent;
};

static jnode *node_new(jn_type type, int line, int set) {
    jnode *n = at_calloc(1, sizeof *n, "job: yaml node");
    n->type = type;
    n->line = line;
    n->set = set;
    return n;
}

static void node_free(jnode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        free(n->ent[i].key);
        node_free(n->ent[i].val);
    }
    free(n->ent);
    free(n->text);
    free(n);
}

/* Append an entry; takes ownership of key (may be NULL) and val. */
static void node_push(jnode *n, char *key, int line, int set, jnode *val) {
    if (n->n == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 8;
        n->ent = at_realloc(n->ent, (size_t)n->cap * sizeof *n->ent,
                            "job: yaml entries");
    }
    n->ent[n->n++] = (jentry){key, line, set, val};
}

static int node_find(const jnode *map, const char *key) {
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->ent[i].key, key) == 0) return i;
    return -1;
}

/* A plain empty scalar, "~" or "null": YAML's null. */
static int node_is_null(const jnode *v) {
    if (v->type != JN_SCALAR || !v->plain) return 0;
    const char *s = v->text;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* ------------------------------------------------------- string builder */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_vadd(sbuf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    AT_CHECK(k >= 0);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = 2 * (b->n + (size_t)k + 1);
        b->s = at_realloc(b->s, b->cap, "job: text");
    }
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    b->n += (size_t)k;
}

static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sb_vadd(b, fmt, ap);
    va_end(ap);
}

/* The builder's text; "" (allocated) when nothing was added. */
static char *sb_take(sbuf *b) {
    if (!b->s) sb_add(b, "%s", "");
    char *s = b->s;
    *b = (sbuf){0};
    return s;
}

/* ------------------------------------------------------------- messages */

typedef struct {
    const char *source;       /* the job file's name in messages */
    const char *const *sets;  /* the --set strings */
    int n_sets;
    at_err *err;
} ctx;

/* Record "WHERE: PATH: message" (PATH may be NULL) where WHERE is
 * "file:line", "file" (line 0 from the file) or "--set ..." (set >= 0). */
static int fail(const ctx *c, int line, int set, const char *path,
                const char *fmt, ...) {
    char msg[AT_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[AT_ERR_MSG];
    if (set >= 0)
        snprintf(where, sizeof where, "--set %s", c->sets[set]);
    else if (line > 0)
        snprintf(where, sizeof where, "%s:%d", c->source, line);
    else
        snprintf(where, sizeof where, "%s", c->source);
    if (path)
        return at_err_set(c->err, AT_EUSER, "%s: %s: %s", where, path, msg);
    return at_err_set(c->err, AT_EUSER, "%s: %s", where, msg);
}

static int fail_at(const ctx *c, const jnode *v, const char *path,
                   const char *what, const char *got) {
    return fail(c, v->line, v->set, path, "expected %s, got %s", what, got);
}

/* How a value is shown after "got": 'text' for plain scalars, "text" for
 * quoted ones, or what kind of thing it is. quoted_note adds "(quoted, so a
 * string)" to quoted text, for fields that want a number or a boolean. */
static const char *show_note(const jnode *v, char *buf, size_t cap, int quoted_note) {
    if (v->type != JN_SCALAR || node_is_null(v)) {
        snprintf(buf, cap, "%s", v->type == JN_MAP   ? "a mapping"
                                 : v->type == JN_SEQ ? "a list"
                                                     : "an empty value");
        return buf;
    }
    char t[SHOW_MAX + 4];
    size_t k = strlen(v->text);
    if (k > SHOW_MAX) {
        memcpy(t, v->text, SHOW_MAX);
        memcpy(t + SHOW_MAX, "...", 4);
    } else {
        memcpy(t, v->text, k + 1);
    }
    if (v->plain)
        snprintf(buf, cap, "'%s'", t);
    else
        snprintf(buf, cap, "\"%s\"%s", t, quoted_note ? " (quoted, so a string)" : "");
    return buf;
}

static const char *show(const jnode *v, char *buf, size_t cap) {
    return show_note(v, buf, cap, 0);
}

/* --------------------------------------------------------- YAML reading */

typedef struct {
    yaml_parser_t p;
    const ctx *c;
    const char *text;
    int set; /* -1 while reading the file, else the --set being read */
} reader;

static int rd_syntax_error(const reader *r) {
    const yaml_parser_t *p = &r->p;
    const char *problem = p->problem ? p->problem : "out of memory";
    size_t line, col;
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry a byte offset, not a mark. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && r->text[i]; i++) {
            if (r->text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    } else {
        line = p->problem_mark.line + 1;
        col = p->problem_mark.column + 1;
    }
    char extra[160] = "";
    if (p->context)
        snprintf(extra, sizeof extra, " (%s at line %zu)", p->context,
                 p->context_mark.line + 1);
    if (r->set >= 0)
        return at_err_set(r->c->err, AT_EUSER,
                          "--set %s: cannot parse the value: %s at column %zu",
                          r->c->sets[r->set], problem, col);
    return at_err_set(r->c->err, AT_EUSER, "%s:%zu:%zu: YAML syntax error: %s%s",
                      r->c->source, line, col, problem, extra);
}

static int rd_next(reader *r, yaml_event_t *ev) {
    if (yaml_parser_parse(&r->p, ev)) return 0;
    return rd_syntax_error(r);
}

static int rd_line(const reader *r, const yaml_event_t *ev) {
    return r->set >= 0 ? 0 : (int)ev->start_mark.line + 1;
}

/* Build the node that starts with event *ev (consumed). */
static int rd_node(reader *r, yaml_event_t *ev, int depth, jnode **out) {
    const ctx *c = r->c;
    int line = rd_line(r, ev);
    *out = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        jnode *n = node_new(JN_SCALAR, line, r->set);
        n->len = ev->data.scalar.length;
        n->text = at_malloc(n->len + 1, "job: yaml scalar");
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                   ev->data.scalar.plain_implicit;
        yaml_event_delete(ev);
        *out = n;
        return 0;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        yaml_event_delete(ev);
        return fail(c, line, r->set, NULL,
                    "YAML aliases (*name) are not supported in job files");
    }
    if (ev->type != YAML_SEQUENCE_START_EVENT &&
        ev->type != YAML_MAPPING_START_EVENT) {
        yaml_event_delete(ev);
        return at_err_set(c->err, AT_EINTERNAL, "job: unexpected YAML event");
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_delete(ev);
    if (depth >= MAX_DEPTH)
        return fail(c, line, r->set, NULL, "YAML nested deeper than %d levels",
                    MAX_DEPTH);
    jnode *n = node_new(is_map ? JN_MAP : JN_SEQ, line, r->set);
    for (;;) {
        yaml_event_t e;
        if (rd_next(r, &e)) goto fail;
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        char *key = NULL;
        int kline = 0;
        if (is_map) {
            kline = rd_line(r, &e);
            if (e.type != YAML_SCALAR_EVENT ||
                strlen((const char *)e.data.scalar.value) != e.data.scalar.length) {
                yaml_event_delete(&e);
                fail(c, kline, r->set, NULL, "mapping keys must be plain text");
                goto fail;
            }
            key = at_strdup((const char *)e.data.scalar.value, "job: yaml key");
            yaml_event_delete(&e);
            if (rd_next(r, &e)) {
                free(key);
                goto fail;
            }
        }
        jnode *v;
        if (rd_node(r, &e, depth + 1, &v)) {
            free(key);
            goto fail;
        }
        node_push(n, key, kline, r->set, v);
    }
    *out = n;
    return 0;
fail:
    node_free(n);
    return c->err->code;
}

/* Parse one YAML document into *root (NULL for an empty stream). set < 0
 * reads the job file, set >= 0 the value of that --set. */
static int rd_tree(const ctx *c, const char *text, int set, jnode **root) {
    reader r = {.c = c, .text = text, .set = set};
    *root = NULL;
    if (!yaml_parser_initialize(&r.p))
        return at_err_set(c->err, AT_EIO, "job: cannot initialise libyaml");
    yaml_parser_set_input_string(&r.p, (const unsigned char *)text, strlen(text));
    yaml_event_t e;
    int rc = rd_next(&r, &e); /* STREAM_START */
    if (!rc) {
        yaml_event_delete(&e);
        rc = rd_next(&r, &e);
    }
    if (!rc && e.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&e);
    } else if (!rc) {
        AT_CHECK(e.type == YAML_DOCUMENT_START_EVENT);
        yaml_event_delete(&e);
        rc = rd_next(&r, &e);
        if (!rc) rc = rd_node(&r, &e, 0, root);
        if (!rc) rc = rd_next(&r, &e); /* DOCUMENT_END */
        if (!rc) {
            yaml_event_delete(&e);
            rc = rd_next(&r, &e);
        }
        if (!rc) {
            if (e.type != YAML_STREAM_END_EVENT)
                rc = fail(c, rd_line(&r, &e), set, NULL,
                          "only one YAML document is allowed (found a second "
                          "'---')");
            yaml_event_delete(&e);
        }
    }
    yaml_parser_delete(&r.p);
    if (rc) {
        node_free(*root);
        *root = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------- the schema */

typedef enum {
    T_SECTION = 1, /* a mapping of fields */
    T_METHODS,     /* the list of method mappings */
    T_STRING,      /* char[cap] */
    T_NAME,        /* char[cap] of [A-Za-z0-9_-]+ */
    T_INT,         /* int */
    T_U64,         /* uint64_t */
    T_NUMBER,      /* double */
    T_BOOL,        /* int 0/1 */
    T_ENUM,        /* enum (int-sized), value = index in names + 1 */
    T_ROWS,        /* job.row_start, job.row_end */
    T_TARGET,      /* job_method.target, target_class */
    T_HIDDEN,      /* job.n_hidden, job.hidden */
    T_DURATION,    /* double seconds: a number, or "90s", "30m", "2h", "1d",
                      "MM:SS", "HH:MM:SS", "D-HH:MM:SS" (SLURM's forms) */
} ftype;

typedef enum {
    NUM_ANY = 0,
    NUM_POS,    /* > 0 */
    NUM_NONNEG, /* >= 0 */
    NUM_UNIT,   /* in [0, 1) */
} numrange;

typedef struct {
    ftype t;
    unsigned req;   /* purposes that require it (PB bits) */
    unsigned kinds; /* methods[] fields: the kinds that take it (KB bits) */
    size_t off;     /* destination in job, or in job_method for methods[] */
    size_t cap;     /* T_STRING, T_NAME: size of the destination */
    int nonempty;   /* T_STRING: "" is an error */
    int64_t lo, hi; /* T_INT, T_U64: inclusive; hi = 0: the type's max */
    numrange num;   /* T_NUMBER */
    const char *const *names; /* T_ENUM: NULL-terminated */
} rule;

#define PB(p) (1u << (p))
#define P_RUN PB(JOB_PURPOSE_RUN)
#define P_TRAIN PB(JOB_PURPOSE_TRAIN)
#define P_ALL (P_RUN | P_TRAIN | PB(JOB_PURPOSE_ANY))
#define KB(k) (1u << (k))
#define K_SAL KB(JOB_METHOD_SALIENCY)
#define K_IXG KB(JOB_METHOD_INPUT_X_GRADIENT)
#define K_IG KB(JOB_METHOD_INTEGRATED_GRADIENTS)
#define K_ALL (K_SAL | K_IXG | K_IG)
#define JOFF(m) offsetof(job, m)
#define MOFF(m) offsetof(job_method, m)

static const char *const KIND_NAMES[] = {"saliency", "input_x_gradient",
                                         "integrated_gradients", NULL};
static const char *const QUAD_NAMES[] = {"riemann_left", "riemann_right",
                                         "riemann_middle", "riemann_trapezoid",
                                         "gauss_legendre", NULL};
static const char *const BASELINE_NAMES[] = {"zero", "constant", "mean", NULL};
static const char *const SCHED_NAMES[] = {"static", "dynamic", NULL};

/* The schema: X(path, doc type, default, doc line, rule...). The default is
 * YAML text applied through the same converter as job values, "required"
 * (no default; required for the purposes in .req) or "—" (no default). The
 * order is the order of sections and fields in emitted jobs and docs. */
#define SCHEMA(X)                                                              \
    X("data", "mapping", "{}",                                                 \
      "The dataset: which file, split and rows to read.", .t = T_SECTION)      \
    X("data.path", "string", "required",                                       \
      "HDF5 dataset file (docs/format.md), relative to the working "           \
      "directory; required by run and train.",                                 \
      .t = T_STRING, .req = P_RUN | P_TRAIN, .off = JOFF(data_path),           \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("data.split", "string", "\"test\"",                                      \
      "Split (group) of the dataset file to read rows from.",                  \
      .t = T_STRING, .off = JOFF(data_split), .cap = JOB_NAME_MAX,             \
      .nonempty = 1)                                                           \
    X("data.rows", "string or integer", "\":\"",                               \
      "Rows: \"start:end\" half-open, either side optional (\":500\", "        \
      "\"100:\"), or a count n meaning \"0:n\"; \":\" = all rows.",            \
      .t = T_ROWS)                                                             \
    X("model", "mapping", "{}", "The model file, and its shape for training.", \
      .t = T_SECTION)                                                          \
    X("model.path", "string", "required",                                      \
      "Model file: read by run, written by train; required by both.",          \
      .t = T_STRING, .req = P_RUN | P_TRAIN, .off = JOFF(model_path),          \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("model.hidden", "list", "required",                                      \
      "Hidden layer widths, 1 to 16 integers in 1..1000000, e.g. [256, "       \
      "256]; required by train, ignored by run (the model file has them).",    \
      .t = T_HIDDEN, .req = P_TRAIN)                                           \
    X("methods", "list", "required",                                           \
      "Attribution methods to compute, 1 to 32 mappings; required by run.",    \
      .t = T_METHODS, .req = P_RUN)                                            \
    X("methods[].name", "string", "required",                                  \
      "Unique name: letters, digits, _ and -, at most 63 characters. Names "   \
      "the results group; --set can address the method by it.",               \
      .t = T_NAME, .req = P_ALL, .kinds = K_ALL, .off = MOFF(name),            \
      .cap = JOB_NAME_MAX)                                                     \
    X("methods[].kind", "enum", "required",                                    \
      "saliency, input_x_gradient or integrated_gradients; decides which "     \
      "other fields the method takes.",                                        \
      .t = T_ENUM, .req = P_ALL, .kinds = K_ALL, .off = MOFF(kind),            \
      .names = KIND_NAMES)                                                     \
    X("methods[].target", "enum or integer", "predicted",                      \
      "Class explained: predicted (argmax of the logits), label (the "         \
      "dataset's label) or a class index >= 0.",                               \
      .t = T_TARGET, .kinds = K_ALL)                                           \
    X("methods[].n_steps", "integer", "50",                                    \
      "integrated_gradients: points on the path, 1..100000 (at least 2 for "   \
      "riemann_trapezoid).",                                                   \
      .t = T_INT, .kinds = K_IG, .off = MOFF(n_steps), .lo = 1, .hi = 100000)  \
    X("methods[].quadrature", "enum", "gauss_legendre",                        \
      "integrated_gradients: riemann_left, riemann_right, riemann_middle, "    \
      "riemann_trapezoid or gauss_legendre.",                                  \
      .t = T_ENUM, .kinds = K_IG, .off = MOFF(quadrature),                     \
      .names = QUAD_NAMES)                                                     \
    X("methods[].baseline", "enum", "zero",                                    \
      "integrated_gradients: zero, constant (every feature baseline_value) "   \
      "or mean (per-feature mean over baseline_split).",                       \
      .t = T_ENUM, .kinds = K_IG, .off = MOFF(baseline),                       \
      .names = BASELINE_NAMES)                                                 \
    X("methods[].baseline_value", "number", "0.0",                             \
      "integrated_gradients with baseline: constant only: the value of "       \
      "every baseline feature.",                                               \
      .t = T_NUMBER, .kinds = K_IG, .off = MOFF(baseline_value))               \
    X("methods[].baseline_split", "string", "\"train\"",                       \
      "integrated_gradients with baseline: mean only: the split whose "        \
      "per-feature mean is the baseline.",                                     \
      .t = T_STRING, .kinds = K_IG, .off = MOFF(baseline_split),               \
      .cap = JOB_NAME_MAX, .nonempty = 1)                                      \
    X("methods[].abs", "boolean", "true",                                      \
      "saliency: true = absolute value of the gradient, false = signed.",      \
      .t = T_BOOL, .kinds = K_SAL, .off = MOFF(abs_value))                     \
    X("run", "mapping", "{}", "How the work is cut into units and run.",       \
      .t = T_SECTION)                                                          \
    X("run.scheduler", "enum", "static",                                       \
      "Who computes which unit: static = contiguous cost-weighted blocks per " \
      "rank; dynamic = ranks ask rank 0 for chunks that shrink toward the "  \
      "end. Results are the same bytes either way.",                          \
      .t = T_ENUM, .off = JOFF(scheduler), .names = SCHED_NAMES)               \
    X("run.block_rows", "integer", "64", "Rows per work unit, 1..1000000.",    \
      .t = T_INT, .off = JOFF(block_rows), .lo = 1, .hi = 1000000)             \
    X("run.step_block", "integer", "0",                                        \
      "Path steps per work unit, >= 0; 0 = all steps of a row block in one "   \
      "unit.",                                                                 \
      .t = T_INT, .off = JOFF(step_block), .lo = 0)                            \
    X("run.seed", "integer", "0",                                              \
      "Seed of the counter-based RNG, >= 0; results do not depend on the "     \
      "number of ranks.",                                                      \
      .t = T_U64, .off = JOFF(seed), .lo = 0)                                  \
    X("run.blas_threads", "integer", "1",                                      \
      "OpenBLAS threads per rank, 1..256 (ranks are the parallelism).",        \
      .t = T_INT, .off = JOFF(blas_threads), .lo = 1, .hi = 256)               \
    X("run.progress_interval", "number", "5.0",                                \
      "Seconds between progress lines, > 0.",                                  \
      .t = T_NUMBER, .off = JOFF(progress_interval), .num = NUM_POS)           \
    X("run.checkpoint_interval", "number", "60.0",                             \
      "Seconds of finished work a rank holds before writing it to a shard "    \
      "(fsync'd); >= 0, 0 = a shard after every unit. A kill loses at most "   \
      "this much work per rank.",                                              \
      .t = T_NUMBER, .off = JOFF(checkpoint_interval), .num = NUM_NONNEG)      \
    X("run.max_wall_time", "duration", "0",                                    \
      "Stop cleanly at a unit boundary before this much time has passed and "  \
      "exit 75 (resumable); seconds, or \"90m\", \"2h\", \"1-00:00:00\"; 0 = no "   \
      "limit.",                                                                \
      .t = T_DURATION, .off = JOFF(max_wall_time))                             \
    X("run.stop_file", "string", "\"\"",                                        \
      "When this file appears the run stops cleanly at a unit boundary and "   \
      "exits 75; \"\" = OUTPUT.stop (output.path with .stop appended).",        \
      .t = T_STRING, .off = JOFF(stop_file), .cap = JOB_PATH_MAX)              \
    X("train", "mapping", "—",                                                 \
      "Training settings; its presence (even empty) enables them. Required "   \
      "by train.",                                                             \
      .t = T_SECTION, .req = P_TRAIN)                                          \
    X("train.epochs", "integer", "10", "Passes over the data, 1..100000.",     \
      .t = T_INT, .off = JOFF(epochs), .lo = 1, .hi = 100000)                  \
    X("train.batch_size", "integer", "128", "Rows per minibatch, 1..1000000.", \
      .t = T_INT, .off = JOFF(batch_size), .lo = 1, .hi = 1000000)             \
    X("train.lr", "number", "0.05", "SGD learning rate, > 0.", .t = T_NUMBER,  \
      .off = JOFF(lr), .num = NUM_POS)                                         \
    X("train.momentum", "number", "0.9", "SGD momentum, in [0, 1).",           \
      .t = T_NUMBER, .off = JOFF(momentum), .num = NUM_UNIT)                   \
    X("train.weight_decay", "number", "0.0", "L2 weight decay, >= 0.",         \
      .t = T_NUMBER, .off = JOFF(weight_decay), .num = NUM_NONNEG)             \
    X("train.seed", "integer", "0",                                            \
      "Seed of parameter initialisation and minibatch order, >= 0.",           \
      .t = T_U64, .off = JOFF(train_seed), .lo = 0)                            \
    X("train.eval_split", "string", "\"test\"",                                \
      "Split evaluated after each epoch; \"\" = no evaluation.",               \
      .t = T_STRING, .off = JOFF(eval_split), .cap = JOB_NAME_MAX)             \
    X("output", "mapping", "{}", "The results file.", .t = T_SECTION)          \
    X("output.path", "string", "required",                                     \
      "Results file (HDF5, docs/format.md); required by run.",                 \
      .t = T_STRING, .req = P_RUN, .off = JOFF(output_path),                   \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("output.compression", "integer", "4",                                    \
      "Deflate level of the score datasets, 0..9 (0 = none).", .t = T_INT,     \
      .off = JOFF(compression), .lo = 0, .hi = 9)                              \
    X("output.overwrite", "boolean", "false",                                  \
      "true = replace an existing results file of another job when this run "  \
      "finishes (until then it is left as it is).", .t = T_BOOL,               \
      .off = JOFF(overwrite))                                                  \
    X("output.keep_shards", "boolean", "false",                                \
      "true = keep OUTPUT.shards/ (the per-rank unit files) after the "        \
      "results file is assembled.", .t = T_BOOL, .off = JOFF(keep_shards))

#define AS_DOC(path, type, deflt, doc, ...) {path, type, deflt, doc},
#define AS_RULE(path, type, deflt, doc, ...) {__VA_ARGS__},

static const job_field_doc DOCS[] = {SCHEMA(AS_DOC)};
static const rule RULES[] = {SCHEMA(AS_RULE)};

enum { N_RULES = (int)(sizeof RULES / sizeof RULES[0]) };
_Static_assert(sizeof DOCS / sizeof DOCS[0] == sizeof RULES / sizeof RULES[0],
               "schema tables differ");

const job_field_doc *job_schema_fields(int *n) {
    AT_CHECK(n != NULL);
    *n = N_RULES;
    return DOCS;
}

static int has_default(int ri) {
    return strcmp(DOCS[ri].deflt, "required") && strcmp(DOCS[ri].deflt, "—");
}

/* After the last '.' (the key inside its section). */
static const char *leaf(const char *path) {
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

/* Is path a direct field of sect ("data", "methods[]"; NULL = top level)? */
static int in_section(const char *path, const char *sect) {
    if (!sect) return strchr(path, '.') == NULL;
    size_t k = strlen(sect);
    return strncmp(path, sect, k) == 0 && path[k] == '.' &&
           strchr(path + k + 1, '.') == NULL;
}

static int find_rule(const char *sect, const char *key) {
    for (int i = 0; i < N_RULES; i++)
        if (in_section(DOCS[i].path, sect) && !strcmp(leaf(DOCS[i].path), key))
            return i;
    return -1;
}

static int rule_index(const char *path) {
    for (int i = 0; i < N_RULES; i++)
        if (!strcmp(DOCS[i].path, path)) return i;
    AT_CHECK(!"schema path not in the table");
    return -1;
}

/* "a, b, c": the keys of sect, or of a method kind when kinds != 0. */
static char *known_keys(const char *sect, unsigned kinds) {
    sbuf b = {0};
    for (int i = 0; i < N_RULES; i++) {
        if (!in_section(DOCS[i].path, sect)) continue;
        if (kinds && !(RULES[i].kinds & kinds)) continue;
        sb_add(&b, "%s%s", b.n ? ", " : "", leaf(DOCS[i].path));
    }
    return sb_take(&b);
}

static const char *enum_name(const char *const *names, int v) {
    for (int i = 0; names[i]; i++)
        if (i + 1 == v) return names[i];
    return NULL;
}

const char *job_method_kind_name(job_method_kind k) {
    const char *s = enum_name(KIND_NAMES, (int)k);
    return s ? s : "?";
}

const char *job_quadrature_name(job_quadrature q) {
    const char *s = enum_name(QUAD_NAMES, (int)q);
    return s ? s : "?";
}

const char *job_baseline_name(job_baseline b) {
    const char *s = enum_name(BASELINE_NAMES, (int)b);
    return s ? s : "?";
}

const char *job_scheduler_name(job_scheduler s) {
    const char *n = enum_name(SCHED_NAMES, (int)s);
    return n ? n : "?";
}

const char *job_target_name(const job_method *m, char *buf, size_t cap) {
    AT_CHECK(m != NULL && buf != NULL && cap >= 16);
    if (m->target == JOB_TARGET_PREDICTED) return "predicted";
    if (m->target == JOB_TARGET_LABEL) return "label";
    snprintf(buf, cap, "%d", m->target_class);
    return buf;
}

/* ------------------------------------------------------ scalar grammar */

/* A plain decimal integer [-+]?(0|[1-9][0-9]*): 0 and *neg, *mag; -1 when
 * s is not one; 1 when its magnitude does not fit in 64 bits. */
static int parse_int(const char *s, int *neg, uint64_t *mag) {
    *neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0')) return -1;
    uint64_t v = 0;
    int big = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) big = 1;
        v = v * 10 + d;
    }
    *mag = v;
    return big;
}

static int is_digits(const char *s, const char **end) {
    const char *p = s;
    while (*p >= '0' && *p <= '9') p++;
    *end = p;
    return p > s;
}

/* A decimal number [-+]?(d+(.d*)?|.d+)([eE][-+]?d+)?: 0 and *out; -1 when s
 * is not one; 1 when it is not finite. */
static int parse_num(const char *s, double *out);

/* A duration in seconds: "3600", "1.5", "90s", "30m", "2h", "1d", "MM:SS",
 * "HH:MM:SS", "D-HH:MM:SS". Returns 0, or -1 when s is none of these. */
static int parse_duration(const char *s, double *out) {
    double x;
    if (parse_num(s, &x) == 0) {
        if (!(x >= 0)) return -1;
        *out = x;
        return 0;
    }
    size_t n = strlen(s);
    if (n >= 2 && strchr("smhd", s[n - 1]) && !strchr(s, ':')) {
        char buf[64];
        if (n - 1 >= sizeof buf) return -1;
        memcpy(buf, s, n - 1);
        buf[n - 1] = '\0';
        if (parse_num(buf, &x) || !(x >= 0)) return -1;
        double unit = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
        if (!isfinite(x * unit)) return -1; /* "1e308d" */
        *out = x * unit;
        return 0;
    }
    /* [D-]HH:MM:SS or MM:SS, all integers */
    long part[4] = {0};
    int np = 0;
    long days = 0;
    const char *q = s;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        days = strtol(s, &end, 10);
        if (end != dash || end == s || days < 0) return -1;
        q = dash + 1;
    }
    while (*q) {
        if (np == 3 || *q < '0' || *q > '9') return -1;
        char *end;
        part[np++] = strtol(q, &end, 10);
        if (*end == ':') {
            q = end + 1;
            if (!*q) return -1;
        } else if (*end) {
            return -1;
        } else {
            q = end;
        }
    }
    if (np < 2 || (dash && np != 3)) return -1;
    double secs = np == 3 ? part[0] * 3600.0 + part[1] * 60.0 + part[2] : part[0] * 60.0 + part[1];
    if ((np == 3 && (part[1] > 59 || part[2] > 59)) || (np == 2 && part[1] > 59)) return -1;
    *out = days * 86400.0 + secs;
    return 0;
}

static int parse_num(const char *s, double *out) {
    const char *p = s, *q;
    if (*p == '-' || *p == '+') p++;
    int mant = is_digits(p, &q);
    p = q;
    if (*p == '.') {
        mant |= is_digits(p + 1, &q);
        p = q;
    }
    if (!mant) return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!is_digits(p, &q)) return -1;
        p = q;
    }
    if (*p) return -1;
    *out = strtod(s, NULL);
    return isfinite(*out) ? 0 : 1;
}

static int parse_bool(const char *s) {
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return 0;
    return -1;
}

/* Rows "a:b" (sides optional, a < b when both) into [*a, *b), b = -1 for
 * "to the end". Returns 0 or -1. */
static int parse_rows(const char *s, int64_t *a, int64_t *b) {
    const char *colon = strchr(s, ':');
    if (!colon || strchr(colon + 1, ':')) return -1;
    int64_t v[2] = {0, -1};
    const char *side[2] = {s, colon + 1};
    size_t len[2] = {(size_t)(colon - s), strlen(colon + 1)};
    for (int k = 0; k < 2; k++) {
        if (len[k] == 0) continue;
        uint64_t x = 0;
        for (size_t i = 0; i < len[k]; i++) {
            char ch = side[k][i];
            if (ch < '0' || ch > '9') return -1;
            uint64_t d = (uint64_t)(ch - '0');
            if (x > ((uint64_t)INT64_MAX - d) / 10) return -1; /* up to INT64_MAX */
            x = x * 10 + d;
        }
        v[k] = (int64_t)x;
    }
    if (v[1] >= 0 && v[0] >= v[1]) return -1;
    *a = v[0];
    *b = v[1];
    return 0;
}

/* ------------------------------------------------------------ converting */

static void int_expect(const rule *r, char *buf, size_t cap) {
    if (r->hi)
        snprintf(buf, cap, "an integer in %" PRId64 "..%" PRId64, r->lo, r->hi);
    else
        snprintf(buf, cap, "an integer >= %" PRId64, r->lo);
}

static const char *num_expect(numrange nr) {
    switch (nr) {
    case NUM_POS: return "a number > 0";
    case NUM_NONNEG: return "a number >= 0";
    case NUM_UNIT: return "a number in [0, 1)";
    case NUM_ANY: break;
    }
    return "a number";
}

static int num_ok(numrange nr, double v) {
    switch (nr) {
    case NUM_POS: return v > 0;
    case NUM_NONNEG: return v >= 0;
    case NUM_UNIT: return v >= 0 && v < 1;
    case NUM_ANY: break;
    }
    return 1;
}

/* An integer in [lo, hi] (lo >= 0) from a plain scalar: 0, or an error
 * naming path. what is the expectation ("an integer >= 1"); hi_shown says
 * whether it names hi, else a value above hi is reported as too large. */
static int conv_int(const ctx *c, const jnode *v, const char *path, int64_t lo,
                    uint64_t hi, const char *what, int hi_shown, uint64_t *out) {
    AT_CHECK(lo >= 0);
    char got[SHOW_MAX + 64];
    show_note(v, got, sizeof got, 1);
    int neg = 0;
    uint64_t mag = 0;
    int rc = v->type == JN_SCALAR && v->plain ? parse_int(v->text, &neg, &mag) : -1;
    if (rc < 0) return fail_at(c, v, path, what, got);
    int big = rc > 0 || (!neg && mag > hi);
    if (big || (neg && mag > 0) || mag < (uint64_t)lo)
        return fail(c, v->line, v->set, path, "expected %s, got %s%s", what, got,
                    big && !hi_shown ? " (too large)" : "");
    *out = mag;
    return 0;
}

/* A string scalar (any style) fitting in cap bytes. */
static int conv_str(const ctx *c, const jnode *v, const char *path, size_t cap,
                    int nonempty, const char *what, char *dst) {
    char got[SHOW_MAX + 64];
    if (v->type != JN_SCALAR || node_is_null(v))
        return fail(c, v->line, v->set, path, "expected %s, got %s%s", what,
                    show(v, got, sizeof got),
                    v->type == JN_SCALAR && !nonempty ? " (write \"\" for an empty string)"
                                                      : "");
    if (strlen(v->text) != v->len)
        return fail(c, v->line, v->set, path, "expected %s, got text with a NUL "
                    "character", what);
    if (nonempty && v->len == 0)
        return fail(c, v->line, v->set, path, "expected %s, got \"\"", what);
    if (v->len >= cap)
        return fail(c, v->line, v->set, path,
                    "expected %s of at most %zu bytes, got %zu bytes", what,
                    cap - 1, v->len);
    memset(dst, 0, cap); /* the same bytes whatever was there before */
    memcpy(dst, v->text, v->len + 1);
    return 0;
}

/* data.rows: "a:b" (any style) or a plain row count n = "0:n". */
static int conv_rows(const ctx *c, const jnode *v, const char *path, job *j) {
    const char *what = "\"start:end\" (either side optional, start < end, "
                       "e.g. \"0:1000\", \":500\", \"100:\") or a row count >= 1";
    char got[SHOW_MAX + 64];
    show(v, got, sizeof got);
    if (v->type != JN_SCALAR || node_is_null(v)) return fail_at(c, v, path, what, got);
    int neg;
    uint64_t mag;
    if (v->plain && parse_int(v->text, &neg, &mag) == 0) {
        if (neg || mag == 0 || mag > (uint64_t)INT64_MAX)
            return fail_at(c, v, path, what, got);
        j->row_start = 0;
        j->row_end = (int64_t)mag;
        return 0;
    }
    if (parse_rows(v->text, &j->row_start, &j->row_end))
        return fail_at(c, v, path, what, got);
    return 0;
}

/* methods[].target: predicted | label (any style) or a plain class index. */
static int conv_target(const ctx *c, const jnode *v, const char *path,
                       job_method *m) {
    const char *what = "predicted, label or a class index >= 0";
    char got[SHOW_MAX + 64];
    show_note(v, got, sizeof got, 1);
    if (v->type != JN_SCALAR) return fail_at(c, v, path, what, got);
    if (!strcmp(v->text, "predicted") || !strcmp(v->text, "label")) {
        m->target = v->text[0] == 'p' ? JOB_TARGET_PREDICTED : JOB_TARGET_LABEL;
        m->target_class = 0;
        return 0;
    }
    int neg;
    uint64_t mag;
    if (!v->plain || parse_int(v->text, &neg, &mag) != 0 || (neg && mag > 0))
        return fail_at(c, v, path, what, got);
    if (mag > INT_MAX)
        return fail(c, v->line, v->set, path, "expected %s, got %s (too large)",
                    what, got);
    m->target = JOB_TARGET_CLASS;
    m->target_class = (int)mag;
    return 0;
}

/* model.hidden: a list of 1..JOB_MAX_HIDDEN widths. */
static int conv_hidden(const ctx *c, const jnode *v, const char *path, job *j) {
    char got[SHOW_MAX + 64], what[96], ipath[128];
    snprintf(what, sizeof what, "a list of 1 to %d layer widths", JOB_MAX_HIDDEN);
    if (v->type != JN_SEQ) return fail_at(c, v, path, what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > JOB_MAX_HIDDEN) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return fail_at(c, v, path, what, got);
    }
    snprintf(what, sizeof what, "an integer in 1..%d", HIDDEN_MAX_WIDTH);
    for (int i = 0; i < v->n; i++) {
        uint64_t w;
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (conv_int(c, v->ent[i].val, ipath, 1, HIDDEN_MAX_WIDTH, what, 1, &w))
            return c->err->code;
        j->hidden[i] = (int)w;
    }
    j->n_hidden = v->n;
    return 0;
}

/* Convert value v of rule ri into base (a job, or a job_method for
 * methods[] fields). path names the field in messages. */
static int conv(const ctx *c, int ri, const char *path, const jnode *v,
                void *base) {
    const rule *r = &RULES[ri];
    char *dst = (char *)base + r->off;
    char got[SHOW_MAX + 64], what[256];
    switch (r->t) {
    case T_STRING:
        return conv_str(c, v, path, r->cap, r->nonempty,
                        r->nonempty ? "a non-empty string" : "a string", dst);
    case T_NAME: {
        const char *w = "a name of letters, digits, '_' and '-'";
        if (conv_str(c, v, path, r->cap, 1, w, dst)) return c->err->code;
        if (strspn(dst, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_-") != strlen(dst))
            return fail_at(c, v, path, w, show(v, got, sizeof got));
        return 0;
    }
    case T_INT:
    case T_U64: {
        uint64_t hi = r->hi ? (uint64_t)r->hi : r->t == T_INT ? INT_MAX : UINT64_MAX;
        uint64_t x;
        int_expect(r, what, sizeof what);
        if (conv_int(c, v, path, r->lo, hi, what, r->hi != 0, &x))
            return c->err->code;
        if (r->t == T_INT)
            *(int *)(void *)dst = (int)x;
        else
            *(uint64_t *)(void *)dst = x;
        return 0;
    }
    case T_NUMBER: {
        double x = 0;
        int rc = v->type == JN_SCALAR && v->plain ? parse_num(v->text, &x) : -1;
        if (rc || !num_ok(r->num, x))
            return fail(c, v->line, v->set, path, "expected %s, got %s%s",
                        num_expect(r->num), show_note(v, got, sizeof got, 1),
                        rc > 0 ? " (not finite)" : "");
        *(double *)(void *)dst = x;
        return 0;
    }
    case T_BOOL: {
        int b = v->type == JN_SCALAR && v->plain ? parse_bool(v->text) : -1;
        if (b < 0)
            return fail_at(c, v, path, "true or false", show_note(v, got, sizeof got, 1));
        *(int *)(void *)dst = b;
        return 0;
    }
    case T_ENUM: {
        sbuf b = {0};
        if (v->type == JN_SCALAR)
            for (int i = 0; r->names[i]; i++)
                if (!strcmp(v->text, r->names[i])) {
                    *(int *)(void *)dst = i + 1;
                    return 0;
                }
        for (int i = 0; r->names[i]; i++)
            sb_add(&b, "%s%s", i ? ", " : "", r->names[i]);
        snprintf(what, sizeof what, "one of %s", b.s);
        free(b.s);
        return fail_at(c, v, path, what, show(v, got, sizeof got));
    }
    case T_DURATION: {
        double x = 0;
        if (v->type != JN_SCALAR || parse_duration(v->text, &x))
            return fail_at(c, v, path,
                           "a duration >= 0: seconds, or \"90s\", \"30m\", \"2h\", \"1d\", "
                           "\"MM:SS\", \"HH:MM:SS\" or \"D-HH:MM:SS\"",
                           show(v, got, sizeof got));
        *(double *)(void *)dst = x;
        return 0;
    }
    case T_ROWS: return conv_rows(c, v, path, base);
    case T_TARGET: return conv_target(c, v, path, base);
    case T_HIDDEN: return conv_hidden(c, v, path, base);
    case T_SECTION:
    case T_METHODS: break;
    }
    return at_err_set(c->err, AT_EINTERNAL, "job: %s: no converter", path);
}

/* Apply rule ri's default (YAML text in the table) to base. */
static void apply_default(int ri, void *base) {
    at_err e = {0};
    ctx dc = {"<schema default>", NULL, 0, &e};
    jnode *v = NULL;
    int rc = rd_tree(&dc, DOCS[ri].deflt, -1, &v);
    if (!rc && v) rc = conv(&dc, ri, DOCS[ri].path, v, base);
    if (rc || !v) fprintf(stderr, "attrib: bad schema default: %s\n", e.msg);
    AT_CHECK(rc == 0 && v != NULL);
    node_free(v);
}

/* ----------------------------------------------------------- validating */

static void join_path(char *buf, size_t cap, const char *prefix, const char *key) {
    if (prefix)
        snprintf(buf, cap, "%s.%s", prefix, key);
    else
        snprintf(buf, cap, "%s", key);
}

/* Every key of map once; prefix names the map in messages (NULL = top). */
static int check_dups(const ctx *c, const jnode *map, const char *prefix) {
    char path[512];
    for (int i = 0; i < map->n; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(map->ent[i].key, map->ent[k].key)) {
                join_path(path, sizeof path, prefix, map->ent[i].key);
                return fail(c, map->ent[i].line, map->ent[i].set, path,
                            "duplicate key (first given at line %d)",
                            map->ent[k].line);
            }
    return 0;
}

/* Unknown key error: "PATH: unknown key (known keys in SECT: ...)". */
static int fail_unknown(const ctx *c, const jentry *e, const char *prefix,
                        const char *sect) {
    char path[512];
    join_path(path, sizeof path, prefix, e->key);
    char *known = known_keys(sect, 0);
    if (sect)
        fail(c, e->line, e->set, path, "unknown key (known keys in %s: %s)", sect,
             known);
    else
        fail(c, e->line, e->set, path, "unknown key (known top-level keys: %s)",
             known);
    free(known);
    return c->err->code;
}

/* Section si (data, model, run, train, output) from v into j; at[ri] is set
 * to the value node of every field given. */
static int fill_section(const ctx *c, int si, const jnode *v, job *j,
                        const jnode **at) {
    const char *sect = DOCS[si].path;
    char got[SHOW_MAX + 64];
    if (node_is_null(v)) return 0; /* "train:" alone = all defaults */
    if (v->type != JN_MAP)
        return fail_at(c, v, sect, "a mapping of fields", show(v, got, sizeof got));
    if (check_dups(c, v, sect)) return c->err->code;
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule(sect, v->ent[i].key);
        if (ri < 0) return fail_unknown(c, &v->ent[i], sect, sect);
        at[ri] = v->ent[i].val;
        if (conv(c, ri, DOCS[ri].path, v->ent[i].val, j)) return c->err->code;
    }
    return 0;
}

/* Method mapping v into m (zeroed by the caller); idx names it in messages.
 * Order: unknown keys, kind, defaults of the kind, fields (each must belong
 * to the kind), name, cross-field rules. */
static int fill_method(const ctx *c, int idx, const jnode *v, job_method *m) {
    char base[32], path[128], got[SHOW_MAX + 64];
    snprintf(base, sizeof base, "methods[%d]", idx);
    if (v->type != JN_MAP)
        return fail_at(c, v, base, "a mapping with name and kind",
                       show(v, got, sizeof got));
    if (check_dups(c, v, base)) return c->err->code;
    const jnode *at[N_RULES] = {0};
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule("methods[]", v->ent[i].key);
        if (ri < 0) return fail_unknown(c, &v->ent[i], base, "methods[]");
        at[ri] = v->ent[i].val;
    }
    int r_kind = rule_index("methods[].kind"), r_name = rule_index("methods[].name");
    snprintf(path, sizeof path, "%s.kind", base);
    if (!at[r_kind]) return fail(c, v->line, v->set, path, "required field is missing");
    if (conv(c, r_kind, path, at[r_kind], m)) return c->err->code;
    unsigned kb = KB(m->kind);
    for (int ri = 0; ri < N_RULES; ri++)
        if ((RULES[ri].kinds & kb) && has_default(ri)) apply_default(ri, m);
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule("methods[]", v->ent[i].key);
        snprintf(path, sizeof path, "%s.%s", base, v->ent[i].key);
        if (!(RULES[ri].kinds & kb)) {
            char *fields = known_keys("methods[]", kb);
            fail(c, v->ent[i].line, v->ent[i].set, path,
                 "not a field of kind %s (fields: %s)",
                 job_method_kind_name(m->kind), fields);
            free(fields);
            return c->err->code;
        }
        if (conv(c, ri, path, v->ent[i].val, m)) return c->err->code;
    }
    if (!at[r_name]) {
        snprintf(path, sizeof path, "%s.name", base);
        return fail(c, v->line, v->set, path, "required field is missing");
    }
    /* Cross-field rules. */
    int r_steps = rule_index("methods[].n_steps");
    int r_quad = rule_index("methods[].quadrature");
    int r_bval = rule_index("methods[].baseline_value");
    int r_bsplit = rule_index("methods[].baseline_split");
    if (m->kind == JOB_METHOD_INTEGRATED_GRADIENTS &&
        m->quadrature == JOB_QUAD_RIEMANN_TRAPEZOID && m->n_steps < 2) {
        const jnode *w = at[r_steps] ? at[r_steps] : at[r_quad];
        AT_CHECK(w != NULL); /* the default quadrature is not trapezoid */
        snprintf(path, sizeof path, "%s.n_steps", base);
        return fail(c, w->line, w->set, path,
                    "riemann_trapezoid needs n_steps >= 2, got %d", m->n_steps);
    }
    if (at[r_bval] && m->baseline != JOB_BASELINE_CONSTANT) {
        snprintf(path, sizeof path, "%s.baseline_value", base);
        return fail(c, at[r_bval]->line, at[r_bval]->set, path,
                    "only used with baseline: constant (baseline is %s)",
                    job_baseline_name(m->baseline));
    }
    if (at[r_bsplit] && m->baseline != JOB_BASELINE_MEAN) {
        snprintf(path, sizeof path, "%s.baseline_split", base);
        return fail(c, at[r_bsplit]->line, at[r_bsplit]->set, path,
                    "only used with baseline: mean (baseline is %s)",
                    job_baseline_name(m->baseline));
    }
    if (m->baseline != JOB_BASELINE_CONSTANT) m->baseline_value = 0.0;
    if (m->baseline != JOB_BASELINE_MEAN)
        memset(m->baseline_split, 0, sizeof m->baseline_split);
    return 0;
}

/* The methods list: 1..JOB_MAX_METHODS mappings with unique names. */
static int fill_methods(const ctx *c, const jnode *v, job *j) {
    char got[SHOW_MAX + 64], what[64];
    snprintf(what, sizeof what, "a list of 1 to %d methods", JOB_MAX_METHODS);
    if (v->type != JN_SEQ)
        return fail_at(c, v, "methods", what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > JOB_MAX_METHODS) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return fail_at(c, v, "methods", what, got);
    }
    for (int i = 0; i < v->n; i++) {
        const jnode *item = v->ent[i].val;
        if (fill_method(c, i, item, &j->methods[i])) return c->err->code;
        for (int k = 0; k < i; k++)
            if (!strcmp(j->methods[k].name, j->methods[i].name)) {
                const jnode *nv = item->ent[node_find(item, "name")].val;
                const jnode *first = v->ent[k].val;
                first = first->ent[node_find(first, "name")].val;
                char path[64], where[AT_ERR_MSG];
                snprintf(path, sizeof path, "methods[%d].name", i);
                if (first->set >= 0)
                    snprintf(where, sizeof where, ", from --set %s",
                             c->sets[first->set]);
                else
                    snprintf(where, sizeof where, " at line %d", first->line);
                return fail(c, nv->line, nv->set, path,
                            "duplicate method name '%s' (also methods[%d]%s)",
                            j->methods[i].name, k, where);
            }
    }
    j->n_methods = v->n;
    return 0;
}

/* The whole job from the (overridden) tree: defaults, then every top-level
 * key in file order, then the fields that purpose requires. */
static int fill_job(const ctx *c, const jnode *root, job_purpose purpose, job *j) {
    const jnode *at[N_RULES] = {0};
    for (int ri = 0; ri < N_RULES; ri++)
        if (!strstr(DOCS[ri].path, "[]") && strchr(DOCS[ri].path, '.') &&
            has_default(ri))
            apply_default(ri, j);
    if (check_dups(c, root, NULL)) return c->err->code;
    for (int i = 0; i < root->n; i++) {
        const jentry *e = &root->ent[i];
        int ri = find_rule(NULL, e->key);
        if (ri < 0) return fail_unknown(c, e, NULL, NULL);
        at[ri] = e->val;
        int rc = RULES[ri].t == T_METHODS ? fill_methods(c, e->val, j)
                                          : fill_section(c, ri, e->val, j, at);
        if (rc) return rc;
    }
    j->has_train = at[rule_index("train")] != NULL;
    for (int ri = 0; ri < N_RULES; ri++)
        if ((RULES[ri].req & PB(purpose)) && !strstr(DOCS[ri].path, "[]") &&
            !at[ri])
            return fail(c, 0, -1, DOCS[ri].path, "required %s is missing",
                        RULES[ri].t == T_SECTION || RULES[ri].t == T_METHODS
                            ? "section"
                            : "field");
    return 0;
}

/* ------------------------------------------------------------- --set */

/* Entry of seq named by seg: a 0-based index, or the value of the items'
 * "name" key. Returns the index (seq->n, one past the end, only when seg is
 * the path's last segment: append), or -1 after recording an error. shown
 * names seq in messages. */
static int set_find_item(const ctx *c, int si, const jnode *seq, const char *seg,
                         const char *shown, int last) {
    if (seg[strspn(seg, "0123456789")] == '\0') {
        char *end;
        errno = 0;
        unsigned long k = strtoul(seg, &end, 10);
        if (errno == 0 && k < (unsigned long)seq->n) return (int)k;
        if (errno == 0 && k == (unsigned long)seq->n && last) return seq->n;
        fail(c, 0, si, NULL, "%s has no entry %s (it has %d)", shown, seg, seq->n);
        return -1;
    }
    for (int i = 0; i < seq->n; i++) {
        const jnode *it = seq->ent[i].val;
        int k = it->type == JN_MAP ? node_find(it, "name") : -1;
        if (k >= 0 && it->ent[k].val->type == JN_SCALAR &&
            !strcmp(it->ent[k].val->text, seg))
            return i;
    }
    sbuf names = {0};
    for (int i = 0; i < seq->n; i++) {
        const jnode *it = seq->ent[i].val;
        int k = it->type == JN_MAP ? node_find(it, "name") : -1;
        if (k >= 0 && it->ent[k].val->type == JN_SCALAR)
            sb_add(&names, "%s%s", names.n ? ", " : "", it->ent[k].val->text);
    }
    char *list = sb_take(&names);
    if (!strcmp(shown, "methods"))
        fail(c, 0, si, NULL, "no method named '%s' (methods: %s)", seg,
             *list ? list : "none");
    else
        fail(c, 0, si, NULL, "no entry named '%s' in %s (names: %s)", seg, shown,
             *list ? list : "none");
    free(list);
    return -1;
}

/* Apply --set number si to the tree: walk its dotted path from the root
 * (creating missing mapping keys, or an empty mapping in place of a null),
 * then replace or add the last key with the parsed value. */
static int apply_set(const ctx *c, jnode *root, int si) {
    const char *s = c->sets[si];
    const char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return fail(c, 0, si, NULL, "expected section.key=value");
    size_t plen = (size_t)(eq - s);
    char *path = at_malloc(plen + 1, "job: --set path");
    memcpy(path, s, plen);
    path[plen] = '\0';
    jnode *val = NULL;
    sbuf shown = {0};
    int rc = rd_tree(c, eq + 1, si, &val);
    if (!rc && !val) {
        val = node_new(JN_SCALAR, 0, si);
        val->text = at_strdup("", "job: yaml scalar");
        val->plain = 1;
    }
    jnode *cur = root;
    char *seg = path;
    while (!rc) {
        char *dot = strchr(seg, '.');
        if (dot) *dot = '\0';
        int last = dot == NULL;
        if (!*seg) {
            rc = fail(c, 0, si, NULL, "empty key in the path");
            break;
        }
        jnode **slot = NULL;
        if (cur->type == JN_MAP) {
            int k = node_find(cur, seg);
            if (k < 0) {
                node_push(cur, at_strdup(seg, "job: yaml key"), 0, si,
                          last ? val : node_new(JN_MAP, 0, si));
                if (last) val = NULL;
                k = cur->n - 1;
            }
            slot = &cur->ent[k].val;
            sb_add(&shown, "%s%s", shown.n ? "." : "", seg);
        } else if (cur->type == JN_SEQ) {
            int k = set_find_item(c, si, cur, seg, shown.s, last);
            if (k < 0) {
                rc = c->err->code;
                break;
            }
            if (k == cur->n) {
                node_push(cur, NULL, 0, si, val);
                val = NULL;
            }
            slot = &cur->ent[k].val;
            sb_add(&shown, "[%d]", k);
        } else {
            rc = fail(c, 0, si, NULL, "%s is a single value, it has no '%s'",
                      shown.s, seg);
            break;
        }
        if (last) {
            if (val) {
                node_free(*slot);
                *slot = val;
                val = NULL;
            }
            break;
        }
        if (node_is_null(*slot)) { /* "train:" alone, then train.epochs=3 */
            node_free(*slot);
            *slot = node_new(JN_MAP, 0, si);
        }
        cur = *slot;
        seg = dot + 1;
    }
    node_free(val);
    free(shown.s);
    free(path);
    return rc;
}

/* -------------------------------------------------------------- parsing */

/* On failure *out is all zeros, so a half-filled job is never used. */
int job_parse(const char *text, const char *source, const char *const *overrides,
              int n_sets, job_purpose purpose, job *out, at_err *err) {
    AT_CHECK(text != NULL && out != NULL && err != NULL);
    AT_CHECK(n_sets >= 0 && (n_sets == 0 || overrides != NULL));
    AT_CHECK(purpose == JOB_PURPOSE_RUN || purpose == JOB_PURPOSE_TRAIN ||
             purpose == JOB_PURPOSE_ANY);
    memset(out, 0, sizeof *out);
    ctx c = {source && *source ? source : "<job>", overrides, n_sets, err};
    if (source && strlen(source) >= JOB_PATH_MAX)
        return at_err_set(err, AT_EUSER, "job file name longer than %d bytes",
                          JOB_PATH_MAX - 1);
    for (int i = 0; i < n_sets; i++) AT_CHECK(overrides[i] != NULL);

    jnode *root = NULL;
    int rc = rd_tree(&c, text, -1, &root);
    if (!rc && root && root->type == JN_SCALAR && node_is_null(root)) {
        node_free(root); /* "---" alone: an empty job */
        root = NULL;
    }
    if (!rc && !root) root = node_new(JN_MAP, 0, -1);
    if (!rc && root->type != JN_MAP) {
        char got[SHOW_MAX + 64];
        rc = fail(&c, root->line, -1, NULL,
                  "the top level must be a mapping of sections (data:, model:, "
                  "methods:, ...), got %s",
                  show(root, got, sizeof got));
    }
    for (int i = 0; i < n_sets && !rc; i++) rc = apply_set(&c, root, i);
    if (!rc) rc = fill_job(&c, root, purpose, out);
    node_free(root);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (source) memcpy(out->source_path, source, strlen(source) + 1);
    return 0;
}

/* Reads at most MAX_JOB_FILE bytes and refuses NUL bytes (a binary file given
 * by mistake would otherwise be cut short silently). */
int job_read_file(const char *path, char **text, at_err *err) {
    AT_CHECK(path != NULL && text != NULL && err != NULL);
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return at_err_set(err, AT_EUSER, "%s: cannot read job file: %s", path,
                          strerror(errno));
    size_t n = 0, cap = 4096;
    char *buf = at_malloc(cap, "job: file text");
    int rc = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= MAX_JOB_FILE) {
                rc = at_err_set(err, AT_EUSER,
                                "%s: cannot read job file: larger than %d MiB",
                                path, MAX_JOB_FILE >> 20);
                break;
            }
            cap *= 2;
            buf = at_realloc(buf, cap, "job: file text");
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f))
                rc = at_err_set(err, AT_EUSER, "%s: cannot read job file: %s",
                                path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!rc && memchr(buf, '\0', n))
        rc = at_err_set(err, AT_EUSER,
                        "%s: cannot read job file: it contains a NUL byte (not a "
                        "text file?)",
                        path);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    return 0;
}

/* ------------------------------------------------------------- emitting */

/* The code point of the UTF-8 sequence at p and its length in *len; -1
 * (length 1) for a byte that does not start a valid sequence. */
static long utf8_at(const unsigned char *p, int *len) {
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    long cp = n == 4 ? p[0] & 0x07 : n == 3 ? p[0] & 0x0f : p[0] & 0x1f;
    *len = 1;
    if (p[0] >= 0xf5 || n == 0) return -1;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    *len = n;
    return cp;
}

/* A double-quoted YAML string that reads back as s. Escaped: the quote and
 * backslash, C0 and C1 controls and DEL, the line breaks U+2028 and U+2029
 * (a reader would fold them), U+FEFF, U+FFFE and U+FFFF (a reader refuses
 * the raw characters). The strings of a parsed job are valid UTF-8. */
static void emit_str(sbuf *b, const char *s) {
    sb_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = 1;
        long cp = *p >= 0x80 ? utf8_at(p, &len) : *p;
        if (*p == '"' || *p == '\\')
            sb_add(b, "\\%c", *p);
        else if (*p == '\n')
            sb_add(b, "\\n");
        else if (*p == '\t')
            sb_add(b, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            sb_add(b, "\\x%02lx", cp < 0 ? (long)*p : cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            sb_add(b, "\\u%04lx", cp);
        else
            sb_add(b, "%.*s", len, (const char *)p);
        p += len;
    }
    sb_add(b, "\"");
}

/* The shortest text that reads back as exactly v, in fixed notation unless
 * v is very small or very large (so 10 is "10.0", not "1e+01"). */
static void emit_num(sbuf *b, double v) {
    char t[40], fixed[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    if (strchr(t, 'e') && fabs(v) >= 1e-4 && fabs(v) < 1e16)
        for (int d = 0; d <= 20; d++) {
            snprintf(fixed, sizeof fixed, "%.*f", d, v);
            if (strtod(fixed, NULL) == v) {
                memcpy(t, fixed, strlen(fixed) + 1);
                break;
            }
        }
    sb_add(b, "%s%s", t, strpbrk(t, ".e") ? "" : ".0");
}

/* "key: value\n" for rule ri read from base, or nothing when the field is
 * unset (empty path, no hidden list). Returns 1 when something was written. */
static int emit_field(sbuf *b, int ri, const void *base, const char *indent) {
    const rule *r = &RULES[ri];
    const char *src = (const char *)base + r->off;
    const char *key = leaf(DOCS[ri].path);
    if ((r->t == T_STRING || r->t == T_NAME) && r->nonempty && !*src) return 0;
    if (r->t == T_HIDDEN && ((const job *)base)->n_hidden == 0) return 0;
    sb_add(b, "%s%s: ", indent, key);
    switch (r->t) {
    case T_STRING:
    case T_NAME: emit_str(b, src); break;
    case T_INT: sb_add(b, "%d", *(const int *)(const void *)src); break;
    case T_U64: sb_add(b, "%" PRIu64, *(const uint64_t *)(const void *)src); break;
    case T_NUMBER:
    case T_DURATION: emit_num(b, *(const double *)(const void *)src); break;
    case T_BOOL:
        sb_add(b, "%s", *(const int *)(const void *)src ? "true" : "false");
        break;
    case T_ENUM: {
        const char *name = enum_name(r->names, *(const int *)(const void *)src);
        AT_CHECK(name != NULL); /* the job did not come from job_parse */
        sb_add(b, "%s", name);
        break;
    }
    case T_ROWS: {
        const job *j = base;
        if (j->row_end < 0)
            sb_add(b, "\"%" PRId64 ":\"", j->row_start);
        else
            sb_add(b, "\"%" PRId64 ":%" PRId64 "\"", j->row_start, j->row_end);
        break;
    }
    case T_TARGET: {
        char t[16];
        sb_add(b, "%s", job_target_name(base, t, sizeof t));
        break;
    }
    case T_HIDDEN: {
        const job *j = base;
        sb_add(b, "[");
        for (int i = 0; i < j->n_hidden; i++)
            sb_add(b, "%s%d", i ? ", " : "", j->hidden[i]);
        sb_add(b, "]");
        break;
    }
    case T_SECTION:
    case T_METHODS: AT_CHECK(!"not a leaf field");
    }
    sb_add(b, "\n");
    return 1;
}

/* One methods list entry: the fields of its kind, baseline_value and
 * baseline_split only for the baseline that uses them. */
static void emit_method(sbuf *b, const job_method *m) {
    unsigned kb = KB(m->kind);
    AT_CHECK(enum_name(KIND_NAMES, (int)m->kind) != NULL);
    int first = 1;
    for (int ri = 0; ri < N_RULES; ri++) {
        if (!(RULES[ri].kinds & kb)) continue;
        const char *key = leaf(DOCS[ri].path);
        if (!strcmp(key, "baseline_value") && m->baseline != JOB_BASELINE_CONSTANT)
            continue;
        if (!strcmp(key, "baseline_split") && m->baseline != JOB_BASELINE_MEAN)
            continue;
        if (emit_field(b, ri, m, first ? "  - " : "    ")) first = 0;
    }
}

/* Sections in schema order; an unset path, an empty hidden list or methods
 * list and an absent train section are left out, so the text parses back to
 * the same job. The caller frees the result with free(). */
char *job_emit_yaml(const job *j) {
    AT_CHECK(j != NULL);
    sbuf b = {0};
    sb_add(&b, "# attrib %s effective job: every field, defaults filled in\n",
           ATTRIB_VERSION);
    for (int si = 0; si < N_RULES; si++) {
        const char *sect = DOCS[si].path;
        if (!in_section(sect, NULL)) continue;
        if (RULES[si].t == T_METHODS) {
            if (j->n_methods == 0) continue;
            sb_add(&b, "methods:\n");
            for (int i = 0; i < j->n_methods; i++) emit_method(&b, &j->methods[i]);
            continue;
        }
        if (!strcmp(sect, "train") && !j->has_train) continue;
        sbuf body = {0};
        for (int ri = 0; ri < N_RULES; ri++)
            if (in_section(DOCS[ri].path, sect)) emit_field(&body, ri, j, "  ");
        if (body.n)
            sb_add(&b, "%s:\n%s", sect, body.s);
        else
            sb_add(&b, "%s: {}\n", sect);
        free(body.s);
    }
    return sb_take(&b);
}
