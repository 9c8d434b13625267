# PyTorch models in and out (docs/torch.md): tools/export_torch.py,
# tools/import_torch.py, and cross-checks of attrib's engine against PyTorch
# on an MLP, a CNN and a small transformer (tests/check_torch_models.py).

# engine_probe: logits, loss, input and parameter gradients, per-example
# gradients, HVP and GNVP of one batch, for the cross-checks (not a test).
add_executable(engine_probe engine_probe.c)
target_link_libraries(engine_probe PRIVATE attrib_io attrib_engine attrib_core)

foreach(model mlp cnn transformer)
  add_test(NAME torch_xcheck_${model}
    COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_torch_models.py ${model}
            --attrib ${ATTRIB_BIN} --probe $<TARGET_FILE:engine_probe>
            --workdir ${CMAKE_CURRENT_BINARY_DIR}/torch_xcheck_${model})
  set_tests_properties(torch_xcheck_${model} PROPERTIES LABELS "e2e;torch" TIMEOUT 300
    ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1")
endforeach()

# The exporter refuses what attrib cannot represent, naming module and option.
add_test(NAME torch_export_refused
  COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_torch_models.py refused
          --workdir ${CMAKE_CURRENT_BINARY_DIR}/torch_export_refused)
set_tests_properties(torch_export_refused PROPERTIES LABELS "e2e;torch" TIMEOUT 300
  ENVIRONMENT "OMP_NUM_THREADS=1")
