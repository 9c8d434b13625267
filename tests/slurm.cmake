# SLURM integration: the slurm/ templates submitted for real to a one-node
# cluster (munged, slurmctld, slurmd) that tests/slurm/run_case.sh starts in
# a temp dir and stops by PID, whatever happens. Needs root and the Debian
# packages slurm-wlm slurmctld slurmd slurm-client munge; without them, or
# when the daemons cannot start, the tests report Skipped (exit 77) with the
# reason in their output (ctest -L slurm --output-on-failure -V shows it).
# Docs: docs/slurm.md. Labels: slurm (all), slow (the requeue tests).
#   ctest -L slurm
set(SLURM_E2E ${CMAKE_BINARY_DIR}/e2e) # written by e2e_import / e2e_train
set(SLURM_WORK ${CMAKE_BINARY_DIR}/slurm)
set(SLURM_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_mpi_yield_when_idle=1;OPENBLAS_NUM_THREADS=1")

# case, ctest timeout (s), extra labels
foreach(spec "single;240;" "array;240;" "sweep;240;" "requeue;600;slow" "requeue_mpirun;420;slow")
  list(GET spec 0 c)
  list(GET spec 1 timeout)
  list(GET spec 2 extra)
  add_test(NAME slurm_${c} COMMAND bash ${ATTRIB_SRC_DIR}/tests/slurm/run_case.sh ${c}
    $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${SLURM_E2E}/fmnist.h5 ${SLURM_E2E}/mlp.h5
    ${SLURM_WORK}/${c})
  set_tests_properties(slurm_${c} PROPERTIES LABELS "slurm;${extra}"
    FIXTURES_REQUIRED "fmnist;mlp" RESOURCE_LOCK cpu SKIP_RETURN_CODE 77
    TIMEOUT ${timeout} ENVIRONMENT "${SLURM_ENV}")
endforeach()
