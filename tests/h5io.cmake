# io/h5io: dataset, model, logits and results files.

# serial: models (round trip, hash, corruption), datasets, importer checks
attrib_unit_test(test_h5io SOURCES test_h5io.c LIBS attrib_io LABELS unit)

# the real Fashion-MNIST import (Debian package dataset-fashion-mnist), ~5 s
set(ATTRIB_FMNIST_DIR /usr/share/datasets/fashion-mnist)
if(EXISTS ${ATTRIB_FMNIST_DIR}/train-images-idx3-ubyte.gz)
  add_test(NAME test_h5io_fmnist COMMAND test_h5io ${ATTRIB_FMNIST_DIR})
  set_tests_properties(test_h5io_fmnist PROPERTIES LABELS "unit;slow"
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
else()
  message(WARNING "${ATTRIB_FMNIST_DIR} not found: test_h5io_fmnist not registered "
    "(apt-get install dataset-fashion-mnist)")
endif()

# parallel: collective results files at 1, 2 and 3 ranks
set(H5IO_MPI_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_mpi_yield_when_idle=1;OPENBLAS_NUM_THREADS=1")
add_executable(test_h5results test_h5results.c)
target_link_libraries(test_h5results PRIVATE attrib_io)
foreach(n 1 2 3)
  add_test(NAME test_h5results_np${n}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} --oversubscribe
            ${MPIEXEC_PREFLAGS} $<TARGET_FILE:test_h5results> ${MPIEXEC_POSTFLAGS}
            ${CMAKE_CURRENT_BINARY_DIR}/test_h5results_np${n}.h5)
  set_tests_properties(test_h5results_np${n} PROPERTIES LABELS "mpi"
    PROCESSORS ${n} TIMEOUT 120
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    ENVIRONMENT "${H5IO_MPI_ENV}")
endforeach()
set_tests_properties(test_h5results_np2 PROPERTIES FIXTURES_SETUP h5results_np2_file)

# the 2-rank results file as xarray (h5netcdf and netcdf4) sees it
add_test(NAME check_results_xarray
  COMMAND ${ATTRIB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/check_results_xarray.py
          ${CMAKE_CURRENT_BINARY_DIR}/test_h5results_np2.h5)
set_tests_properties(check_results_xarray PROPERTIES LABELS "mpi"
  FIXTURES_REQUIRED h5results_np2_file)
