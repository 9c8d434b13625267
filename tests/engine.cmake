# Core, scheduler, engine and method unit tests (no MPI, no files).
attrib_unit_test(test_core SOURCES test_core.c LIBS attrib_sched attrib_core LABELS unit)
attrib_unit_test(test_model SOURCES test_model.c LIBS attrib_engine LABELS "unit;grad")
attrib_unit_test(test_methods SOURCES test_methods.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_model test_methods PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
attrib_unit_test(test_ops_image SOURCES test_ops_image.c LIBS attrib_engine LABELS "unit;grad")
set_tests_properties(test_ops_image PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
attrib_unit_test(test_ops_seq SOURCES test_ops_seq.c LIBS attrib_engine LABELS "unit;grad")
set_tests_properties(test_ops_seq PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
# One closed form for every family: on a linear model the attributions are
# w_t * (x - baseline) (tests/test_known_answers.c).
attrib_unit_test(test_known_answers SOURCES test_known_answers.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_known_answers PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
