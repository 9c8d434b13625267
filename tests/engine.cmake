# Core, scheduler, engine and method unit tests (no MPI, no files).
attrib_unit_test(test_core SOURCES test_core.c LIBS attrib_sched attrib_core LABELS unit)
attrib_unit_test(test_grad SOURCES test_grad.c LIBS attrib_engine LABELS "unit;grad")
attrib_unit_test(test_methods SOURCES test_methods.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_grad test_methods PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
