# Curvature over a parameter selection and its damped inverses
# (workers/influence/tda_solve.h): GN and Hessian vs finite differences,
# dense Cholesky/eig, CG, LiSSA, power iteration, Hutchinson.
attrib_unit_test(test_tda_solve SOURCES test_tda_solve.c LIBS attrib_influence LABELS unit)
set_tests_properties(test_tda_solve PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
