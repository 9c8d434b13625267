/* engine_f32.c — the float instantiation of the generic kernels and drivers
 * (see eng_real.h). */
#define ENG_T 0
#include "eng_real.h"

#include "ops_dense.inc"
#include "ops_act.inc"
#include "ops_image.inc"
#include "ops_seq.inc"
#include "driver.inc"
