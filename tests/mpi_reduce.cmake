# reproducible_sum under mpirun with 1, 2 and 4 ranks: the same bits for every spread of the
# vectors over the ranks, equal to the serial stand-in, close to an exact reference.
harsanyi_add_mpi_test(test_mpi_reduce)
