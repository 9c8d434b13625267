# Training: optimizers and schedules (unit, and replayed in torch), the
# training commands end to end (CNN on Fashion-MNIST rows, the transformer
# on the synthetic token task) and the synthetic generator.
attrib_unit_test(test_optim SOURCES test_optim.c LIBS attrib_engine LABELS unit)
set_tests_properties(test_optim PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")

# The same optimizer steps and schedules in torch.optim (torch 1.13).
add_test(NAME train_optim_torch COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_train_optim_torch.py $<TARGET_FILE:test_optim>)
set_tests_properties(train_optim_torch PROPERTIES LABELS "unit;ref"
  ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")

set(TRAIN_E2E ${CMAKE_BINARY_DIR}/e2e/train)
file(MAKE_DIRECTORY ${TRAIN_E2E})

# jobs/train_cnn.yaml on 6,000 training rows for 2 epochs, twice: test
# accuracy above the bar, checkpoints of epochs 1 and 2 with their learning
# rates, the same state_dict both times.
add_test(NAME e2e_train_cnn COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_train_cnn.py
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR}/jobs/train_cnn.yaml ${CMAKE_BINARY_DIR}/e2e/fmnist.h5
  ${TRAIN_E2E}/cnn)
set_tests_properties(e2e_train_cnn PROPERTIES LABELS e2e FIXTURES_REQUIRED fmnist
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1" RESOURCE_LOCK cpu TIMEOUT 600)

# attrib import synthetic-tokens: same seed same bytes, the ground truth
# agrees with the tokens, bad options exit 2; jobs/train_transformer.yaml
# trained briefly is far above chance.
add_test(NAME e2e_train_transformer COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_train_tokens.py $<TARGET_FILE:attrib>
  ${ATTRIB_SRC_DIR}/jobs/train_transformer.yaml ${TRAIN_E2E}/tokens)
set_tests_properties(e2e_train_transformer PROPERTIES LABELS e2e
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1;OMP_NUM_THREADS=1" RESOURCE_LOCK cpu TIMEOUT 600)

# Checkpoint files and dataset files written from memory (io/h5train.h).
attrib_unit_test(test_h5train SOURCES test_h5train.c LIBS attrib_io LABELS unit)
