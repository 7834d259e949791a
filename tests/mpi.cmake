# MPI tests (under mpirun with 1, 2 and 4 ranks): the communicator layer and the decomposition.
harsanyi_add_mpi_test(test_mpi_communicator)
harsanyi_add_mpi_test(test_mpi_decomposition)
