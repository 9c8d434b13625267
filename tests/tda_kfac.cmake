# K-FAC / EK-FAC influence curvature (workers/influence/tda_kfac.h).
attrib_unit_test(test_tda_kfac SOURCES test_tda_kfac.c LIBS attrib_influence LABELS unit)
set_tests_properties(test_tda_kfac PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
