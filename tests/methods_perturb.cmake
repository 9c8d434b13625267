# The perturbation family (workers/methods/perturb.c): occlusion, ablation,
# permutation, Shapley sampling, Kernel SHAP, LIME.
attrib_unit_test(test_perturb SOURCES test_perturb.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_perturb PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
