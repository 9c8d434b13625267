# `attrib inspect` and `attrib topk` (docs/inspect.md): every number they print
# is recomputed from the same file with h5py/numpy/scipy by
# tests/check_inspect.py. Bad command lines and files are rows inspect_* and
# topk_* of tests/bad_inputs.table (e2e_bad_inputs).
set(LOOK ${CMAKE_BINARY_DIR}/e2e/inspect)
set(LOOK_CHECK ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_inspect.py $<TARGET_FILE:attrib>)
set(LOOK_E2E ${CMAKE_BINARY_DIR}/e2e)
file(MAKE_DIRECTORY ${LOOK})

# A small feature-attribution run with metrics and agreement on 2 ranks (the
# quick-start job on 48 rows, three methods): load balance over two ranks,
# metric means and a full agreement matrix to check.
add_test(NAME inspect_run_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
  ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
  ${ATTRIB_SRC_DIR}/jobs/quickstart.yaml --set data.path=${LOOK_E2E}/fmnist.h5
  --set model.path=${LOOK_E2E}/mlp.h5 --set data.rows=0:48
  "--set=methods=[{name: ig, kind: integrated_gradients, n_steps: 16}, {name: sal, kind: saliency}, {name: ixg, kind: input_x_gradient}]"
  --set metrics.curves=true --set metrics.agreement=true -o ${LOOK}/agree.h5 --fresh)
set_tests_properties(inspect_run_np2 PROPERTIES LABELS "inspect;e2e;mpi"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp" FIXTURES_SETUP inspect_agree
  RESOURCE_LOCK cpu PASS_REGULAR_EXPRESSION "wrote ")

add_test(NAME inspect_feature COMMAND ${LOOK_CHECK} feature ${LOOK}/agree.h5)
set_tests_properties(inspect_feature PROPERTIES LABELS "inspect;e2e" FIXTURES_REQUIRED inspect_agree)

add_test(NAME inspect_quickstart COMMAND ${LOOK_CHECK} feature ${LOOK_E2E}/quickstart.h5)
set_tests_properties(inspect_quickstart PROPERTIES LABELS "inspect;e2e" FIXTURES_REQUIRED quickstart)

add_test(NAME inspect_influence COMMAND ${LOOK_CHECK} influence
  ${LOOK_E2E}/influence/infl_logreg_np1.h5)
set_tests_properties(inspect_influence PROPERTIES LABELS "inspect;e2e;influence"
  FIXTURES_REQUIRED infl_logreg_np1)

# A sweep file in the common layout, built with h5py from copies of a results
# file: Spearman and relative L2 against scipy, closed forms, --point.
add_test(NAME inspect_sweep COMMAND ${LOOK_CHECK} sweep ${LOOK}/agree.h5 ${LOOK}/sweep)
set_tests_properties(inspect_sweep PROPERTIES LABELS "inspect;e2e" FIXTURES_REQUIRED inspect_agree)

add_test(NAME inspect_topk COMMAND ${LOOK_CHECK} topk ${LOOK_E2E}/influence/infl_logreg_np1.h5
  ${LOOK}/agree.h5 ${LOOK}/topk)
set_tests_properties(inspect_topk PROPERTIES LABELS "inspect;e2e;influence"
  FIXTURES_REQUIRED "infl_logreg_np1;inspect_agree")

# docs/inspect.md: every console example is run and its output must match.
add_test(NAME inspect_doc_examples COMMAND ${LOOK_CHECK} doc ${ATTRIB_SRC_DIR}/docs/inspect.md
  results/agree.h5=${LOOK}/agree.h5
  results/influence.h5=${LOOK_E2E}/influence/infl_logreg_np1.h5
  results/sweep.h5=${LOOK}/sweep/sweep.h5)
set_tests_properties(inspect_doc_examples PROPERTIES LABELS "inspect;e2e"
  FIXTURES_REQUIRED "infl_logreg_np1;inspect_agree;inspect_sweep_file")
set_tests_properties(inspect_sweep PROPERTIES FIXTURES_SETUP inspect_sweep_file)
