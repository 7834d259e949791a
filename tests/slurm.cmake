# Batch-system support: the graceful stop of `harsanyi run` by a signal (outside any batch
# system), the Slurm job scripts of slurm/ on a real one-node Slurm cluster, and the scaling
# driver of bench/. A script that cannot run here (no Fashion-MNIST, no Slurm daemons installed)
# prints "SKIP: reason", which ctest reports as skipped.
add_test(NAME cli_stop_signal
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_stop_signal.sh $<TARGET_FILE:harsanyi>)
set_tests_properties(cli_stop_signal PROPERTIES LABELS cli PROCESSORS 2 TIMEOUT 600
                     SKIP_REGULAR_EXPRESSION "SKIP: ")
