# Training-data attribution end to end (docs/jobs.md influence, train_data,
# ground_truth): a logistic regression fitted by Newton's method and a small
# MLP with checkpoints are trained here; every influence kind and inverse runs
# on 1, 2 and 3 ranks (same bytes), and tests/check_influence.py recomputes
# the scores, top-k, leave-one-out and LDS in numpy / torch float64. Then the
# gradient store's reuse, stop and resume, and a memory limit. Bad inputs are
# rows infl_* of tests/bad_inputs.table (e2e_bad_inputs).
set(INFL ${E2E}/influence)
set(INFL_LR_JOB ${ATTRIB_SRC_DIR}/tests/jobs/influence_check_logreg.yaml)
set(INFL_MLP_JOB ${ATTRIB_SRC_DIR}/tests/jobs/influence_check_mlp.yaml)
set(INFL_CHECK ${ATTRIB_SRC_DIR}/tests/check_influence.py)

# A fresh directory: the gradient stores (OUT.store/) of earlier runs would
# otherwise be reused, and the runs would not compute anything.
add_test(NAME infl_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${INFL})
add_test(NAME infl_mkdir COMMAND ${CMAKE_COMMAND} -E make_directory ${INFL})
set_tests_properties(infl_clean PROPERTIES LABELS "e2e;influence" FIXTURES_SETUP infl_clean)
set_tests_properties(infl_mkdir PROPERTIES LABELS "e2e;influence" FIXTURES_SETUP infl_dir
  FIXTURES_REQUIRED infl_clean)

# The models: 600 train rows to the exact optimum; 784-16-10, 3 epochs of sgd
# on 2,000 rows with a checkpoint after each (mlp16.ckpt.h5).
add_test(NAME infl_train_logreg COMMAND attrib train ${INFL_LR_JOB}
  --set data.path=${E2E}/fmnist.h5 --set data.split=train --set data.rows=:600
  --set model.path=${INFL}/logreg.h5)
add_test(NAME infl_train_mlp COMMAND attrib train ${INFL_MLP_JOB}
  --set data.path=${E2E}/fmnist.h5 --set data.split=train --set data.rows=:2000
  --set model.path=${INFL}/mlp16.h5)
foreach(m logreg mlp)
  set_tests_properties(infl_train_${m} PROPERTIES LABELS "e2e;influence"
    FIXTURES_SETUP infl_${m} FIXTURES_REQUIRED "fmnist;infl_dir"
    ENVIRONMENT "OPENBLAS_NUM_THREADS=1" PASS_REGULAR_EXPRESSION "wrote ")
endforeach()

set(INFL_LR_ARGS ${INFL_LR_JOB} --set data.path=${E2E}/fmnist.h5
  --set model.path=${INFL}/logreg.h5)
set(INFL_CKPT ${INFL}/mlp16.ckpt.h5)
set(INFL_MLP_ARGS ${INFL_MLP_JOB} --set data.path=${E2E}/fmnist.h5
  --set model.path=${INFL}/mlp16.h5 --set influence.tracin.checkpoints=${INFL_CKPT}
  --set influence.tracin_n.checkpoints=${INFL_CKPT} --set influence.trak.checkpoints=${INFL_CKPT}
  --set influence.trak_kron.checkpoints=${INFL_CKPT})

# 1, 2 and 3 ranks, one set of bytes; the 1-rank run is the sanitizer pass's.
foreach(m logreg mlp)
  if(m STREQUAL logreg)
    set(args ${INFL_LR_ARGS})
  else()
    set(args ${INFL_MLP_ARGS})
  endif()
  set(outs)
  set(fixes)
  foreach(n 1 2 3)
    set(name infl_${m}_np${n})
    add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
      ${MPIEXEC_PREFLAGS} $<TARGET_FILE:attrib> ${MPIEXEC_POSTFLAGS} run ${args}
      -o ${INFL}/${name}.h5)
    if(n EQUAL 1)
      set(labels "e2e;influence;mpi")
    else()
      set(labels "e2e;influence;mpi;repeat")
    endif()
    set_tests_properties(${name} PROPERTIES LABELS "${labels}" ENVIRONMENT "${ATTRIB_MPI_ENV}"
      FIXTURES_REQUIRED "fmnist;infl_${m}" FIXTURES_SETUP ${name} RESOURCE_LOCK cpu TIMEOUT 300
      PASS_REGULAR_EXPRESSION "wrote ")
    list(APPEND outs ${INFL}/${name}.h5)
    list(APPEND fixes ${name})
  endforeach()
  add_test(NAME infl_${m}_invariance COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} same ${outs})
  set_tests_properties(infl_${m}_invariance PROPERTIES LABELS "e2e;influence;mpi;repeat"
    FIXTURES_REQUIRED "${fixes}")
endforeach()

# Every score recomputed independently (numpy float64; torch for the MLP's
# gradients), the top-k, leave-one-out refits and LDS; the xarray view.
add_test(NAME infl_logreg_numpy COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} logreg
  ${INFL}/infl_logreg_np1.h5 ${INFL}/logreg.h5 ${E2E}/fmnist.h5)
add_test(NAME infl_mlp_torch COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} mlp
  ${INFL}/infl_mlp_np1.h5 ${INFL}/mlp16.h5 ${INFL_CKPT} ${E2E}/fmnist.h5)
set_tests_properties(infl_logreg_numpy PROPERTIES LABELS "e2e;influence;ref"
  FIXTURES_REQUIRED infl_logreg_np1 ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")
set_tests_properties(infl_mlp_torch PROPERTIES LABELS "e2e;influence;ref"
  FIXTURES_REQUIRED infl_mlp_np1 ENVIRONMENT "OMP_NUM_THREADS=1;OPENBLAS_NUM_THREADS=1")

# The gradient store: a rerun over the 1-rank run's store computes nothing and
# writes its bytes; other test rows reuse every train block, and the first
# rows' blocks are still there afterwards. (`repeat`: infl_resume's reruns take
# the same store-hit paths in the sanitizer pass.)
add_test(NAME infl_store_reuse COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} reuse
  $<TARGET_FILE:attrib> ${INFL}/infl_mlp_np1.h5 ${INFL}/reuse -- ${INFL_MLP_ARGS})
set_tests_properties(infl_store_reuse PROPERTIES LABELS "e2e;influence;repeat"
  FIXTURES_REQUIRED infl_mlp_np1 ENVIRONMENT "${ATTRIB_MPI_ENV}")

# A stop file (1 rank) and SIGTERM (2 ranks) once 3 of the 52 gradient blocks
# are stored, then the same command on 2 and 3 ranks: the 1-rank run's bytes.
add_test(NAME infl_resume COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} resume $<TARGET_FILE:attrib>
  ${MPIEXEC_EXECUTABLE} ${INFL}/infl_mlp_np1.h5 ${INFL}/resume -- ${INFL_MLP_ARGS})
set_tests_properties(infl_resume PROPERTIES LABELS "e2e;influence;mpi;resume"
  FIXTURES_REQUIRED infl_mlp_np1 ENVIRONMENT "${ATTRIB_MPI_ENV}" RESOURCE_LOCK cpu TIMEOUT 300)

# ATTRIB_MEM_LIMIT below the largest stage: refused before any work.
add_test(NAME infl_memory_limit COMMAND ${ATTRIB_PYTHON} ${INFL_CHECK} memlimit
  $<TARGET_FILE:attrib> ${INFL}/memlimit -- ${INFL_MLP_ARGS})
set_tests_properties(infl_memory_limit PROPERTIES LABELS "e2e;influence"
  FIXTURES_REQUIRED infl_mlp ENVIRONMENT "${ATTRIB_MPI_ENV}")

# The ```python influence blocks of docs/format.md and docs/influence.md run
# against the 1-rank logistic-regression results (exact, dot, ekfac, trak
# with leave-one-out and LDS); the example jobs of jobs/ validate against the
# data and the test's model.
add_test(NAME infl_format_doc_snippets COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/run_doc_snippets.py ${ATTRIB_SRC_DIR}/docs/format.md --tag influence
  results/influence.h5=${INFL}/infl_logreg_np1.h5)
add_test(NAME infl_doc_snippets COMMAND ${ATTRIB_PYTHON}
  ${ATTRIB_SRC_DIR}/tests/run_doc_snippets.py ${ATTRIB_SRC_DIR}/docs/influence.md --tag influence
  results/influence.h5=${INFL}/infl_logreg_np1.h5 models/logreg.h5=${INFL}/logreg.h5
  data/fashion-mnist.h5=${E2E}/fmnist.h5)
add_test(NAME infl_example_jobs COMMAND sh -c
  "$0 validate $1/jobs/train_logreg.yaml --set data.path=$2 && $0 validate $1/jobs/influence.yaml --set data.path=$2 --set model.path=$3"
  $<TARGET_FILE:attrib> ${ATTRIB_SRC_DIR} ${E2E}/fmnist.h5 ${INFL}/logreg.h5)
set_tests_properties(infl_format_doc_snippets infl_doc_snippets infl_example_jobs PROPERTIES
  LABELS "e2e;influence" FIXTURES_REQUIRED "fmnist;infl_logreg_np1;infl_logreg"
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
