# Fuzzing (docs/robustness.md). Included by tests/CMakeLists.txt.
#
# Every build: each fuzz target's LLVMFuzzerTestOneInput, linked with a small
# main (fuzz/replay_main.c), replays the checked-in regression inputs and
# seed corpus: crashes found once stay fixed, under gcc and ASan+UBSan too.
# (h5_raw: real HDF5 files; only inputs whose problem was ours are kept.)
set(ATTRIB_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
foreach(t job h5 h5_raw)
  add_executable(fuzz_replay_${t} fuzz/fuzz_${t}.c fuzz/replay_main.c)
  target_link_libraries(fuzz_replay_${t} PRIVATE attrib_io)
  add_test(NAME fuzz_replay_${t} COMMAND fuzz_replay_${t}
    ${ATTRIB_FUZZ_DIR}/regressions/${t} ${ATTRIB_FUZZ_DIR}/corpus/${t})
  # in sanitizer builds a UBSan report must fail the replay, as in libFuzzer
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS "unit;fuzz"
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
endforeach()

# The libFuzzer executables themselves exist only in a build configured with
# CC=clang -DATTRIB_FUZZ=ON (top-level CMakeLists.txt adds the sanitizer and
# coverage flags). fuzz_h5_raw feeds HDF5 raw bytes: by hand only.
if(ATTRIB_FUZZ)
  foreach(t job h5 h5_raw)
    add_executable(fuzz_${t} fuzz/fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE attrib_io)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()

# Every build: configure and build the clang fuzz build in
# ${CMAKE_BINARY_DIR}/fuzz-build, run fuzz_job and fuzz_h5 for
# ATTRIB_FUZZ_SECONDS (default 60) each from the corpus; any finding fails.
# SKIPPED (exit 77) when clang or libFuzzer is missing, and in sanitizer or
# fuzz builds (the release build runs it).
set(ATTRIB_FUZZ_SKIP "")
if(ATTRIB_SANITIZE OR ATTRIB_FUZZ)
  set(ATTRIB_FUZZ_SKIP "this is a sanitizer/fuzz build; the release build runs the fuzzers")
endif()
add_test(NAME fuzz_run COMMAND bash ${ATTRIB_FUZZ_DIR}/run_fuzzers.sh ${PROJECT_SOURCE_DIR}
  ${CMAKE_BINARY_DIR}/fuzz-build "${ATTRIB_FUZZ_SKIP}")
set_tests_properties(fuzz_run PROPERTIES LABELS "fuzz;slow" SKIP_RETURN_CODE 77 TIMEOUT 900
  ENVIRONMENT "CMAKE=${CMAKE_COMMAND}")
