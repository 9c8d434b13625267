/* arch.c — layer lists: YAML tree -> eng_layer specs (flattening residual
 * blocks, resolving names), specs -> canonical text, and the parameter
 * count of a list without building it. See arch.h.
 *
 * The keys of each kind are one table (KEYS below): parsing, defaults,
 * "which keys does this kind take" in messages and emission all read it.
 *
 * Convention: every static int function returns 0, or the code recorded in
 * the context's err after writing the message; the first error stops. */
#include "arch.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB(k) (1u << (k))
#define K_LIN KB(ENG_LAYER_LINEAR)
#define K_CONV KB(ENG_LAYER_CONV2D)
#define K_MAXP KB(ENG_LAYER_MAXPOOL2D)
#define K_AVGP KB(ENG_LAYER_AVGPOOL2D)
#define K_NORM (KB(ENG_LAYER_BATCHNORM1D) | KB(ENG_LAYER_BATCHNORM2D) | KB(ENG_LAYER_LAYERNORM))
#define K_EMB KB(ENG_LAYER_EMBEDDING)
#define K_POS KB(ENG_LAYER_POSEMB)
#define K_ATT KB(ENG_LAYER_ATTENTION)
#define K_DROP KB(ENG_LAYER_DROPOUT)
_Static_assert(ENG_LAYER_KIND_END <= 32, "kind bits fit in an unsigned");

#define SIZE_HI (1 << 30) /* largest feature, channel, vocabulary or head count */
#define GEOM_HI (1 << 20) /* largest kernel, stride, padding or dilation */
#define PATH_CAP 256

typedef enum { A_INT = 1, A_PAIR, A_BOOL, A_NUM } akind;

typedef struct {
    const char *key;
    akind t;
    unsigned kinds; /* KB bits of the layer kinds that take it */
    size_t off;     /* into eng_layer: int, int[2] or double */
    int req;
    int lo, hi;     /* A_INT, A_PAIR */
    int unit;       /* A_NUM: 1 = in [0, 1), 0 = > 0 */
    double deflt;   /* A_PAIR, A_BOOL, A_NUM when not required */
} akey;

#define LOFF(f) offsetof(eng_layer, f)

/* Order = the order of keys in emitted text. */
static const akey KEYS[] = {
    {"out_features", A_INT, K_LIN, LOFF(out_features), 1, 1, SIZE_HI, 0, 0},
    {"out_channels", A_INT, K_CONV, LOFF(out_features), 1, 1, SIZE_HI, 0, 0},
    {"num_embeddings", A_INT, K_EMB, LOFF(num_embeddings), 1, 1, SIZE_HI, 0, 0},
    {"embedding_dim", A_INT, K_EMB, LOFF(out_features), 1, 1, SIZE_HI, 0, 0},
    {"max_len", A_INT, K_POS, LOFF(num_embeddings), 1, 1, SIZE_HI, 0, 0},
    {"heads", A_INT, K_ATT, LOFF(heads), 1, 1, SIZE_HI, 0, 0},
    {"causal", A_BOOL, K_ATT, LOFF(causal), 0, 0, 0, 0, 0},
    {"kernel", A_PAIR, K_CONV | K_MAXP | K_AVGP, LOFF(kernel), 1, 1, GEOM_HI, 0, 0},
    {"stride", A_PAIR, K_CONV | K_MAXP | K_AVGP, LOFF(stride), 0, 1, GEOM_HI, 0, 1},
    {"padding", A_PAIR, K_CONV | K_MAXP | K_AVGP, LOFF(padding), 0, 0, GEOM_HI, 0, 0},
    {"dilation", A_PAIR, K_CONV | K_MAXP, LOFF(dilation), 0, 1, GEOM_HI, 0, 1},
    {"count_include_pad", A_BOOL, K_AVGP, LOFF(count_include_pad), 0, 0, 0, 0, 1},
    {"eps", A_NUM, K_NORM, LOFF(eps), 0, 0, 0, 0, 1e-5},
    {"affine", A_BOOL, K_NORM, LOFF(affine), 0, 0, 0, 0, 1},
    {"bias", A_BOOL, K_LIN | K_CONV | K_ATT, LOFF(bias), 0, 0, 0, 0, 1},
    {"p", A_NUM, K_DROP, LOFF(p), 0, 0, 0, 1, 0.5},
};
enum { N_KEYS = (int)(sizeof KEYS / sizeof KEYS[0]) };

static int *ifield(eng_layer *L, const akey *k) { return (int *)(void *)((char *)L + k->off); }
static const int *cifield(const eng_layer *L, const akey *k) {
    return (const int *)(const void *)((const char *)L + k->off);
}

static int find_key(const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].key, key)) return i;
    return -1;
}

/* ------------------------------------------------------------- parsing */

#define PENDING (-2) /* a src named by text, resolved after the whole list */

typedef struct {
    const yt_ctx *c;
    int allow_residual;
    eng_layer *specs;
    int cap, n;
    /* per layer: where it was written, and names still to resolve */
    int *line, *set;
    char (*path)[PATH_CAP];
    char (*ref)[2][ENG_NAME_MAX];
    const yt_node *(*ref_at)[2];
} pstate;

/* "layer 'NAME' (KIND)" into buf. */
static const char *who(char *buf, size_t cap, const char *name, const char *kind) {
    snprintf(buf, cap, "layer '%s' (%s)", name, kind);
    return buf;
}

static void join(char *out, size_t cap, const char *path, const char *key) {
    snprintf(out, cap, "%s.%s", path, key);
}

/* "kind, name, input, out_features, bias": the keys kind k takes. */
static char *keys_of(eng_layer_kind k) {
    yt_buf b = {0};
    yt_add(&b, "kind, name, %s", k == ENG_LAYER_ADD ? "inputs" : "input");
    for (int i = 0; i < N_KEYS; i++)
        if (KEYS[i].kinds & KB(k)) yt_add(&b, ", %s", KEYS[i].key);
    return yt_take(&b);
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
            return 0;
    return 1;
}

/* A layer name (or a reference to one) from scalar v into out. */
static int conv_name(pstate *ps, const yt_node *v, const char *path, const char *what,
                     char *out) {
    char got[YT_SHOW_MAX + 64];
    if (yt_conv_str(ps->c, v, path, ENG_NAME_MAX, 1, what, out)) return ps->c->err->code;
    if (!valid_name(out))
        return yt_fail_at(ps->c, v, path, what, yt_show(v, got, sizeof got, 0));
    return 0;
}

/* Value of key k (a KEYS entry) from v into L. */
static int conv_key(pstate *ps, const akey *k, const yt_node *v, const char *path,
                    const char *w, eng_layer *L) {
    const yt_ctx *c = ps->c;
    char got[YT_SHOW_MAX + 64], what[128];
    if (k->t == A_INT || k->t == A_PAIR) {
        snprintf(what, sizeof what, "%s %d..%d", k->t == A_PAIR ? "an integer or a list "
                 "[h, w] of integers in" : "an integer in", k->lo, k->hi);
        int *dst = ifield(L, k);
        const yt_node *vals[2] = {v, v};
        if (k->t == A_PAIR && v->type == YT_SEQ) {
            if (v->n != 2) {
                snprintf(got, sizeof got, "a list of %d", v->n);
                return yt_fail(c, v->line, v->set, path, "%s: expected %s, got %s", w,
                               what, got);
            }
            vals[0] = v->ent[0].val;
            vals[1] = v->ent[1].val;
        }
        for (int i = 0; i < (k->t == A_PAIR ? 2 : 1); i++) {
            const yt_node *x = vals[i];
            int neg = 0;
            uint64_t mag = 0;
            int rc = x->type == YT_SCALAR && x->plain ? yt_parse_int(x->text, &neg, &mag) : -1;
            if (rc != 0 || (neg && mag > 0) || mag < (uint64_t)k->lo || mag > (uint64_t)k->hi)
                return yt_fail(c, x->line, x->set, path, "%s: expected %s, got %s", w, what,
                               yt_show(x, got, sizeof got, 1));
            dst[i] = (int)mag;
        }
        return 0;
    }
    if (k->t == A_BOOL) {
        int b = v->type == YT_SCALAR && v->plain ? yt_parse_bool(v->text) : -1;
        if (b < 0)
            return yt_fail(c, v->line, v->set, path, "%s: expected true or false, got %s", w,
                           yt_show(v, got, sizeof got, 1));
        *ifield(L, k) = b;
        return 0;
    }
    double x = 0;
    int rc = v->type == YT_SCALAR && v->plain ? yt_parse_num(v->text, &x) : -1;
    int ok = rc == 0 && (k->unit ? x >= 0 && x < 1 : x > 0);
    if (!ok)
        return yt_fail(c, v->line, v->set, path, "%s: expected %s, got %s%s", w,
                       k->unit ? "a number in [0, 1)" : "a number > 0",
                       yt_show(v, got, sizeof got, 1), rc > 0 ? " (not finite)" : "");
    *(double *)(void *)((char *)L + k->off) = x;
    return 0;
}

static int check_dup_keys(pstate *ps, const yt_node *map, const char *path) {
    char p[PATH_CAP + 64];
    for (int i = 0; i < map->n; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(map->ent[i].key, map->ent[k].key)) {
                join(p, sizeof p, path, map->ent[i].key);
                return yt_fail(ps->c, map->ent[i].line, map->ent[i].set, p,
                               "duplicate key (first given at line %d)", map->ent[k].line);
            }
    return 0;
}

/* Append a layer: its name must be new. */
static int push_layer(pstate *ps, const eng_layer *L, const yt_node *at, const char *path,
                      const yt_node *name_at) {
    char w[ENG_NAME_MAX + 64];
    const char *kind = eng_layer_kind_name(L->kind);
    if (ps->n >= ps->cap)
        return yt_fail(ps->c, at->line, at->set, path,
                       "%s: more than %d layers (after flattening residual blocks)",
                       who(w, sizeof w, L->name, kind), ps->cap);
    for (int j = 0; j < ps->n; j++)
        if (!strcmp(ps->specs[j].name, L->name)) {
            const yt_node *where = name_at ? name_at : at;
            char p[PATH_CAP + 8];
            join(p, sizeof p, path, "name");
            char first[64];
            if (ps->set[j] >= 0)
                snprintf(first, sizeof first, "from --set");
            else
                snprintf(first, sizeof first, "line %d", ps->line[j]);
            return yt_fail(ps->c, where->line, where->set, p,
                           "%s: duplicate layer name (also layer #%d, %s, %s)",
                           who(w, sizeof w, L->name, kind), j, ps->path[j], first);
        }
    int i = ps->n++;
    memcpy(&ps->specs[i], L, sizeof *L);
    ps->line[i] = at->line;
    ps->set[i] = at->set;
    snprintf(ps->path[i], PATH_CAP, "%s", path);
    return 0;
}

/* Index of an earlier layer called name, ENG_SRC_INPUT for "input", or
 * PENDING - 1 (-3) when there is none yet. */
static int lookup(const pstate *ps, const char *name, int below) {
    if (!strcmp(name, "input")) return ENG_SRC_INPUT;
    for (int j = 0; j < below; j++)
        if (!strcmp(ps->specs[j].name, name)) return j;
    return -3;
}

static int parse_list(pstate *ps, const yt_node *list, const char *path,
                      const char *prefix, int start, int *last);

/* kind: residual. name is the block's, in_src where its input comes from
 * (the previous layer, unless `input` says otherwise). */
static int parse_residual(pstate *ps, const yt_node *v, const char *path, const char *name,
                          const yt_node *name_at, int in_src, int *last) {
    const yt_ctx *c = ps->c;
    char w[ENG_NAME_MAX + 64], p[PATH_CAP + 32], got[YT_SHOW_MAX + 64];
    who(w, sizeof w, name, "residual");
    const yt_node *body = NULL, *shortcut = NULL;
    for (int i = 0; i < v->n; i++) {
        const yt_entry *e = &v->ent[i];
        join(p, sizeof p, path, e->key);
        if (!strcmp(e->key, "kind") || !strcmp(e->key, "name")) continue;
        if (!strcmp(e->key, "body")) {
            body = e->val;
        } else if (!strcmp(e->key, "shortcut")) {
            shortcut = e->val;
        } else if (!strcmp(e->key, "input")) {
            char ref[ENG_NAME_MAX];
            if (conv_name(ps, e->val, p, "a layer name or input", ref)) return c->err->code;
            in_src = lookup(ps, ref, ps->n);
            if (in_src == -3)
                return yt_fail(c, e->val->line, e->val->set, p,
                               "%s: '%s' is not an earlier layer (a block reads the model "
                               "input or a layer before it)", w, ref);
        } else {
            return yt_fail(c, e->line, e->set, p,
                           "%s: not a key of a residual block (keys: kind, name, input, "
                           "body, shortcut)", w);
        }
    }
    join(p, sizeof p, path, "body");
    if (!body)
        return yt_fail(c, v->line, v->set, p, "%s: required key is missing (the block's "
                       "layers)", w);
    if (body->type != YT_SEQ || body->n < 1)
        return yt_fail(c, body->line, body->set, p, "%s: expected a list of 1 or more "
                       "layers, got %s", w, body->type == YT_SEQ ? "an empty list"
                       : yt_show(body, got, sizeof got, 0));
    char prefix[ENG_NAME_MAX + 16];
    snprintf(prefix, sizeof prefix, "%s.body", name);
    int last_body = in_src, last_sc = in_src;
    if (parse_list(ps, body, p, prefix, in_src, &last_body)) return c->err->code;
    if (shortcut && !yt_is_null(shortcut)) {
        join(p, sizeof p, path, "shortcut");
        if (shortcut->type != YT_SEQ)
            return yt_fail(c, shortcut->line, shortcut->set, p, "%s: expected a list of "
                           "layers ([] = identity), got %s", w,
                           yt_show(shortcut, got, sizeof got, 0));
        snprintf(prefix, sizeof prefix, "%s.shortcut", name);
        if (shortcut->n > 0 && parse_list(ps, shortcut, p, prefix, in_src, &last_sc))
            return c->err->code;
    }
    eng_layer add;
    memset(&add, 0, sizeof add); /* padding too: specs are compared bytewise */
    add.kind = ENG_LAYER_ADD;
    add.n_src = 2;
    add.src[0] = last_body;
    add.src[1] = last_sc;
    snprintf(add.name, sizeof add.name, "%s", name);
    if (push_layer(ps, &add, v, path, name_at)) return c->err->code;
    *last = ps->n - 1;
    return 0;
}

/* One entry of a layer list. def_name: its name when none is given; src:
 * what it reads by default. *last: index of the (last) layer it made. */
static int parse_item(pstate *ps, const yt_node *v, const char *path, const char *def_name,
                      int src, int *last) {
    const yt_ctx *c = ps->c;
    char got[YT_SHOW_MAX + 64], p[PATH_CAP + 32], w[ENG_NAME_MAX + 64];
    if (v->type != YT_MAP)
        return yt_fail_at(c, v, path, "a layer: a mapping with a kind",
                          yt_show(v, got, sizeof got, 0));
    if (check_dup_keys(ps, v, path)) return c->err->code;

    /* kind */
    int ki = yt_find(v, "kind");
    join(p, sizeof p, path, "kind");
    if (ki < 0) return yt_fail(c, v->line, v->set, p, "required key is missing");
    const yt_node *kv = v->ent[ki].val;
    eng_layer_kind kind = 0;
    int residual = 0;
    if (kv->type == YT_SCALAR && ps->allow_residual && !strcmp(kv->text, "residual"))
        residual = 1;
    else if (kv->type != YT_SCALAR || yt_is_null(kv) || strlen(kv->text) != kv->len ||
             eng_layer_kind_parse(kv->text, &kind) != 0) {
        char what[1024];
        snprintf(what, sizeof what, "one of %s%s", eng_layer_kind_list(),
                 ps->allow_residual ? ", residual" : "");
        return yt_fail_at(c, kv, p, what, yt_show(kv, got, sizeof got, 0));
    }
    const char *kname = residual ? "residual" : eng_layer_kind_name(kind);

    /* name */
    char name[ENG_NAME_MAX] = {0};
    int ni = yt_find(v, "name");
    const yt_node *name_at = ni >= 0 ? v->ent[ni].val : NULL;
    join(p, sizeof p, path, "name");
    if (name_at) {
        if (conv_name(ps, name_at, p, "a layer name of letters, digits, '_', '.' and '-'",
                      name))
            return c->err->code;
        if (!strcmp(name, "input"))
            return yt_fail(c, name_at->line, name_at->set, p,
                           "'input' is reserved (it names the model input)");
    } else if (snprintf(name, sizeof name, "%s", def_name) >= (int)sizeof name) {
        return yt_fail(c, v->line, v->set, p, "the default name '%s' is longer than %d "
                       "bytes: give the layer a shorter name", def_name, ENG_NAME_MAX - 1);
    }
    who(w, sizeof w, name, kname);
    if (residual) return parse_residual(ps, v, path, name, name_at, src, last);

    /* the other keys: each must belong to the kind */
    eng_layer L;
    memset(&L, 0, sizeof L);
    L.kind = kind;
    memcpy(L.name, name, sizeof name);
    unsigned kb = KB(kind);
    for (int i = 0; i < N_KEYS; i++)
        if ((KEYS[i].kinds & kb) && !KEYS[i].req) {
            if (KEYS[i].t == A_NUM)
                *(double *)(void *)((char *)&L + KEYS[i].off) = KEYS[i].deflt;
            else
                for (int j = 0; j < (KEYS[i].t == A_PAIR ? 2 : 1); j++)
                    ifield(&L, &KEYS[i])[j] = (int)KEYS[i].deflt;
        }
    const yt_node *in_at = NULL, *given[N_KEYS] = {0};
    for (int i = 0; i < v->n; i++) {
        const yt_entry *e = &v->ent[i];
        join(p, sizeof p, path, e->key);
        if (!strcmp(e->key, "kind") || !strcmp(e->key, "name")) continue;
        int is_in = !strcmp(e->key, "input"), is_ins = !strcmp(e->key, "inputs");
        int k = find_key(e->key);
        if ((is_in && kind == ENG_LAYER_ADD) || (is_ins && kind != ENG_LAYER_ADD) ||
            (!is_in && !is_ins && (k < 0 || !(KEYS[k].kinds & kb)))) {
            char *keys = keys_of(kind);
            int known = is_in || is_ins || k >= 0 || !strcmp(e->key, "body") ||
                        !strcmp(e->key, "shortcut");
            yt_fail(c, e->line, e->set, p, "%s: %s (keys of %s: %s)", w,
                    known ? "not a key of this kind" : "unknown key", kname, keys);
            free(keys);
            return c->err->code;
        }
        if (is_in || is_ins) {
            in_at = e->val;
            continue;
        }
        given[k] = e->val;
        if (conv_key(ps, &KEYS[k], e->val, p, w, &L)) return c->err->code;
    }
    for (int k = 0; k < N_KEYS; k++)
        if (KEYS[k].req && (KEYS[k].kinds & kb) && !given[k]) {
            join(p, sizeof p, path, KEYS[k].key);
            return yt_fail(c, v->line, v->set, p, "%s: required key is missing", w);
        }
    if ((kind == ENG_LAYER_MAXPOOL2D || kind == ENG_LAYER_AVGPOOL2D) &&
        !given[find_key("stride")]) {
        L.stride[0] = L.kernel[0];
        L.stride[1] = L.kernel[1];
    }

    /* sources: resolved after the whole list (a later name gets a clear
     * message); the default is known now */
    int i = ps->n;
    if (kind == ENG_LAYER_ADD) {
        join(p, sizeof p, path, "inputs");
        if (!in_at)
            return yt_fail(c, v->line, v->set, p, "%s: required key is missing (add reads "
                           "two layers: inputs: [a, b])", w);
        if (in_at->type != YT_SEQ || in_at->n != 2) {
            if (in_at->type == YT_SEQ) snprintf(got, sizeof got, "a list of %d", in_at->n);
            return yt_fail(c, in_at->line, in_at->set, p, "%s: expected a list of 2 layer "
                           "names, got %s", w, in_at->type == YT_SEQ ? got
                           : yt_show(in_at, got, sizeof got, 0));
        }
        L.n_src = 2;
        L.src[0] = L.src[1] = PENDING;
    } else if (in_at) {
        L.n_src = 1;
        L.src[0] = PENDING;
    } else {
        L.n_src = 1;
        L.src[0] = src;
    }
    if (push_layer(ps, &L, v, path, name_at)) return c->err->code;
    if (in_at) {
        for (int j = 0; j < L.n_src; j++) {
            const yt_node *r = in_at->type == YT_SEQ ? in_at->ent[j].val : in_at;
            char rp[PATH_CAP + 48];
            if (in_at->type == YT_SEQ)
                snprintf(rp, sizeof rp, "%s.inputs[%d]", path, j);
            else
                join(rp, sizeof rp, path, "input");
            if (conv_name(ps, r, rp, "a layer name or input", ps->ref[i][j]))
                return c->err->code;
            ps->ref_at[i][j] = r;
        }
    }
    *last = i;
    return 0;
}

static int parse_list(pstate *ps, const yt_node *list, const char *path,
                      const char *prefix, int start, int *last) {
    int prev = start;
    for (int i = 0; i < list->n; i++) {
        char p[PATH_CAP], def[ENG_NAME_MAX + 32];
        snprintf(p, sizeof p, "%.*s[%d]", PATH_CAP - 16, path, i); /* paths nest: bound it */
        snprintf(def, sizeof def, "%s.%d", prefix, i);
        if (parse_item(ps, list->ent[i].val, p, def, prev, &prev)) return ps->c->err->code;
    }
    *last = prev;
    return 0;
}

/* Names -> indices; n_src 0 where a layer reads the previous one. */
static int resolve(pstate *ps) {
    char w[ENG_NAME_MAX + 64], p[PATH_CAP + 48];
    for (int i = 0; i < ps->n; i++) {
        eng_layer *L = &ps->specs[i];
        for (int j = 0; j < L->n_src; j++) {
            if (L->src[j] != PENDING) continue;
            const yt_node *r = ps->ref_at[i][j];
            const char *ref = ps->ref[i][j];
            int at = lookup(ps, ref, ps->n);
            if (L->kind == ENG_LAYER_ADD)
                snprintf(p, sizeof p, "%s.inputs[%d]", ps->path[i], j);
            else
                join(p, sizeof p, ps->path[i], "input");
            who(w, sizeof w, L->name, eng_layer_kind_name(L->kind));
            if (at == -3)
                return yt_fail(ps->c, r->line, r->set, p, "%s: no layer is called '%s' "
                               "(write the name of an earlier layer, or input for the "
                               "model input)", w, ref);
            if (at == i)
                return yt_fail(ps->c, r->line, r->set, p, "%s: '%s' is this layer itself; "
                               "a layer reads only the model input or earlier layers", w,
                               ref);
            if (at > i)
                return yt_fail(ps->c, r->line, r->set, p, "%s: '%s' is layer #%d, which "
                               "comes later; a layer reads only the model input or earlier "
                               "layers", w, ref, at);
            L->src[j] = at;
        }
        if (L->n_src == 1 && L->src[0] == (i == 0 ? ENG_SRC_INPUT : i - 1)) {
            L->n_src = 0;
            L->src[0] = 0;
        }
    }
    return 0;
}

int arch_parse_node(const yt_ctx *c, const yt_node *list, const char *path,
                    int allow_residual, eng_layer *specs, int cap, int *n) {
    AT_CHECK(c && list && path && specs && n && cap >= 1);
    char got[YT_SHOW_MAX + 64], what[96];
    memset(specs, 0, (size_t)cap * sizeof *specs);
    *n = 0;
    snprintf(what, sizeof what, "a list of 1 to %d layers", cap);
    if (list->type != YT_SEQ) return yt_fail_at(c, list, path, what, yt_show(list, got, sizeof got, 0));
    if (list->n < 1) return yt_fail_at(c, list, path, what, "an empty list");
    pstate ps = {c, allow_residual, specs, cap, 0, NULL, NULL, NULL, NULL, NULL};
    ps.line = at_calloc((size_t)cap, sizeof *ps.line, "arch: lines");
    ps.set = at_calloc((size_t)cap, sizeof *ps.set, "arch: sets");
    ps.path = at_calloc((size_t)cap, sizeof *ps.path, "arch: paths");
    ps.ref = at_calloc((size_t)cap, sizeof *ps.ref, "arch: names");
    ps.ref_at = at_calloc((size_t)cap, sizeof *ps.ref_at, "arch: name nodes");
    int last, rc = parse_list(&ps, list, path, "layers", ENG_SRC_INPUT, &last);
    if (!rc) rc = resolve(&ps);
    /* a field the spec does not use stays 0; src of n_src 0 too */
    for (int i = 0; !rc && i < ps.n; i++)
        for (int j = specs[i].n_src; j < 2; j++) specs[i].src[j] = 0;
    free(ps.ref_at);
    free(ps.ref);
    free(ps.path);
    free(ps.set);
    free(ps.line);
    if (rc) {
        memset(specs, 0, (size_t)cap * sizeof *specs);
        return rc;
    }
    *n = ps.n;
    return 0;
}

int arch_parse_text(const char *text, const char *source, int allow_residual,
                    eng_layer *specs, int cap, int *n, at_err *err) {
    AT_CHECK(text && source && specs && n && err);
    yt_ctx c = {source, NULL, 0, err, NULL};
    yt_node *root = NULL;
    *n = 0;
    int rc = yt_read(&c, text, -1, &root);
    if (!rc && (!root || yt_is_null(root)))
        rc = yt_fail(&c, 0, -1, NULL, "no layers (expected a list of 1 to %d layers)", cap);
    if (!rc) rc = arch_parse_node(&c, root, "layers", allow_residual, specs, cap, n);
    yt_free(root);
    return rc;
}

/* ------------------------------------------------------------ emitting */

/* Plain when it reads back as the same string in YAML 1.1 and 1.2 (so
 * Python's yaml.safe_load gets a str too), else double-quoted. */
static void emit_name(yt_buf *b, const char *s) {
    static const char *const words[] = {"y", "n", "yes", "no", "on", "off", "true",
                                        "false", "null"};
    int plain = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') &&
                valid_name(s);
    char low[16];
    size_t k = strlen(s);
    if (plain && k < sizeof low) {
        for (size_t i = 0; i <= k; i++)
            low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        for (size_t i = 0; i < sizeof words / sizeof *words; i++)
            if (!strcmp(low, words[i])) plain = 0;
    }
    if (plain)
        yt_add(b, "%s", s);
    else
        yt_emit_str(b, s);
}

static const char *spec_name(const eng_layer *specs, int i, char *buf, size_t cap) {
    if (i == ENG_SRC_INPUT) return "input";
    if (specs[i].name[0]) return specs[i].name;
    snprintf(buf, cap, "layers.%d", i);
    return buf;
}

char *arch_emit_specs(const eng_layer *specs, int n, const char *indent) {
    AT_CHECK(specs && n >= 0 && indent);
    yt_buf b = {0};
    char nb[3][32];
    for (int i = 0; i < n; i++) {
        const eng_layer *L = &specs[i];
        const char *kind = eng_layer_kind_name(L->kind);
        AT_CHECK(kind != NULL);
        yt_add(&b, "%s- {kind: %s, name: ", indent, kind);
        emit_name(&b, spec_name(specs, i, nb[0], sizeof nb[0]));
        if (L->kind == ENG_LAYER_ADD) {
            AT_CHECK(L->n_src == 2);
            for (int j = 0; j < 2; j++) {
                AT_CHECK(L->src[j] == ENG_SRC_INPUT || (L->src[j] >= 0 && L->src[j] < i));
                yt_add(&b, "%s", j ? ", " : ", inputs: [");
                emit_name(&b, spec_name(specs, L->src[j], nb[1 + j], sizeof nb[1]));
            }
            yt_add(&b, "]");
        } else if (L->n_src == 1 && L->src[0] != (i == 0 ? ENG_SRC_INPUT : i - 1)) {
            AT_CHECK(L->src[0] == ENG_SRC_INPUT || (L->src[0] >= 0 && L->src[0] < i));
            yt_add(&b, ", input: ");
            emit_name(&b, spec_name(specs, L->src[0], nb[1], sizeof nb[1]));
        }
        int pool = L->kind == ENG_LAYER_MAXPOOL2D || L->kind == ENG_LAYER_AVGPOOL2D;
        for (int k = 0; k < N_KEYS; k++) {
            const akey *K = &KEYS[k];
            if (!(K->kinds & KB(L->kind))) continue;
            yt_add(&b, ", %s: ", K->key);
            if (K->t == A_INT) {
                yt_add(&b, "%d", *cifield(L, K));
            } else if (K->t == A_PAIR) {
                int v[2] = {cifield(L, K)[0], cifield(L, K)[1]};
                for (int j = 0; j < 2; j++) /* engine.h: 0 = the default */
                    if (v[j] == 0 && !strcmp(K->key, "stride"))
                        v[j] = pool ? L->kernel[j] : 1;
                    else if (v[j] == 0 && !strcmp(K->key, "dilation"))
                        v[j] = 1;
                if (v[0] == v[1])
                    yt_add(&b, "%d", v[0]);
                else
                    yt_add(&b, "[%d, %d]", v[0], v[1]);
            } else if (K->t == A_BOOL) {
                yt_add(&b, "%s", *cifield(L, K) ? "true" : "false");
            } else {
                double x = *(const double *)(const void *)((const char *)L + K->off);
                if (x == 0 && !strcmp(K->key, "eps")) x = 1e-5;
                yt_emit_num(&b, x);
            }
        }
        yt_add(&b, "}\n");
    }
    return yt_take(&b);
}

char *arch_emit(const eng_model *m) {
    AT_CHECK(m && m->layers);
    return arch_emit_specs(m->layers, m->n_layers, "");
}

