# Sweeps over models and checkpoints (docs/jobs.md: model.epoch, Sweeps):
# model.epoch over the checkpoints of the influence tests' MLP 784-16-10 and
# model.path over two models, each point's input x gradient against numpy
# from that checkpoint's or model's own parameters.
add_test(NAME sweep_models_checkpoints COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_model_sweep.py $<TARGET_FILE:attrib> ${MPIEXEC_EXECUTABLE}
  ${E2E}/fmnist.h5 ${INFL}/mlp16.h5
  ${INFL}/mlp16.ckpt.h5 ${E2E}/mlp.h5 ${CMAKE_BINARY_DIR}/model_sweep)
set_tests_properties(sweep_models_checkpoints PROPERTIES LABELS "sweep;mpi;e2e"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp;infl_mlp" TIMEOUT 120)
