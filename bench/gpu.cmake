# GPU benchmarks (bench/README.md): the CUDA kernels timed with CUDA events against a device copy,
# the bytes floor, the dense cuBLAS GEMM baseline and the CPU kernels. Built only with CUDA.
if(HARSANYI_HAVE_CUDA)
  add_library(harsanyi_bench_gpu STATIC ${CMAKE_CURRENT_LIST_DIR}/gpu_timer.cu
                                        ${CMAKE_CURRENT_LIST_DIR}/gpu_common.cpp)
  set_target_properties(harsanyi_bench_gpu PROPERTIES CUDA_ARCHITECTURES "${HARSANYI_CUDA_ARCHS}")
  target_compile_options(harsanyi_bench_gpu PRIVATE
                         $<$<COMPILE_LANGUAGE:CUDA>:-O3 -Xcompiler=-Wall,-Wextra>)
  target_link_libraries(harsanyi_bench_gpu PUBLIC harsanyi_bench_driver harsanyi_cuda
                                                  CUDA::cudart CUDA::cublas)
  foreach(op gpu_moebius_perf gpu_sgd_perf gpu_optimal_perf gpu_order_perf)
    add_executable(${op} ${CMAKE_CURRENT_LIST_DIR}/${op}.cpp)
    target_link_libraries(${op} PRIVATE harsanyi_bench_gpu)
    target_compile_options(${op} PRIVATE ${HARSANYI_KERNEL_FLAGS})
    set_target_properties(${op} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  endforeach()
endif()
