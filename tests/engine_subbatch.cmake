# The engine drivers' cache-sized sub-batches against whole-batch and
# one-example runs (tests/test_engine_subbatch.c).
attrib_unit_test(test_engine_subbatch SOURCES test_engine_subbatch.c LIBS attrib_engine LABELS unit)
set_tests_properties(test_engine_subbatch PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
