# Every example in the docs is run by a test (label docs).
# docs_examples walks README.md and docs/*.md and runs each shell command and
# validates each YAML job or fragment in a scratch directory, and fails on any
# example that is neither run, covered by another ctest entry (the python
# blocks below and in e2e.cmake / influence_e2e.cmake, jobs.md's YAML by
# test_jobs_doc) nor allow-listed with its reason and covering test
# (tests/check_doc_examples.py says how). It is labelled repeat too: its
# commands are the e2e tests' commands on fewer rows, so the sanitizer pass
# leaves it out. docs.cmake sorts before e2e.cmake: the e2e paths are spelled
# here again.
set(DOCS_E2E ${CMAKE_BINARY_DIR}/e2e)
set(DOCS_MPI_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_mpi_yield_when_idle=1;OMPI_MCA_rmaps_base_oversubscribe=1;OPENBLAS_NUM_THREADS=1")

add_test(NAME docs_examples COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_doc_examples.py
  --attrib $<TARGET_FILE:attrib> --src ${ATTRIB_SRC_DIR} --scratch ${CMAKE_BINARY_DIR}/docs_scratch
  --data ${DOCS_E2E}/fmnist.h5 --model ${DOCS_E2E}/mlp.h5)
set_tests_properties(docs_examples PROPERTIES LABELS "docs;repeat" FIXTURES_REQUIRED "fmnist;mlp"
  ENVIRONMENT "${DOCS_MPI_ENV}" TIMEOUT 600) # no timing in it: no cpu lock

# The README's h5py / xarray / pandas block against the quick-start results.
add_test(NAME docs_readme_snippets COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/run_doc_snippets.py ${ATTRIB_SRC_DIR}/README.md ${DOCS_E2E}/quickstart.h5
  ${DOCS_E2E}/mlp.h5)
set_tests_properties(docs_readme_snippets PROPERTIES LABELS "docs;e2e" FIXTURES_REQUIRED quickstart)

# docs/torch.md's helper-module imports (run from the source tree: "tools").
add_test(NAME docs_torch_snippets COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/run_doc_snippets.py ${ATTRIB_SRC_DIR}/docs/torch.md --tag torch)
set_tests_properties(docs_torch_snippets PROPERTIES LABELS "docs;torch"
  WORKING_DIRECTORY ${ATTRIB_SRC_DIR} ENVIRONMENT "OMP_NUM_THREADS=1")
