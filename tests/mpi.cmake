# MPI tests (under mpirun with 1, 2 and 4 ranks): the communicator layer and the decomposition.
harsanyi_add_mpi_test(test_mpi_communicator)
harsanyi_add_mpi_test(test_mpi_decomposition)

# `harsanyi extract` and `harsanyi run` under mpirun (1, 2 and 4 ranks) against one process.
add_test(NAME cli_mpi COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_mpi.sh $<TARGET_FILE:harsanyi>)
set_tests_properties(cli_mpi PROPERTIES LABELS "mpi;cli" PROCESSORS 2 TIMEOUT 1200)
harsanyi_add_mpi_test(test_mpi_h5 LIBS harsanyi_app)
