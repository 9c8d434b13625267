# Sweeps (docs/jobs.md "Sweeps", docs/format.md "Sweep results"): the same
# bytes on 1, 2 and 3 ranks, points equal to standalone runs, SLURM-style
# slices merged, a stopped sweep resumed, the dry-run's listing. The bad
# inputs of sweeps are rows sweep_* of tests/bad_inputs.table.
foreach(case ranks points slices stop dryrun)
  add_test(NAME sweep_${case} COMMAND bash ${ATTRIB_SRC_DIR}/tests/check_sweep.sh ${case}
    $<TARGET_FILE:attrib> ${MPIEXEC_EXECUTABLE} ${ATTRIB_SRC_DIR} ${E2E}/fmnist.h5 ${E2E}/mlp.h5
    ${CMAKE_BINARY_DIR}/sweep)
  # ranks: the same code on 1, 2 and 3 ranks, compared byte for byte in
  # the release pass; the sanitizer pass sees that code in the other cases
  set(extra "")
  if(case STREQUAL "ranks")
    set(extra ";repeat")
  endif()
  set_tests_properties(sweep_${case} PROPERTIES LABELS "sweep;mpi;e2e${extra}"
    ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp" TIMEOUT 120)
endforeach()
