# MPI benchmarks on the driver's MPI mode (bench/README.md): reduce_perf (reproducible_sum
# against MPI_Allreduce(MPI_SUM)) and h5write_perf (parallel HDF5 writes through MPI-IO,
# collective against independent transfers; the raw HDF5 C API).
add_executable(reduce_perf ${CMAKE_CURRENT_LIST_DIR}/reduce_perf.cpp)
target_link_libraries(reduce_perf PRIVATE harsanyi_bench_driver harsanyi_mpi)
target_compile_options(reduce_perf PRIVATE ${HARSANYI_KERNEL_FLAGS})

add_executable(h5write_perf ${CMAKE_CURRENT_LIST_DIR}/h5write_perf.cpp)
target_include_directories(h5write_perf PRIVATE ${HDF5_INCLUDE_DIRS})
target_compile_definitions(h5write_perf PRIVATE ${HDF5_DEFINITIONS})
target_link_libraries(h5write_perf PRIVATE harsanyi_bench_driver harsanyi_mpi ${HDF5_C_LIBRARIES})

set_target_properties(reduce_perf h5write_perf PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/bench)
