# Expected Gradients, GradientSHAP and the noise wrapper (SmoothGrad,
# SmoothGrad^2, VarGrad): known answers, float64 oracles, split invariance.
attrib_unit_test(test_methods_grad SOURCES test_methods_grad.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_methods_grad PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
