/* fuzz_h5_raw.c — the HDF5 loaders on raw bytes: the input is written to a
 * scratch file as is and every loader runs on it (fuzz_h5_check.h).
 *
 * For running by hand only (docs/robustness.md): HDF5 1.10.8 itself reads
 * out of bounds or crashes on some malformed files, inside the library, so
 * this target's findings are mostly HDF5's and it is not part of CI. Look at
 * a finding's stack: a frame in io/h5io.c above the HDF5 frames is ours. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_h5_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_path();
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "fuzz_h5_raw: cannot write %s\n", path);
        abort();
    }
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    fuzz_check_file(path, size ? data[size - 1] : 0);
    remove(path);
    return 0;
}
