/* replay_main.c — run a fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer: the regression inputs and seed corpora of tests/fuzz
 * replay in every build (gcc, release and ASan+UBSan) as ordinary ctest
 * tests. A broken property aborts inside the target, failing the test.
 *
 * usage: fuzz_replay_<target> FILE_OR_DIR...   (directories: every regular
 * file in them, sorted by name; a missing directory is an error) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return -1;
    /* an exact-size copy, so ASan sees reads past the input's end */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int n = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= replay_file(argv[i]) != 0;
            n++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "replay: cannot read directory %s\n", argv[i]);
            bad = 1;
            continue;
        }
        char **names = NULL;
        size_t k = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.') continue;
            names = realloc(names, (k + 1) * sizeof *names);
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[k] = malloc(len);
            snprintf(names[k++], len, "%s/%s", argv[i], e->d_name);
        }
        closedir(d);
        if (k) qsort(names, k, sizeof *names, cmp);
        for (size_t j = 0; j < k; j++) {
            if (stat(names[j], &st) == 0 && S_ISREG(st.st_mode)) {
                bad |= replay_file(names[j]) != 0;
                n++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replay: %d inputs, %s\n", n, bad ? "some could not be read" : "all passed");
    return bad;
}
