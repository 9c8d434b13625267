# workers/methods/rules.c: DeepLIFT, LRP, Guided Backprop, Deconvolution and
# Grad-CAM against a float64 oracle and their conservation properties.
attrib_unit_test(test_rules SOURCES test_rules.c LIBS attrib_methods LABELS unit)
set_tests_properties(test_rules PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

# The same methods recomputed with PyTorch's autograd, Captum's rules and
# F.interpolate (tests/check_rules_torch.py runs `test_rules --dump`).
add_test(NAME torch_rules
  COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_rules_torch.py
          $<TARGET_FILE:test_rules> ${CMAKE_CURRENT_BINARY_DIR}/torch_rules)
set_tests_properties(torch_rules PROPERTIES LABELS torch TIMEOUT 120
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
