# Training-data attribution: per-example gradient features and projections
# (workers/influence/tda_feat.h).
attrib_unit_test(test_tda_feat SOURCES test_tda_feat.c LIBS attrib_influence LABELS unit)
set_tests_properties(test_tda_feat PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
