/* ytree.c — see ytree.h. The reader and grammar came out of job.c when
 * architecture texts (arch.c) needed the same YAML handling. */
#include "ytree.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

yt_node *yt_new(yt_type type, int line, int set) {
    yt_node *n = at_calloc(1, sizeof *n, "yaml: yaml node");
    n->type = type;
    n->line = line;
    n->set = set;
    return n;
}

void yt_free(yt_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        free(n->ent[i].key);
        yt_free(n->ent[i].val);
    }
    free(n->ent);
    free(n->text);
    free(n);
}

/* Append an entry; takes ownership of key (may be NULL) and val. */
void yt_push(yt_node *n, char *key, int line, int set, yt_node *val) {
    if (n->n == n->cap) {
        n->cap = n->cap ? 2 * n->cap : 8;
        n->ent = at_realloc(n->ent, (size_t)n->cap * sizeof *n->ent,
                            "yaml: yaml entries");
    }
    n->ent[n->n++] = (yt_entry){key, line, set, val};
}

int yt_find(const yt_node *map, const char *key) {
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->ent[i].key, key) == 0) return i;
    return -1;
}

/* A plain empty scalar, "~" or "null": YAML's null. */
int yt_is_null(const yt_node *v) {
    if (v->type != YT_SCALAR || !v->plain) return 0;
    const char *s = v->text;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* ------------------------------------------------------- string builder */

static void buf_vadd(yt_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int k = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    AT_CHECK(k >= 0);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = 2 * (b->n + (size_t)k + 1);
        b->s = at_realloc(b->s, b->cap, "yaml: text");
    }
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    b->n += (size_t)k;
}

void yt_add(yt_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vadd(b, fmt, ap);
    va_end(ap);
}

/* The builder's text; "" (allocated) when nothing was added. */
char *yt_take(yt_buf *b) {
    if (!b->s) yt_add(b, "%s", "");
    char *s = b->s;
    *b = (yt_buf){0};
    return s;
}

/* ------------------------------------------------------------- messages */

/* The first error is about --set number set (>= 0): tell c->failed_set. */
static void note_set(const yt_ctx *c, int set) {
    if (set >= 0 && c->failed_set && c->err->code == 0) *c->failed_set = set;
}

int yt_fail(const yt_ctx *c, int line, int set, const char *path,
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
    note_set(c, set);
    if (path)
        return at_err_set(c->err, AT_EUSER, "%s: %s: %s", where, path, msg);
    return at_err_set(c->err, AT_EUSER, "%s: %s", where, msg);
}

int yt_fail_at(const yt_ctx *c, const yt_node *v, const char *path,
                   const char *what, const char *got) {
    return yt_fail(c, v->line, v->set, path, "expected %s, got %s", what, got);
}

/* How a value is shown after "got": 'text' for plain scalars, "text" for
 * quoted ones, or what kind of thing it is. quoted_note adds "(quoted, so a
 * string)" to quoted text, for fields that want a number or a boolean. */
const char *yt_show(const yt_node *v, char *buf, size_t cap, int quoted_note) {
    if (v->type != YT_SCALAR || yt_is_null(v)) {
        snprintf(buf, cap, "%s", v->type == YT_MAP   ? "a mapping"
                                 : v->type == YT_SEQ ? "a list"
                                                     : "an empty value");
        return buf;
    }
    char t[YT_SHOW_MAX + 4];
    size_t k = strlen(v->text);
    if (k > YT_SHOW_MAX) {
        memcpy(t, v->text, YT_SHOW_MAX);
        memcpy(t + YT_SHOW_MAX, "...", 4);
    } else {
        memcpy(t, v->text, k + 1);
    }
    if (v->plain)
        snprintf(buf, cap, "'%s'", t);
    else
        snprintf(buf, cap, "\"%s\"%s", t, quoted_note ? " (quoted, so a string)" : "");
    return buf;
}

static const char *show(const yt_node *v, char *buf, size_t cap) {
    return yt_show(v, buf, cap, 0);
}

/* --------------------------------------------------------- YAML reading */

typedef struct {
    yaml_parser_t p;
    const yt_ctx *c;
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
    note_set(r->c, r->set);
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
static int rd_node(reader *r, yaml_event_t *ev, int depth, yt_node **out) {
    const yt_ctx *c = r->c;
    int line = rd_line(r, ev);
    *out = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        yt_node *n = yt_new(YT_SCALAR, line, r->set);
        n->len = ev->data.scalar.length;
        n->text = at_malloc(n->len + 1, "yaml: yaml scalar");
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
        return yt_fail(c, line, r->set, NULL,
                    "YAML aliases (*name) are not supported");
    }
    if (ev->type != YAML_SEQUENCE_START_EVENT &&
        ev->type != YAML_MAPPING_START_EVENT) {
        yaml_event_delete(ev);
        return at_err_set(c->err, AT_EINTERNAL, "yaml: unexpected YAML event");
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_delete(ev);
    if (depth >= YT_MAX_DEPTH)
        return yt_fail(c, line, r->set, NULL, "YAML nested deeper than %d levels",
                    YT_MAX_DEPTH);
    yt_node *n = yt_new(is_map ? YT_MAP : YT_SEQ, line, r->set);
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
                yt_fail(c, kline, r->set, NULL, "mapping keys must be plain text");
                goto fail;
            }
            key = at_strdup((const char *)e.data.scalar.value, "yaml: yaml key");
            yaml_event_delete(&e);
            if (rd_next(r, &e)) {
                free(key);
                goto fail;
            }
        }
        yt_node *v;
        if (rd_node(r, &e, depth + 1, &v)) {
            free(key);
            goto fail;
        }
        yt_push(n, key, kline, r->set, v);
    }
    *out = n;
    return 0;
fail:
    yt_free(n);
    return c->err->code;
}

/* Parse one YAML document into *root (NULL for an empty stream). set < 0
 * reads the job file, set >= 0 the value of that --set. */
int yt_read(const yt_ctx *c, const char *text, int set, yt_node **root) {
    reader r = {.c = c, .text = text, .set = set};
    *root = NULL;
    if (!yaml_parser_initialize(&r.p))
        return at_err_set(c->err, AT_EIO, "yaml: cannot initialise libyaml");
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
                rc = yt_fail(c, rd_line(&r, &e), set, NULL,
                          "only one YAML document is allowed (found a second "
                          "'---')");
            yaml_event_delete(&e);
        }
    }
    yaml_parser_delete(&r.p);
    if (rc) {
        yt_free(*root);
        *root = NULL;
    }
    return rc;
}

/* ------------------------------------------------------- scalar grammar */

/* A plain decimal integer [-+]?(0|[1-9][0-9]*): 0 and *neg, *mag; -1 when
 * s is not one; 1 when its magnitude does not fit in 64 bits. */
int yt_parse_int(const char *s, int *neg, uint64_t *mag) {
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


int yt_parse_num(const char *s, double *out) {
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

int yt_parse_bool(const char *s) {
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return 0;
    return -1;
}


/* An integer in [lo, hi] (lo >= 0) from a plain scalar: 0, or an error
 * naming path. what is the expectation ("an integer >= 1"); hi_shown says
 * whether it names hi, else a value above hi is reported as too large. */
int yt_conv_int(const yt_ctx *c, const yt_node *v, const char *path, int64_t lo,
                    uint64_t hi, const char *what, int hi_shown, uint64_t *out) {
    AT_CHECK(lo >= 0);
    char got[YT_SHOW_MAX + 64];
    yt_show(v, got, sizeof got, 1);
    int neg = 0;
    uint64_t mag = 0;
    int rc = v->type == YT_SCALAR && v->plain ? yt_parse_int(v->text, &neg, &mag) : -1;
    if (rc < 0) return yt_fail_at(c, v, path, what, got);
    int big = rc > 0 || (!neg && mag > hi);
    if (big || (neg && mag > 0) || mag < (uint64_t)lo)
        return yt_fail(c, v->line, v->set, path, "expected %s, got %s%s", what, got,
                    big && !hi_shown ? " (too large)" : "");
    *out = mag;
    return 0;
}

/* A string scalar (any style) fitting in cap bytes. */
int yt_conv_str(const yt_ctx *c, const yt_node *v, const char *path, size_t cap,
                    int nonempty, const char *what, char *dst) {
    char got[YT_SHOW_MAX + 64];
    if (v->type != YT_SCALAR || yt_is_null(v))
        return yt_fail(c, v->line, v->set, path, "expected %s, got %s%s", what,
                    show(v, got, sizeof got),
                    v->type == YT_SCALAR && !nonempty ? " (write \"\" for an empty string)"
                                                      : "");
    if (strlen(v->text) != v->len)
        return yt_fail(c, v->line, v->set, path, "expected %s, got text with a NUL "
                    "character", what);
    if (nonempty && v->len == 0)
        return yt_fail(c, v->line, v->set, path, "expected %s, got \"\"", what);
    if (v->len >= cap)
        return yt_fail(c, v->line, v->set, path,
                    "expected %s of at most %zu bytes, got %zu bytes", what,
                    cap - 1, v->len);
    memset(dst, 0, cap); /* the same bytes whatever was there before */
    memcpy(dst, v->text, v->len + 1);
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
void yt_emit_str(yt_buf *b, const char *s) {
    yt_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = 1;
        long cp = *p >= 0x80 ? utf8_at(p, &len) : *p;
        if (*p == '"' || *p == '\\')
            yt_add(b, "\\%c", *p);
        else if (*p == '\n')
            yt_add(b, "\\n");
        else if (*p == '\t')
            yt_add(b, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            yt_add(b, "\\x%02lx", cp < 0 ? (long)*p : cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            yt_add(b, "\\u%04lx", cp);
        else
            yt_add(b, "%.*s", len, (const char *)p);
        p += len;
    }
    yt_add(b, "\"");
}

/* The shortest text that reads back as exactly v, in fixed notation unless
 * v is very small or very large (so 10 is "10.0", not "1e+01"). */
void yt_emit_num(yt_buf *b, double v) {
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
    /* a '.' in every mantissa ("1.0e-05", "3.0"): YAML 1.1 readers such as
     * PyYAML take "1e-05" for a string */
    char *e = strchr(t, 'e');
    if (strchr(t, '.'))
        yt_add(b, "%s", t);
    else if (e)
        yt_add(b, "%.*s.0%s", (int)(e - t), t, e);
    else
        yt_add(b, "%s.0", t);
}
