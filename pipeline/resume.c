/* resume.c — the plan hash, the shard directory, and what a rerun does.
 *
 * The plan text lists, one "key = value" per line, everything that decides
 * the numbers of a run: the rows and their SHA-256, the model's SHA-256, the
 * unit grid (block_rows, step_block), the seed and every method's settings
 * including a digest of its baseline. Its SHA-256 is the plan hash. Things
 * that change speed but not numbers (ranks, scheduler, threads, checkpoint
 * interval, compression, paths) are left out, so a run may resume with
 * another rank count or scheduler.
 *
 * OUT.shards/plan.txt holds the plan of the shards beside it. A rerun with
 * the same plan resumes; another plan is refused with the lines that differ,
 * unless --fresh. See docs/resume.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5shard.h"
#include "pipeline.h"

/* ----------------------------------------------------------- plan text */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = (b->n + (size_t)k + 1) * 2;
        b->s = at_realloc(b->s, b->cap, "plan text");
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void resume_plan_text(run_ctx *c) {
    const job *j = &c->j;
    const plan *p = &c->p;
    sbuf b = {0};
    sb_add(&b, "format = attrib-plan-1\n");
    sb_add(&b, "data.split = %s\n", j->data_split);
    sb_add(&b, "data.rows = %lld:%lld\n", (long long)c->row_start,
           (long long)(c->row_start + c->n_rows));
    sb_add(&b, "data.features = %lld\n", (long long)p->n_features);
    sb_add(&b, "data.sha256 = %s\n", c->data_sha);
    sb_add(&b, "model.sha256 = %s\n", c->minfo.sha256);
    sb_add(&b, "model.classes = %lld\n", (long long)p->n_classes);
    sb_add(&b, "run.block_rows = %d\n", j->block_rows);
    sb_add(&b, "run.step_block = %d\n", j->step_block);
    sb_add(&b, "run.seed = %llu\n", (unsigned long long)j->seed);
    sb_add(&b, "run.engine_batch = %d\n", plan_engine_batch(&c->model));
    sb_add(&b, "units = %lld\n", (long long)p->n_units);
    sb_add(&b, "methods =");
    for (int m = 0; m < j->n_methods; m++) sb_add(&b, " %s", j->methods[m].name);
    sb_add(&b, "\n");
    for (int m = 0; m < j->n_methods; m++) {
        const job_method *jm = &j->methods[m];
        const char *n = jm->name;
        /* every field of the method's kind, as in the effective job */
        char *f = job_method_emit(jm);
        for (const char *q = f; *q;) {
            const char *eol = strchr(q, '\n'), *colon = strstr(q, ": ");
            size_t ll = eol ? (size_t)(eol - q) : strlen(q);
            if (colon && colon < q + ll && strncmp(q, "name: ", 6))
                sb_add(&b, "methods.%s.%.*s = %.*s\n", n, (int)(colon - q), q,
                       (int)(ll - (size_t)(colon - q) - 2), colon + 2);
            q += ll + (eol ? 1 : 0);
        }
        free(f);
        const mth_spec *sp = &p->specs[m];
        sb_add(&b, "methods.%s.columns = %d\n", n, sp->n_cols);
        sb_add(&b, "methods.%s.width = %d\n", n, sp->width);
        /* the estimator's arithmetic: the affine-head path sums in another
         * order (methods.h), so shards of one never mix with the other's */
        if (jm->kind == JOB_METHOD_INTEGRATED_GRADIENTS && eng_model_affine_head(&c->model) >= 0)
            sb_add(&b, "methods.%s.affine_head = layer %d\n", n, eng_model_affine_head(&c->model));
        if (c->refs[m]) {
            char h[65];
            at_sha256_buf_hex(c->refs[m], (size_t)c->n_refs[m] * p->n_features * sizeof(float), h);
            sb_add(&b, "methods.%s.references = %d rows, sha256 %s\n", n, c->n_refs[m], h);
        }
        if (c->groups[m]) {
            char h[65];
            at_sha256_buf_hex(c->groups[m], (size_t)p->n_features * sizeof(int32_t), h);
            sb_add(&b, "methods.%s.groups = %d, sha256 %s\n", n, c->n_groups[m], h);
        }
        if (c->baseline[m]) {
            char h[65];
            at_sha256_buf_hex(c->baseline[m], (size_t)p->n_features * sizeof(float), h);
            sb_add(&b, "methods.%s.baseline_sha256 = %s\n", n, h);
        }
    }
    free(c->plan_text);
    c->plan_text = b.s;
    at_sha256_buf_hex(b.s, b.n, c->plan_hash);
}

/* The value of key in plan text, or NULL; *len its length. */
static const char *plan_value(const char *text, const char *key, size_t klen, size_t *len) {
    for (const char *q = text; q && *q;) {
        const char *eol = strchr(q, '\n');
        size_t ll = eol ? (size_t)(eol - q) : strlen(q);
        if (ll > klen + 3 && !strncmp(q, key, klen) && !strncmp(q + klen, " = ", 3)) {
            *len = ll - klen - 3;
            return q + klen + 3;
        }
        q = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* "key: old -> new; ..." for the lines of `now` that `was` lacks or has
 * with another value, then keys only in `was`. */
void resume_plan_diff(const char *was, const char *now, char *out, size_t cap) {
    size_t used = 0;
    int shown = 0, more = 0;
    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        const char *a = pass == 0 ? now : was, *b = pass == 0 ? was : now;
        for (const char *q = a; q && *q;) {
            const char *eol = strchr(q, '\n');
            size_t ll = eol ? (size_t)(eol - q) : strlen(q);
            const char *eq = strstr(q, " = ");
            if (eq && eq < q + ll) {
                size_t klen = (size_t)(eq - q), vlen = ll - klen - 3, olen = 0;
                const char *ov = plan_value(b, q, klen, &olen);
                int differs = pass == 0 ? !ov || olen != vlen || strncmp(ov, eq + 3, vlen)
                                        : !ov;
                if (differs) {
                    if (shown < 6 && used + 1 < cap) {
                        int k;
                        /* long values (digests) shortened to 12 characters */
                        const char *nv = eq + 3;
                        int nl = (int)vlen, ol = ov ? (int)olen : 6;
                        const char *ell_n = nl > 40 ? "..." : "", *ell_o = ol > 40 ? "..." : "";
                        if (nl > 40) nl = 12;
                        if (ol > 40) ol = 12;
                        if (pass == 0)
                            k = snprintf(out + used, cap - used, "%s%.*s: %.*s%s -> %.*s%s",
                                         shown ? "; " : "", (int)klen, q, ol,
                                         ov ? ov : "(none)", ell_o, nl, nv, ell_n);
                        else
                            k = snprintf(out + used, cap - used, "%s%.*s: %.*s%s -> (none)",
                                         shown ? "; " : "", (int)klen, q, nl, nv, ell_n);
                        used += k > 0 ? (size_t)k : 0;
                        if (used >= cap) used = cap - 1;
                        shown++;
                    } else {
                        more++;
                    }
                }
            }
            q = eol ? eol + 1 : NULL;
        }
    }
    if (more && used + 1 < cap) snprintf(out + used, cap - used, "; and %d more", more);
    if (!shown) snprintf(out, cap, "format differs");
}

/* ------------------------------------------------------------ the scan */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

void unlink_entries(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[JOB_PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!ends_with(e->d_name, suffix)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) continue;
        unlink(path);
    }
    closedir(d);
}

/* Remove a flat directory and what is in it. */
static void remove_dir(const char *dir) {
    unlink_entries(dir, "");
    rmdir(dir);
}

int shard_scan_dir(run_ctx *c, shard_scan *s, at_err *err) {
    const plan *p = &c->p;
    memset(s, 0, sizeof *s);
    s->file_of = at_malloc((size_t)(p->n_units + 1) * sizeof(int32_t), "shard scan");
    s->row_of = at_malloc((size_t)(p->n_units + 1) * sizeof(int64_t), "shard scan");
    for (int64_t u = 0; u < p->n_units; u++) s->file_of[u] = -1;
    DIR *d = opendir(c->shard_dir);
    if (!d) return 0;
    int cap = 0, n = 0;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        int a, r, q;
        char tail[8];
        if (sscanf(e->d_name, "a%d-r%d-%d.%7s", &a, &r, &q, tail) != 4 || strcmp(tail, "h5"))
            continue;
        if (a > s->max_attempt) s->max_attempt = a;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = at_realloc(names, (size_t)cap * sizeof *names, "shard names");
        }
        size_t len = strlen(c->shard_dir) + strlen(e->d_name) + 2;
        names[n] = at_malloc(len, "shard name");
        snprintf(names[n], len, "%s/%s", c->shard_dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    s->files = at_malloc((size_t)(n + 1) * sizeof(char *), "shard files");
    for (int i = 0; i < n && !err->code; i++) {
        h5_shard_index idx;
        at_err e2 = {0};
        int bad = h5_shard_read_index(names[i], &idx, &e2) != 0;
        const char *why = e2.msg;
        if (!bad && strcmp(idx.plan_hash, c->plan_hash)) {
            at_err_set(err, AT_EUSER,
                       "%s belongs to another plan (plan_hash %.12s..., this run's is "
                       "%.12s...); a shard directory holds one plan only — rerun with --fresh "
                       "to discard it",
                       names[i], idx.plan_hash, c->plan_hash);
            h5_shard_index_free(&idx);
            break;
        }
        if (!bad && idx.d != p->width) bad = 1, why = "its rows have the wrong width";
        for (int k = 0; !bad && k < idx.k; k++) {
            int64_t u = idx.units[k];
            if (u >= p->n_units || idx.offsets[k + 1] - idx.offsets[k] != p->units[u].nrows)
                bad = 1, why = "its units do not fit this plan";
        }
        if (bad) { /* cannot happen with rename-after-fsync; never trust it */
            char moved[JOB_PATH_MAX + 300];
            snprintf(moved, sizeof moved, "%s.bad", names[i]);
            rename(names[i], moved);
            AT_WARN("%s: unreadable shard (%s); moved to %s, its units will be recomputed",
                    names[i], why, moved);
            free(names[i]);
            if (!e2.code) h5_shard_index_free(&idx);
            continue;
        }
        int fi = s->n_files++;
        s->files[fi] = names[i];
        for (int k = 0; k < idx.k; k++) {
            int64_t u = idx.units[k];
            if (s->file_of[u] >= 0) continue; /* a duplicate: same bytes, keep the first */
            s->file_of[u] = fi;
            s->row_of[u] = idx.offsets[k];
        }
        h5_shard_index_free(&idx);
    }
    if (err->code)
        for (int i = 0; i < n; i++) {
            int kept = 0;
            for (int f = 0; f < s->n_files; f++) kept |= s->files[f] == names[i];
            if (!kept) free(names[i]);
        }
    free(names);
    return err->code;
}

void shard_scan_bcast(run_ctx *c, shard_scan *s) {
    const int64_t U = c->p.n_units;
    int meta[2] = {s->n_files, s->max_attempt};
    MPI_Bcast(meta, 2, MPI_INT, 0, c->comm);
    long blob_n = 0;
    char *blob = NULL;
    if (c->rank == 0) {
        for (int i = 0; i < s->n_files; i++) blob_n += (long)strlen(s->files[i]) + 1;
        blob = at_malloc((size_t)blob_n + 1, "shard names");
        long at = 0;
        for (int i = 0; i < s->n_files; i++) {
            size_t k = strlen(s->files[i]) + 1;
            memcpy(blob + at, s->files[i], k);
            at += (long)k;
        }
    } else {
        memset(s, 0, sizeof *s);
        s->n_files = meta[0];
        s->file_of = at_malloc((size_t)(U + 1) * sizeof(int32_t), "shard scan");
        s->row_of = at_malloc((size_t)(U + 1) * sizeof(int64_t), "shard scan");
    }
    s->max_attempt = meta[1];
    MPI_Bcast(&blob_n, 1, MPI_LONG, 0, c->comm);
    if (c->rank != 0) blob = at_malloc((size_t)blob_n + 1, "shard names");
    if (blob_n) MPI_Bcast(blob, (int)blob_n, MPI_CHAR, 0, c->comm);
    if (c->rank != 0) {
        s->files = at_malloc((size_t)(s->n_files + 1) * sizeof(char *), "shard files");
        long at = 0;
        for (int i = 0; i < s->n_files; i++) {
            s->files[i] = at_strdup(blob + at, "shard name");
            at += (long)strlen(blob + at) + 1;
        }
    }
    free(blob);
    for (int64_t u0 = 0; u0 < U; u0 += 1 << 20) { /* counts fit an int */
        int k = (int)(U - u0 < (1 << 20) ? U - u0 : (1 << 20));
        MPI_Bcast(s->file_of + u0, k, MPI_INT32_T, 0, c->comm);
        MPI_Bcast(s->row_of + u0, k, MPI_INT64_T, 0, c->comm);
    }
}

void shard_scan_free(shard_scan *s) {
    for (int i = 0; i < s->n_files; i++) free(s->files[i]);
    free(s->files);
    free(s->file_of);
    free(s->row_of);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------ before running */

int mkdir_p(const char *dir, at_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return at_err_set(err, AT_EUSER, "the path %.64s... is too long", dir);
    for (char *q = buf + 1;; q++) {
        if (*q != '/' && *q != '\0') continue;
        char ch = *q;
        *q = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return at_err_set(err, AT_EUSER, "cannot create the directory %s (%s)", buf,
                              strerror(errno));
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            return at_err_set(err, AT_EUSER,
                              "cannot create the directory %s (a file is in the way)", buf);
        if (!ch) break;
        *q = ch;
    }
    return 0;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    sbuf b = {0};
    char chunk[4096];
    size_t k;
    sb_add(&b, "%s", "");
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sb_add(&b, "%.*s", (int)k, chunk);
    fclose(f);
    return b.s;
}

/* Rank 0's half of resume_prepare. */
static int decide(run_ctx *c, int *complete, at_err *err) {
    const job *j = &c->j;
    char plan_path[JOB_PATH_MAX + 32], diff[1024];
    snprintf(plan_path, sizeof plan_path, "%s/plan.txt", c->shard_dir);
    struct stat st;
    *complete = 0;

    /* 1. an existing results file */
    if (stat(j->output_path, &st) == 0) {
        char *hash = NULL, *ptext = NULL;
        int rc = h5_file_root_attr(j->output_path, "plan_hash", &hash);
        if (rc == 0 && !strcmp(hash, c->plan_hash) && !c->fresh) {
            *complete = 1;
        } else if (!j->overwrite && !(rc == 0 && !strcmp(hash, c->plan_hash))) {
            if (rc == 0) {
                h5_file_root_attr(j->output_path, "plan", &ptext);
                if (ptext)
                    resume_plan_diff(ptext, c->plan_text, diff, sizeof diff);
                else
                    snprintf(diff, sizeof diff, "plan_hash %.12s... -> %.12s...", hash,
                             c->plan_hash);
                at_err_set(err, AT_EUSER,
                           "output %s already exists and holds the results of another job "
                           "(%s); set output.overwrite: true to replace it when this run "
                           "finishes, or choose another path with -o",
                           j->output_path, diff);
            } else {
                at_err_set(err, AT_EUSER,
                           "output %s already exists and is not an attrib results file; "
                           "set output.overwrite: true to replace it when this run finishes, "
                           "or choose another path with -o",
                           j->output_path);
            }
        }
        free(hash);
        free(ptext);
        if (err->code) return err->code;
        if (*complete) {
            /* shards of this very job left by a run killed after the rename */
            char *old = read_text(plan_path);
            if (old && !strcmp(old, c->plan_text) && !j->keep_shards) remove_dir(c->shard_dir);
            free(old);
            return 0;
        }
    }

    /* 2. an existing shard directory */
    if (stat(c->shard_dir, &st) == 0) {
        char *old = read_text(plan_path);
        if (old && strcmp(old, c->plan_text)) {
            if (!c->fresh) {
                resume_plan_diff(old, c->plan_text, diff, sizeof diff);
                at_err_set(err, AT_EUSER,
                           "%s/ holds finished units of a different plan (%s); rerun with "
                           "--fresh to discard them and start over, or choose another output "
                           "path with -o",
                           c->shard_dir, diff);
                free(old);
                return err->code;
            }
        }
        if (c->fresh && S_ISDIR(st.st_mode)) {
            AT_INFO("--fresh: removing %s/", c->shard_dir);
            remove_dir(c->shard_dir);
        }
        free(old);
    }

    /* 3. the directory and its plan */
    char what[JOB_PATH_MAX + 16];
    snprintf(what, sizeof what, "output %s", j->output_path);
    if (mkdir_p(c->shard_dir, err)) return at_err_prefix(err, "%s: ", what);
    if (access(plan_path, F_OK) != 0 && h5_shard_write_text(plan_path, c->plan_text, err)) {
        at_err_set(err, AT_EUSER, "output %s: cannot create %s", j->output_path, plan_path);
        return err->code;
    }
    unlink_entries(c->shard_dir, ".tmp"); /* a killed run's half-written shards */
    /* a sweep's points share its stop file: the sweep removes it once, at
     * its start, so a stop asked for while a point is prepared is kept */
    if (!c->sweep_point && access(c->stop_path, F_OK) == 0) {
        AT_INFO("removing the stop file %s left from an earlier run", c->stop_path);
        unlink(c->stop_path);
    }
    return 0;
}

int resume_prepare(run_ctx *c, int *complete, at_err *err) {
    const plan *p = &c->p;
    int flag = 0;
    if (c->rank == 0) decide(c, &flag, err);
    int rc = run_agree(c, err);
    if (rc) return rc;
    MPI_Bcast(&flag, 1, MPI_INT, 0, c->comm);
    *complete = flag;
    if (flag) return 0;
    shard_scan s = {0};
    if (c->rank == 0) shard_scan_dir(c, &s, err);
    if ((rc = run_agree(c, err))) {
        shard_scan_free(&s);
        return rc;
    }
    shard_scan_bcast(c, &s);
    c->done = at_calloc((size_t)p->n_units + 1, 1, "done units");
    c->n_done_before = 0;
    for (int64_t u = 0; u < p->n_units; u++)
        if (s.file_of[u] >= 0) {
            c->done[u] = 1;
            c->n_done_before++;
        }
    c->attempt = s.max_attempt + 1;
    shard_scan_free(&s);
    return 0;
}

void resume_describe(run_ctx *c, FILE *f) {
    char plan_path[JOB_PATH_MAX + 32], diff[1024];
    struct stat st;
    char *hash = NULL;
    if (stat(c->j.output_path, &st) == 0) {
        int same = h5_file_root_attr(c->j.output_path, "plan_hash", &hash) == 0 &&
                   !strcmp(hash, c->plan_hash);
        free(hash);
        fprintf(f, same ? "output: %s already holds this job's results; run would do nothing\n"
                        : "output: %s exists and holds something else; run refuses it unless "
                          "output.overwrite is true\n",
                c->j.output_path);
        if (same) return;
    }
    snprintf(plan_path, sizeof plan_path, "%s/plan.txt", c->shard_dir);
    char *old = read_text(plan_path);
    if (!old) return;
    if (strcmp(old, c->plan_text)) {
        resume_plan_diff(old, c->plan_text, diff, sizeof diff);
        fprintf(f, "resume: %s/ holds another plan (%s); run refuses it unless --fresh\n",
                c->shard_dir, diff);
    } else {
        shard_scan s;
        at_err e = {0};
        if (shard_scan_dir(c, &s, &e) == 0) {
            int64_t n = 0;
            for (int64_t u = 0; u < c->p.n_units; u++) n += s.file_of[u] >= 0;
            fprintf(f, "resume: %lld of %lld units are done in %s/; run computes the rest\n",
                    (long long)n, (long long)c->p.n_units, c->shard_dir);
        }
        shard_scan_free(&s);
    }
    free(old);
}

void resume_cleanup(run_ctx *c) {
    if (c->rank == 0 && !c->j.keep_shards) remove_dir(c->shard_dir);
}
