/* ytree.h — YAML text -> a small tree that remembers where each value came
 * from, the scalar grammar of attrib's YAML, and the few emitters that write
 * YAML back. Shared by job files (job.c) and architecture texts (arch.c).
 *
 * Model of use
 * ------------
 * yt_read parses one YAML document (libyaml events) into yt_node trees:
 * scalars keep their text and whether they were written plain (unquoted,
 * untagged), mappings and sequences keep their entries in order, and every
 * node and mapping key keeps its 1-based line, or the index of the --set
 * override that made it. Aliases, non-scalar keys and more than one document
 * are errors. Messages go through yt_fail, which prefixes "file:line", "file"
 * or "--set ..." so every error says where the offending text is.
 *
 * The scalar grammar is strict on purpose: integers are plain decimal
 * digits, numbers have an optional fraction and exponent and must be
 * finite, booleans are true/false (three spellings each). A quoted scalar is
 * a string, never a number.
 *
 * Convention: functions returning int return 0, or the code recorded in
 * c->err (AT_EUSER for bad text) after writing the message. Nodes are owned
 * by their parent; yt_free releases a subtree.
 */
#ifndef ATTRIB_YTREE_H
#define ATTRIB_YTREE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define YT_MAX_DEPTH 32 /* nesting of YAML collections */
#define YT_SHOW_MAX 60  /* characters of a value quoted in a message */

typedef enum { YT_SCALAR = 1, YT_MAP, YT_SEQ } yt_type;

typedef struct yt_node yt_node;

typedef struct {
    char *key;  /* mapping key; NULL in a sequence */
    int line;   /* the key's line (1-based); 0 when a --set made it */
    int set;    /* index of the --set that made the key, -1 = the file */
    yt_node *val;
} yt_entry;

struct yt_node {
    yt_type type;
    int line, set; /* where the node starts, as in yt_entry */
    char *text;    /* scalar text, NUL-terminated */
    size_t len;    /* scalar length in bytes (text may hold a NUL) */
    int plain;     /* scalar written without quotes or tag */
    int n, cap;    /* entries of a mapping or sequence */
    yt_entry *ent;
};

yt_node *yt_new(yt_type type, int line, int set);
void yt_free(yt_node *n);
/* Append an entry; takes ownership of key (may be NULL) and val. */
void yt_push(yt_node *n, char *key, int line, int set, yt_node *val);
/* Index of key in a mapping, or -1. */
int yt_find(const yt_node *map, const char *key);
/* A plain empty scalar, "~" or "null": YAML's null. */
int yt_is_null(const yt_node *v);

/* ---- a growing string ------------------------------------------------ */

typedef struct {
    char *s;
    size_t n, cap;
} yt_buf;

void yt_add(yt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The builder's text ("" allocated when nothing was added); b is reset. */
char *yt_take(yt_buf *b);

/* ---- messages -------------------------------------------------------- */

typedef struct {
    const char *source;      /* the file's name in messages */
    const char *const *sets; /* the --set strings (may be NULL when n_sets is 0) */
    int n_sets;
    at_err *err;
    int *failed_set; /* NULL, or set to the index of the --set that the
                        recorded error (the first) is about; -1 first */
} yt_ctx;

/* Record "WHERE: PATH: message" (PATH may be NULL) where WHERE is
 * "source:line", "source" (line 0, set < 0) or "--set ..." (set >= 0;
 * then *c->failed_set = set when this is the first error). */
int yt_fail(const yt_ctx *c, int line, int set, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* "expected WHAT, got GOT" at v. */
int yt_fail_at(const yt_ctx *c, const yt_node *v, const char *path, const char *what,
               const char *got);
/* How a value is shown after "got": 'text' for plain scalars, "text" for
 * quoted ones, or what kind of thing it is. quoted_note adds "(quoted, so a
 * string)" to quoted text, for fields that want a number or a boolean. */
const char *yt_show(const yt_node *v, char *buf, size_t cap, int quoted_note);

/* Parse one YAML document into *root (NULL for an empty stream). set < 0
 * reads a file (lines are kept), set >= 0 the value of that --set. */
int yt_read(const yt_ctx *c, const char *text, int set, yt_node **root);

/* ---- scalar grammar --------------------------------------------------- */

/* A plain decimal integer [-+]?(0|[1-9][0-9]*): 0 and *neg, *mag; -1 when
 * s is not one; 1 when its magnitude does not fit in 64 bits. */
int yt_parse_int(const char *s, int *neg, uint64_t *mag);
/* A decimal number [-+]?(d+(.d*)?|.d+)([eE][-+]?d+)?: 0 and *out; -1 when s
 * is not one; 1 when it is not finite. */
int yt_parse_num(const char *s, double *out);
/* 1 for true/True/TRUE, 0 for false/False/FALSE, -1 otherwise. */
int yt_parse_bool(const char *s);

/* An integer in [lo, hi] (lo >= 0) from a plain scalar into *out. what is
 * the expectation ("an integer >= 1"); hi_shown says whether it names hi,
 * else a value above hi is reported as too large. */
int yt_conv_int(const yt_ctx *c, const yt_node *v, const char *path, int64_t lo,
                uint64_t hi, const char *what, int hi_shown, uint64_t *out);
/* A string scalar (any style) fitting in cap bytes into dst. */
int yt_conv_str(const yt_ctx *c, const yt_node *v, const char *path, size_t cap,
                int nonempty, const char *what, char *dst);

/* ---- emitting --------------------------------------------------------- */

/* A double-quoted YAML string that reads back as s. */
void yt_emit_str(yt_buf *b, const char *s);
/* The shortest text that reads back as exactly v, in fixed notation unless
 * v is very small or very large (so 10 is "10.0", not "1e+01"). */
void yt_emit_num(yt_buf *b, double v);

#endif
