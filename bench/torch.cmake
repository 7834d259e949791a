# masked_forward_perf: v(x_S) of all 2^n masked inputs through Network::masked_values against
# plain batched inference of the same model (bench/README.md).
add_executable(masked_forward_perf ${CMAKE_CURRENT_LIST_DIR}/masked_forward_perf.cpp)
target_link_libraries(masked_forward_perf PRIVATE harsanyi_bench_driver harsanyi_torch harsanyi_cuda)
set_target_properties(masked_forward_perf PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/bench)
