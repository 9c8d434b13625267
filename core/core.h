/* core.h — errors, logging, allocation, counter-based randomness and SHA-256.
 *
 * Model of use
 * ------------
 * Functions that can fail for reasons outside the program (bad input, I/O)
 * return an int status (0 = ok) and fill an at_err record; the first error
 * wins, later at_err_set calls on a set record are ignored. Status codes are
 * process exit codes: AT_EUSER (2) means "the job/input is wrong, fix it";
 * AT_EIO (3) an I/O or system failure; AT_EINTERNAL (4) a bug.
 *
 * Broken contracts (NULL where none is allowed, shape mismatch) are bugs, not
 * outcomes: AT_CHECK aborts with file:line. Small allocations go through
 * at_malloc/at_calloc which abort with a label on out-of-memory, so callers
 * never check NULL.
 *
 * Logging lines are stamped "[rank] elapsed file:function:line". INFO lines
 * are printed by rank 0 only; WARN and ERROR by every rank. at_log_set_rank
 * is called once by the pipeline after MPI_Init; before that the rank is 0.
 *
 * Randomness is counter based (Philox4x32-10): every draw is a pure function
 * of (seed, stream, a, b), never of which rank drew it or in which order.
 * Callers choose (stream, a, b) as e.g. (purpose, row index, draw index).
 *
 * This module knows nothing of MPI, HDF5, YAML or methods.
 */
#ifndef ATTRIB_CORE_H
#define ATTRIB_CORE_H

#include <stddef.h>
#include <stdint.h>

#define ATTRIB_VERSION "0.1.0"

enum {
    AT_OK = 0,
    AT_EUSER = 2,     /* bad job, bad input file, bad command line */
    AT_EIO = 3,       /* I/O or system failure */
    AT_EINTERNAL = 4, /* a bug */
};

#define AT_ERR_MSG 2048

typedef struct {
    int code;              /* 0 while no error */
    char msg[AT_ERR_MSG];  /* human readable, names file/field/dataset */
} at_err;

/* Record an error unless one is already recorded (the first error wins).
 * Returns the recorded code (which may be an earlier one), so callers can
 * write `return at_err_set(err, AT_EUSER, "...")`. */
int at_err_set(at_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void at_err_clear(at_err *err);
/* Put context in front of a set error's message ("methods[2] (ks): " +
 * msg), keeping its code; returns the code. */
int at_err_prefix(at_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Abort with file:line when a contract is broken. */
#define AT_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) at_check_fail(#cond, __FILE__, __LINE__);                \
    } while (0)
_Noreturn void at_check_fail(const char *what, const char *file, int line);

/* Allocation that aborts with a label on OOM. at_calloc zero-fills. */
void *at_malloc(size_t n, const char *label);
void *at_calloc(size_t count, size_t size, const char *label);
void *at_realloc(void *p, size_t n, const char *label);
char *at_strdup(const char *s, const char *label);

/* Logging. */
void at_log_set_rank(int rank);
int at_log_rank(void);
double at_elapsed(void); /* seconds since the first call of any at_ time fn */
double at_now(void);     /* monotonic seconds */
void at_log(const char *level, const char *file, const char *func, int line,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define AT_INFO(...) at_log("INFO", __FILE__, __func__, __LINE__, __VA_ARGS__)
#define AT_WARN(...) at_log("WARN", __FILE__, __func__, __LINE__, __VA_ARGS__)
#define AT_ERROR(...) at_log("ERROR", __FILE__, __func__, __LINE__, __VA_ARGS__)

/* Counter-based randomness (Philox4x32-10). */
void at_philox(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);
/* Uniform in [0,1) with 24 random bits (exactly representable as float). */
float at_rng_uniform(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* Uniform double in [0,1) with 53 random bits. */
double at_rng_uniform_f64(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* Standard normal (Box-Muller on one Philox block). */
double at_rng_normal(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* Uniform integer in [0, n) without modulo bias. */
uint64_t at_rng_below(uint64_t n, uint64_t seed, uint64_t stream, uint64_t a,
                      uint64_t b);
/* perm[0..n) = a permutation of 0..n-1 that depends only on (seed, stream). */
void at_rng_permutation(uint32_t *perm, uint32_t n, uint64_t seed,
                        uint64_t stream);

/* Streams used by attrib (keep them distinct per purpose). */
enum {
    AT_STREAM_INIT = 1,    /* parameter initialisation */
    AT_STREAM_SHUFFLE = 2, /* minibatch order, a = epoch */
    AT_STREAM_NOISE = 3,   /* input noise (SmoothGrad, ...) */
    AT_STREAM_SYNTH = 4,   /* synthetic datasets (attrib import synthetic-tokens) */
};

/* SHA-256. */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} at_sha256;
void at_sha256_init(at_sha256 *s);
void at_sha256_update(at_sha256 *s, const void *data, size_t n);
void at_sha256_final(at_sha256 *s, uint8_t out[32]);
/* Hex helpers: out must hold 65 bytes. */
void at_sha256_hex(const uint8_t digest[32], char out[65]);
void at_sha256_buf_hex(const void *data, size_t n, char out[65]);

/* Formatting helpers. */
void at_human_bytes(double bytes, char *out, size_t cap); /* "12.3 MiB" */

/* Fault injection for tests. With ATTRIB_FAULT=point:n in the environment,
 * the n-th call of at_fault(point) in this process kills it with SIGKILL
 * (no cleanup, like a node failure). ATTRIB_FAULT_RANK=r limits it to the
 * process whose at_log_rank() is r. Costs one getenv per call otherwise. */
void at_fault(const char *point);

#endif
