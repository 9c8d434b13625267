# End-to-end: import Fashion-MNIST, train the demo MLP, run a job at 1, 2 and
# 3 ranks, then check the results against PyTorch, each other, and known
# properties. Fixtures order the chain; each step is its own ctest entry.
set(E2E ${CMAKE_BINARY_DIR}/e2e)
file(MAKE_DIRECTORY ${E2E})
set(ATTRIB_MPI_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_mpi_yield_when_idle=1;OMPI_MCA_rmaps_base_oversubscribe=1;OPENBLAS_NUM_THREADS=1")
set(E2E_SETS --set data.path=${E2E}/fmnist.h5 --set model.path=${E2E}/mlp.h5)

add_test(NAME e2e_import COMMAND attrib import fashion-mnist --out ${E2E}/fmnist.h5)
set_tests_properties(e2e_import PROPERTIES LABELS e2e FIXTURES_SETUP fmnist)

add_test(NAME e2e_train COMMAND attrib train ${ATTRIB_SRC_DIR}/jobs/train_mlp.yaml
  --set data.path=${E2E}/fmnist.h5 --set model.path=${E2E}/mlp.h5)
set_tests_properties(e2e_train PROPERTIES LABELS "e2e;slow" FIXTURES_SETUP mlp
  FIXTURES_REQUIRED fmnist ENVIRONMENT "OPENBLAS_NUM_THREADS=2" TIMEOUT 900)

# The trained demo MLP reaches >= 85% test accuracy; eval also writes logits.
add_test(NAME e2e_eval_accuracy COMMAND sh ${ATTRIB_SRC_DIR}/tests/check_eval.sh
  $<TARGET_FILE:attrib> ${E2E}/mlp.h5 ${E2E}/fmnist.h5 ${E2E}/logits.h5 85)
set_tests_properties(e2e_eval_accuracy PROPERTIES LABELS e2e FIXTURES_REQUIRED "fmnist;mlp"
  FIXTURES_SETUP logits)

# 1, 2 and 3 ranks, static and dynamic scheduler: six runs, one set of bytes.
foreach(n 1 2 3)
  add_test(NAME e2e_run_np${n} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
    ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
    ${ATTRIB_SRC_DIR}/tests/jobs/e2e.yaml ${E2E_SETS} -o ${E2E}/run_np${n}.h5 --fresh)
  set_tests_properties(e2e_run_np${n} PROPERTIES LABELS "e2e;mpi" ENVIRONMENT "${ATTRIB_MPI_ENV}"
    FIXTURES_REQUIRED "fmnist;mlp" FIXTURES_SETUP run_np${n} RESOURCE_LOCK cpu
    PASS_REGULAR_EXPRESSION "progress: units [0-9]+/[0-9]+.*wrote ")
  add_test(NAME e2e_run_dynamic_np${n} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
    ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
    ${ATTRIB_SRC_DIR}/tests/jobs/e2e.yaml ${E2E_SETS} --set run.scheduler=dynamic
    -o ${E2E}/run_dynamic_np${n}.h5 --fresh)
  set_tests_properties(e2e_run_dynamic_np${n} PROPERTIES LABELS "e2e;mpi"
    ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp"
    FIXTURES_SETUP run_dynamic_np${n} RESOURCE_LOCK cpu
    PASS_REGULAR_EXPRESSION "scheduler dynamic")
endforeach()

add_test(NAME e2e_rank_invariance COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_same_results.py ${E2E}/run_np1.h5 ${E2E}/run_np2.h5 ${E2E}/run_np3.h5
  ${E2E}/run_dynamic_np1.h5 ${E2E}/run_dynamic_np2.h5 ${E2E}/run_dynamic_np3.h5)
set_tests_properties(e2e_rank_invariance PROPERTIES LABELS "e2e;mpi"
  FIXTURES_REQUIRED "run_np1;run_np2;run_np3;run_dynamic_np1;run_dynamic_np2;run_dynamic_np3")

add_test(NAME e2e_torch_crosscheck COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_torch.py
  ${E2E}/mlp.h5 ${E2E}/fmnist.h5 ${E2E}/run_np2.h5 ${E2E}/logits.h5)
set_tests_properties(e2e_torch_crosscheck PROPERTIES LABELS "e2e;ref"
  FIXTURES_REQUIRED "run_np2;logits" ENVIRONMENT "OMP_NUM_THREADS=2")

add_test(NAME e2e_ig_completeness COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_completeness.py ${E2E}/run_np1.h5 ig_gl64)
set_tests_properties(e2e_ig_completeness PROPERTIES LABELS e2e FIXTURES_REQUIRED run_np1)

# The quick-start job itself, on 2 ranks.
add_test(NAME e2e_quickstart_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
  ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
  ${ATTRIB_SRC_DIR}/jobs/quickstart.yaml ${E2E_SETS} -o ${E2E}/quickstart.h5 --set output.overwrite=true)
set_tests_properties(e2e_quickstart_np2 PROPERTIES LABELS "e2e;mpi" ENVIRONMENT "${ATTRIB_MPI_ENV}"
  FIXTURES_REQUIRED "fmnist;mlp" FIXTURES_SETUP quickstart RESOURCE_LOCK cpu)

# The h5py, xarray and pandas snippets of docs/format.md run against it.
add_test(NAME e2e_format_doc_snippets COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/run_doc_snippets.py ${ATTRIB_SRC_DIR}/docs/format.md ${E2E}/quickstart.h5
  ${E2E}/mlp.h5)
set_tests_properties(e2e_format_doc_snippets PROPERTIES LABELS e2e FIXTURES_REQUIRED quickstart)

# Bad job files and bad inputs, one row each in tests/bad_inputs.table: exit 2,
# a message naming the file and field or dataset, no output, nothing changed.
add_test(NAME e2e_bad_inputs COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_bad_inputs.sh
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${E2E}/fmnist.h5 ${E2E}/mlp.h5 ${E2E}/bad
  ${MPIEXEC_EXECUTABLE})
set_tests_properties(e2e_bad_inputs PROPERTIES LABELS e2e FIXTURES_REQUIRED "fmnist;mlp"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" TIMEOUT 1200)

add_test(NAME e2e_cli COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_cli.sh
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${E2E}/fmnist.h5 ${E2E}/mlp.h5 ${E2E}/cli)
set_tests_properties(e2e_cli PROPERTIES LABELS e2e FIXTURES_REQUIRED "fmnist;mlp"
  ENVIRONMENT "${ATTRIB_MPI_ENV}")
