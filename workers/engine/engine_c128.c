/* engine_c128.c — the complex128 instantiation of the generic kernels and drivers
 * (see eng_real.h). */
#define ENG_T 2
#include "eng_real.h"

#include "ops_dense.inc"
#include "ops_act.inc"
#include "ops_image.inc"
#include "ops_seq.inc"
#include "driver.inc"
