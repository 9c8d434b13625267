# Ground truth for training-data attribution: Newton fits, leave-one-out,
# LDS subsets and retraining, correlation and bootstrap statistics.
attrib_unit_test(test_tda_truth SOURCES test_tda_truth.c LIBS attrib_influence LABELS unit)
set_tests_properties(test_tda_truth PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
