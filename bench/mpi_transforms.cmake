# dist_moebius_perf: the Möbius transform of a vector distributed over the ranks
# (mpi/distributed_moebius.h), partner exchange against all-to-all; run under mpirun.
add_executable(dist_moebius_perf ${CMAKE_CURRENT_LIST_DIR}/dist_moebius_perf.cpp)
target_link_libraries(dist_moebius_perf PRIVATE harsanyi_bench_driver harsanyi_mpi)
target_compile_options(dist_moebius_perf PRIVATE ${HARSANYI_KERNEL_FLAGS})
set_target_properties(dist_moebius_perf PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/bench)
