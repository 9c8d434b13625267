# Every feature-attribution kind and every metric through `attrib run`:
# 1, 2 and 3 ranks, static and dynamic scheduler, must give the same bytes
# (tests/jobs/all_methods.yaml on the demo MLP, all_methods_cnn.yaml on a
# small CNN trained for one epoch here). The methods' known answers are
# checked by the unit tests test_methods*, test_rules, test_perturb,
# test_masks and test_metrics.
add_test(NAME e2e_train_small_cnn COMMAND attrib train
  ${ATTRIB_SRC_DIR}/tests/jobs/train_small_cnn.yaml
  --set data.path=${E2E}/fmnist.h5 --set model.path=${E2E}/small_cnn.h5)
set_tests_properties(e2e_train_small_cnn PROPERTIES LABELS e2e FIXTURES_SETUP small_cnn
  FIXTURES_REQUIRED fmnist ENVIRONMENT "OPENBLAS_NUM_THREADS=1" TIMEOUT 300)

foreach(job all_methods all_methods_cnn)
  if(job STREQUAL all_methods)
    set(model ${E2E}/mlp.h5)
    set(fix mlp)
  else()
    set(model ${E2E}/small_cnn.h5)
    set(fix small_cnn)
  endif()
  set(outs)
  set(fixes)
  foreach(run "1;static" "2;dynamic" "3;static")
    list(GET run 0 n)
    list(GET run 1 sched)
    set(name e2e_${job}_${sched}_np${n})
    add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
      ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
      ${ATTRIB_SRC_DIR}/tests/jobs/${job}.yaml --set data.path=${E2E}/fmnist.h5
      --set model.path=${model} --set run.scheduler=${sched} -o ${E2E}/${name}.h5 --fresh)
    # the 1-rank run is the sanitizer pass's; the others repeat its code
    if(n EQUAL 1)
      set(labels "e2e;mpi")
    else()
      set(labels "e2e;mpi;repeat")
    endif()
    set_tests_properties(${name} PROPERTIES LABELS "${labels}" ENVIRONMENT "${ATTRIB_MPI_ENV}"
      FIXTURES_REQUIRED "fmnist;${fix}" FIXTURES_SETUP ${name} RESOURCE_LOCK cpu TIMEOUT 600
      PASS_REGULAR_EXPRESSION "wrote ")
    list(APPEND outs ${E2E}/${name}.h5)
    list(APPEND fixes ${name})
  endforeach()
  add_test(NAME e2e_${job}_invariance COMMAND ${ATTRIB_PYTHON}
    ${ATTRIB_SRC_DIR}/tests/check_same_results.py ${outs})
  set_tests_properties(e2e_${job}_invariance PROPERTIES LABELS "e2e;mpi;repeat"
    FIXTURES_REQUIRED "${fixes}")
endforeach()

# The README's example job, on 64 rows and 2 ranks.
add_test(NAME e2e_compare_methods_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2
  ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run
  ${ATTRIB_SRC_DIR}/jobs/compare_methods.yaml --set data.path=${E2E}/fmnist.h5
  --set model.path=${E2E}/mlp.h5 --set data.rows=0:64 -o ${E2E}/compare_methods.h5 --fresh
  --set output.overwrite=true)
set_tests_properties(e2e_compare_methods_np2 PROPERTIES LABELS "e2e;mpi"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" FIXTURES_REQUIRED "fmnist;mlp" FIXTURES_SETUP compare_methods RESOURCE_LOCK cpu
  TIMEOUT 600 PASS_REGULAR_EXPRESSION "kernel_shap \\(200 columns\\); completeness")

# Feature groups from a mask dataset of the data file = the same groups from
# a patch grid, byte for byte.
add_test(NAME e2e_feature_mask COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/check_feature_mask.py $<TARGET_FILE:attrib> ${E2E}/fmnist.h5
  ${E2E}/mlp.h5 ${E2E}/feature_mask)
set_tests_properties(e2e_feature_mask PROPERTIES LABELS e2e FIXTURES_REQUIRED "fmnist;mlp"
  ENVIRONMENT "${ATTRIB_MPI_ENV}" TIMEOUT 300)
