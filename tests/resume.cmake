# Crash safety and resume (docs/resume.md): interrupted runs — stop file,
# signals, max_wall_time, a dead rank, SIGKILL at random moments and inside
# shard writes and the final assembly — rerun to the same bytes as an
# uninterrupted run; changed plans and other jobs' results are refused.
add_test(NAME resume_interruptions COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_resume.sh
  $<TARGET_FILE:attrib> ${MPIEXEC_EXECUTABLE} ${ATTRIB_SRC_DIR} ${E2E}/fmnist.h5 ${E2E}/mlp.h5
  ${CMAKE_BINARY_DIR}/resume)
set_tests_properties(resume_interruptions PROPERTIES LABELS "mpi;resume;slow"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp" RESOURCE_LOCK cpu TIMEOUT 900)

add_test(NAME resume_fault_injection COMMAND ${ATTRIB_PYTHON} ${ATTRIB_SRC_DIR}/tests/check_faults.py
  $<TARGET_FILE:attrib> ${MPIEXEC_EXECUTABLE} ${ATTRIB_SRC_DIR}/tests/jobs/resume.yaml
  ${E2E}/fmnist.h5 ${E2E}/mlp.h5 ${CMAKE_BINARY_DIR}/faults 20)
set_tests_properties(resume_fault_injection PROPERTIES LABELS "mpi;resume;slow;nosan"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp" RESOURCE_LOCK cpu TIMEOUT 1500)
