/* eng_real.h — the element type of one instantiation of the engine's
 * generic kernels (internal to workers/engine; not part of the public API).
 *
 * The kernels (*.inc) are written once over an element type R and compiled
 * three times, by engine_f32.c, engine_f64.c and engine_c128.c, each of
 * which defines ENG_T before including this file:
 *
 *   ENG_T 0   R = float           production; names as written (eng_x)
 *   ENG_T 1   R = double          float64 oracle: finite-difference tests
 *   ENG_T 2   R = double complex  complex-step differentiation: one
 *                                 forward+backward at params + i*h*v gives
 *                                 Hessian-vector products exact to float64
 *                                 rounding (engine.h, "Curvature")
 *
 * Rules for generic code, so that all three instantiations are right:
 * - arithmetic with + - * / and the <tgmath.h> functions (exp, log, sqrt,
 *   tanh) only; they resolve to expf / exp / cexp by argument type.
 * - comparisons, max, argmax and branches look at RE(x), the real part
 *   (a ReLU's mask, a max-pool's winner, softmax's shift).
 * - erf goes through ENG_ERF (C has no complex erf; the complex version is
 *   the first-order extension erf(a) + i b erf'(a), exact for a complex step).
 * - never abs/fabs/conj of a value that carries derivatives.
 * - GEMM(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): row-major,
 *   ta/tb are CblasNoTrans/CblasTrans (a plain transpose, also for complex).
 * - S(name) gives the instantiation's function name: name, name_f64,
 *   name_c128.
 * - accumulators that must be wide use RACC (double for float, else R).
 * - ENG_CLONES before a hot pointwise kernel compiles it also for AVX2 and
 *   AVX-512 (x86-64-v3, -v4), picked at load time by the CPU (gcc's
 *   target_clones; empty elsewhere). The build targets baseline x86-64
 *   (SSE2), so without it such loops run 4 lanes wide. Kernels marked so
 *   must not depend on the lane count for their results: no reductions
 *   (ISO C mode has no FMA contraction, so elementwise results are the
 *   same bytes in every clone).
 */
#ifndef ATTRIB_ENG_REAL_H
#define ATTRIB_ENG_REAL_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#define ENG_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ENG_CLONES
#endif

#ifndef ENG_T
#error "define ENG_T (0 float, 1 double, 2 double complex) before eng_real.h"
#endif

#define _GNU_SOURCE
#include <sched.h> /* cpu_set_t for cblas.h */
#include <cblas.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tgmath.h>

#include "engine.h"

#if ENG_T == 0
typedef float R;
typedef double RACC;
#define S(name) name
#define RE(x) (x)
#define ENG_ERF(x) erf(x)
#define GEMM(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc) \
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc)
#elif ENG_T == 1
typedef double R;
typedef double RACC;
#define S(name) name##_f64
#define RE(x) (x)
#define ENG_ERF(x) erf(x)
#define GEMM(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc) \
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc)
#elif ENG_T == 2
#include <complex.h>
typedef double complex R;
typedef double complex RACC;
#define S(name) name##_c128
#define RE(x) creal(x)
static inline R eng_erf_c128(R x) {
    double a = creal(x);
    return erf(a) + I * cimag(x) * 1.1283791670955126 * exp(-a * a);
}
#define ENG_ERF(x) eng_erf_c128(x)
static inline void eng_gemm_c128(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                                 int N, int K, double al, const R *A, int lda, const R *B,
                                 int ldb, double be, R *C, int ldc) {
    R a = al, b = be;
    cblas_zgemm(CblasRowMajor, ta, tb, M, N, K, &a, A, lda, B, ldb, &b, C, ldc);
}
#define GEMM(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc) \
    eng_gemm_c128(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc)
#else
#error "ENG_T must be 0, 1 or 2"
#endif

#endif
