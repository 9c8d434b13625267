# Attribution metrics: deletion / insertion, infidelity, sensitivity-max,
# agreement (workers/methods/metrics.c).
attrib_unit_test(test_metrics SOURCES test_metrics.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_metrics PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
