# io/job.c: job files. Included by tests/CMakeLists.txt.

# Parsing, defaults, --set, emit/parse round trip, error messages, and every
# tests/bad_jobs/*.yaml (found through ATTRIB_SRC_DIR).
attrib_unit_test(test_job SOURCES test_job.c LIBS attrib_io LABELS unit)
target_compile_definitions(test_job PRIVATE ATTRIB_SRC_DIR="${PROJECT_SOURCE_DIR}")

# docs/jobs.md against the schema: one table row per field with the schema's
# type and default, and every yaml example a valid job.
add_executable(test_jobs_doc test_jobs_doc.c)
target_link_libraries(test_jobs_doc PRIVATE attrib_io)
add_test(NAME test_jobs_doc COMMAND test_jobs_doc ${PROJECT_SOURCE_DIR}/docs/jobs.md)
set_tests_properties(test_jobs_doc PROPERTIES LABELS unit)

# io/arch.c: layer lists (every kind, canonical text, residual blocks, errors)
attrib_unit_test(test_arch SOURCES test_arch.c LIBS attrib_io LABELS unit)
