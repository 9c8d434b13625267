/* test_jobs_doc.c — docs/jobs.md against the job schema (job_schema_fields).
 *
 * Usage: test_jobs_doc PATH/TO/docs/jobs.md
 *
 * Checks, printing every failure and exiting 1 if there was any:
 *  - every schema field has exactly one table row "| `PATH` | TYPE | DEFAULT |
 *    ... |" whose type and default equal the schema's (a default may be
 *    wrapped in one pair of backticks);
 *  - every such row names a field of the schema (no stale rows);
 *  - every ```yaml block is a valid job: "```yaml run" and "```yaml train"
 *    blocks for that purpose, plain "```yaml" blocks for JOB_PURPOSE_ANY;
 *    there is at least one run and one train example. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

static int n_failed;

#define FAIL(...)                                                             \
    do {                                                                      \
        n_failed++;                                                           \
        printf("FAIL: ");                                                     \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
    } while (0)

/* Copy cell text [b, e) trimmed of spaces into out. */
static void cell(const char *b, const char *e, char *out, size_t cap) {
    while (b < e && *b == ' ') b++;
    while (e > b && e[-1] == ' ') e--;
    size_t n = (size_t)(e - b);
    if (n >= cap) n = cap - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

static void strip_backticks(char *s) {
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '`' && s[n - 1] == '`') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

typedef struct {
    char path[128], type[64], deflt[160];
    int line;
} row;

/* A field row: "| `path` | type | default | ...". Returns 1 and fills r. */
static int parse_row(const char *line, row *r) {
    if (strncmp(line, "| `", 3) != 0) return 0;
    const char *bar[4];
    const char *p = line;
    for (int k = 0; k < 4; k++) {
        bar[k] = strchr(k ? p + 1 : p, '|');
        if (!bar[k]) return 0;
        p = bar[k];
    }
    cell(bar[0] + 1, bar[1], r->path, sizeof r->path);
    cell(bar[1] + 1, bar[2], r->type, sizeof r->type);
    cell(bar[2] + 1, bar[3], r->deflt, sizeof r->deflt);
    size_t n = strlen(r->path);
    if (n < 3 || r->path[n - 1] != '`') return 0;
    strip_backticks(r->path);
    strip_backticks(r->deflt);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_jobs_doc docs/jobs.md\n");
        return 2;
    }
    char *text = NULL;
    at_err err = {0};
    if (job_read_file(argv[1], &text, &err)) {
        printf("FAIL: %s\n", err.msg);
        return 1;
    }
    int n_fields = 0;
    const job_field_doc *f = job_schema_fields(&n_fields);
    int *seen = at_calloc((size_t)n_fields, sizeof *seen, "test: seen");

    /* Walk the lines: table rows and yaml blocks. */
    int lineno = 0, in_yaml = 0, yaml_start = 0, n_run = 0, n_train = 0;
    job_purpose purpose = JOB_PURPOSE_ANY;
    size_t block_cap = 4096, block_n = 0;
    char *block = at_malloc(block_cap, "test: yaml block");
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        if (in_yaml) {
            if (!strncmp(line, "```", 3)) {
                block[block_n] = '\0';
                job j;
                at_err e = {0};
                char src[64];
                snprintf(src, sizeof src, "jobs.md block at line %d", yaml_start);
                if (job_parse(block, src, NULL, 0, purpose, &j, &e))
                    FAIL("%s: %s", argv[1], e.msg);
                n_run += purpose == JOB_PURPOSE_RUN;
                n_train += purpose == JOB_PURPOSE_TRAIN;
                in_yaml = 0;
            } else {
                size_t k = strlen(line);
                while (block_n + k + 2 > block_cap) {
                    block_cap *= 2;
                    block = at_realloc(block, block_cap, "test: yaml block");
                }
                memcpy(block + block_n, line, k);
                block_n += k;
                block[block_n++] = '\n';
            }
        } else if (!strncmp(line, "```yaml", 7)) {
            const char *info = line + 7;
            while (*info == ' ') info++;
            purpose = !strcmp(info, "run")     ? JOB_PURPOSE_RUN
                      : !strcmp(info, "train") ? JOB_PURPOSE_TRAIN
                                               : JOB_PURPOSE_ANY;
            if (*info && purpose == JOB_PURPOSE_ANY)
                FAIL("%s:%d: unknown yaml block purpose '%s' (run or train)", argv[1],
                     lineno, info);
            in_yaml = 1;
            yaml_start = lineno;
            block_n = 0;
        } else {
            row r;
            if (parse_row(line, &r)) {
                int i = 0;
                while (i < n_fields && strcmp(f[i].path, r.path)) i++;
                if (i == n_fields) {
                    FAIL("%s:%d: `%s` is not a job field (stale row?)", argv[1], lineno,
                         r.path);
                } else {
                    if (seen[i])
                        FAIL("%s:%d: `%s` has a second row (first at line %d)",
                             argv[1], lineno, r.path, seen[i]);
                    seen[i] = lineno;
                    if (strcmp(r.type, f[i].type))
                        FAIL("%s:%d: `%s`: type '%s', the schema says '%s'", argv[1],
                             lineno, r.path, r.type, f[i].type);
                    if (strcmp(r.deflt, f[i].deflt))
                        FAIL("%s:%d: `%s`: default '%s', the schema says '%s'",
                             argv[1], lineno, r.path, r.deflt, f[i].deflt);
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (in_yaml) FAIL("%s:%d: yaml block is not closed", argv[1], yaml_start);
    for (int i = 0; i < n_fields; i++)
        if (!seen[i])
            FAIL("%s: no table row for `%s` (add: | `%s` | %s | %s | %s |)", argv[1],
                 f[i].path, f[i].path, f[i].type, f[i].deflt, f[i].doc);
    if (n_run < 1) FAIL("%s: no ```yaml run example", argv[1]);
    if (n_train < 1) FAIL("%s: no ```yaml train example", argv[1]);

    printf("test_jobs_doc: %d fields, %d run and %d train examples, %d failures\n",
           n_fields, n_run, n_train, n_failed);
    free(block);
    free(seen);
    free(text);
    return n_failed ? 1 : 0;
}
