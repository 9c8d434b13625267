add_executable(ig_bench ${CMAKE_CURRENT_SOURCE_DIR}/ig_bench.c)
target_link_libraries(ig_bench PRIVATE attrib_methods attrib_engine attrib_core)
add_executable(engine_bench ${CMAKE_CURRENT_SOURCE_DIR}/engine_bench.c)
target_link_libraries(engine_bench PRIVATE attrib_engine attrib_core)
