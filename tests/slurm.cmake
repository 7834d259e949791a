# Batch-system support: the graceful stop of `harsanyi run` by a signal (outside any batch
# system), the Slurm job scripts of slurm/ on a real one-node Slurm cluster, and the scaling
# driver of bench/. A script that cannot run here (no Fashion-MNIST, no Slurm daemons installed)
# prints "SKIP: reason", which ctest reports as skipped.
add_test(NAME cli_stop_signal
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_stop_signal.sh $<TARGET_FILE:harsanyi>)
set_tests_properties(cli_stop_signal PROPERTIES LABELS cli PROCESSORS 2 TIMEOUT 600
                     SKIP_REGULAR_EXPRESSION "SKIP: ")

# The sbatch templates on a real one-node Slurm cluster that the script starts (and always stops)
# in a private directory: the 2-task study, its stop by a signal and resubmission, the
# preemptible template's requeue, the job array, the scaling template.
add_test(NAME slurm_jobs COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_slurm.sh
                                 $<TARGET_FILE:harsanyi> ${CMAKE_BINARY_DIR})
set_tests_properties(slurm_jobs PROPERTIES LABELS slurm PROCESSORS 2 TIMEOUT 900
                     SKIP_REGULAR_EXPRESSION "SKIP: ")

# The scaling driver and the plot script on a tiny sweep (1 and 2 ranks under mpirun).
add_test(NAME bench_scaling COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_scaling.sh ${CMAKE_BINARY_DIR})
set_tests_properties(bench_scaling PROPERTIES LABELS "bench;mpi" PROCESSORS 2 TIMEOUT 600
                     SKIP_REGULAR_EXPRESSION "SKIP: ")
