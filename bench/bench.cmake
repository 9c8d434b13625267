add_executable(ig_bench ${CMAKE_CURRENT_SOURCE_DIR}/ig_bench.c)
target_link_libraries(ig_bench PRIVATE attrib_methods attrib_engine attrib_core)
