/* core.c — see core.h. */
#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>

/* ---------------------------------------------------------------- errors */

int at_err_set(at_err *err, int code, const char *fmt, ...) {
    AT_CHECK(err != NULL && code != 0);
    if (err->code != 0) return err->code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int at_err_prefix(at_err *err, const char *fmt, ...) {
    AT_CHECK(err != NULL && err->code != 0);
    char head[AT_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    const size_t cap = sizeof err->msg;
    size_t n = strlen(head), m = strnlen(err->msg, cap - 1);
    if (n > cap - 1) n = cap - 1;
    if (n + m > cap - 1) m = cap - 1 - n;
    memmove(err->msg + n, err->msg, m);
    memcpy(err->msg, head, n);
    err->msg[n + m] = '\0';
    return err->code;
}

void at_err_clear(at_err *err) {
    err->code = 0;
    err->msg[0] = '\0';
}

_Noreturn void at_check_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "[%d] attrib: internal error: check failed: %s at %s:%d\n",
            at_log_rank(), what, file, line);
    fflush(stderr);
    abort();
}

/* ------------------------------------------------------------ allocation */

static _Noreturn void oom(size_t n, const char *label) {
    fprintf(stderr, "[%d] attrib: out of memory allocating %zu bytes for %s\n",
            at_log_rank(), n, label ? label : "?");
    fflush(stderr);
    abort();
}

void *at_malloc(size_t n, const char *label) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, label);
    return p;
}

void *at_calloc(size_t count, size_t size, const char *label) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size, label);
    return p;
}

void *at_realloc(void *p, size_t n, const char *label) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, label);
    return q;
}

char *at_strdup(const char *s, const char *label) {
    size_t n = strlen(s) + 1;
    char *p = at_malloc(n, label);
    memcpy(p, s, n);
    return p;
}

/* --------------------------------------------------------------- logging */

static int g_rank = 0;
static double g_t0 = -1.0;

void at_log_set_rank(int rank) { g_rank = rank; }
int at_log_rank(void) { return g_rank; }

double at_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double at_elapsed(void) {
    double t = at_now();
    if (g_t0 < 0) g_t0 = t;
    return t - g_t0;
}

void at_log(const char *level, const char *file, const char *func, int line,
            const char *fmt, ...) {
    if (strcmp(level, "INFO") == 0 && g_rank != 0) return;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%d] %8.3fs %s:%s:%d %s: %s\n", g_rank, at_elapsed(), base,
            func, line, level, msg);
    fflush(stderr);
}

/* ------------------------------------------------------ Philox4x32-10 RNG */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void at_philox(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32);
    uint32_t c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The key mixes seed and stream; the counter holds (a, b). */
static void draw(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b,
                 uint32_t out[4]) {
    uint64_t key = seed * 0x9E3779B97F4A7C15ull ^ (stream + 0x632BE59BD9B4E019ull);
    at_philox(key, a, b, out);
}

float at_rng_uniform(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
    uint32_t o[4];
    draw(seed, stream, a, b, o);
    return (float)(o[0] >> 8) * (1.0f / 16777216.0f);
}

double at_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
    uint32_t o[4];
    draw(seed, stream, a, b, o);
    uint64_t v = ((uint64_t)o[0] << 21) ^ (uint64_t)(o[1] >> 11);
    return (double)(v & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double at_rng_normal(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
    uint32_t o[4];
    draw(seed, stream, a, b, o);
    uint64_t v1 = ((uint64_t)o[0] << 21) ^ (uint64_t)(o[1] >> 11);
    uint64_t v2 = ((uint64_t)o[2] << 21) ^ (uint64_t)(o[3] >> 11);
    /* u1 in (0,1], u2 in [0,1) */
    double u1 = ((double)(v1 & ((1ull << 53) - 1)) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(v2 & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t at_rng_below(uint64_t n, uint64_t seed, uint64_t stream, uint64_t a,
                      uint64_t b) {
    AT_CHECK(n > 0);
    /* Rejection sampling on 64-bit draws; the retry index goes into the
     * upper half of b's counter word so draws stay pure functions. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    for (uint64_t k = 0;; k++) {
        uint32_t o[4];
        draw(seed, stream ^ (k << 48), a, b, o);
        uint64_t v = ((uint64_t)o[0] << 32) | o[1];
        if (v < limit) return v % n;
    }
}

void at_rng_permutation(uint32_t *perm, uint32_t n, uint64_t seed,
                        uint64_t stream) {
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates from the top; draw i depends only on (seed, stream, i). */
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)at_rng_below(i, seed, stream, 0, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* --------------------------------------------------------------- SHA-256 */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(at_sha256 *s, const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
        uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + mj;
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void at_sha256_init(at_sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->nbuf = 0;
}

void at_sha256_update(at_sha256 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->len += n;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take; p += take; n -= take;
        if (s->nbuf == 64) { sha256_block(s, s->buf); s->nbuf = 0; }
    }
    while (n >= 64) { sha256_block(s, p); p += 64; n -= 64; }
    if (n) { memcpy(s->buf, p, n); s->nbuf = n; }
}

void at_sha256_final(at_sha256 *s, uint8_t out[32]) {
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80;
    at_sha256_update(s, &pad, 1);
    uint8_t zero = 0;
    while (s->nbuf != 56) at_sha256_update(s, &zero, 1);
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    at_sha256_update(s, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void at_sha256_hex(const uint8_t digest[32], char out[65]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[digest[i] >> 4];
        out[2 * i + 1] = hx[digest[i] & 15];
    }
    out[64] = '\0';
}

void at_sha256_buf_hex(const void *data, size_t n, char out[65]) {
    at_sha256 s;
    uint8_t d[32];
    at_sha256_init(&s);
    at_sha256_update(&s, data, n);
    at_sha256_final(&s, d);
    at_sha256_hex(d, out);
}

/* ------------------------------------------------------------ formatting */

void at_human_bytes(double bytes, char *out, size_t cap) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 5) { bytes /= 1024.0; u++; }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

void at_fault(const char *point) {
    static int hits;
    const char *spec = getenv("ATTRIB_FAULT");
    if (!spec || !*spec) return;
    size_t n = strlen(point);
    if (strncmp(spec, point, n) != 0 || spec[n] != ':') return;
    const char *rk = getenv("ATTRIB_FAULT_RANK");
    if (rk && *rk && atoi(rk) != at_log_rank()) return;
    if (++hits == atoi(spec + n + 1)) {
        fprintf(stderr, "[%d] fault injection: SIGKILL at %s #%d\n", at_log_rank(), point, hits);
        fflush(stderr);
        raise(SIGKILL);
    }
}
