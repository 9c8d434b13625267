# The mask family (workers/methods/masks.c): sobol and rise.
attrib_unit_test(test_masks SOURCES test_masks.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_masks PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
