# Distributed lattice transforms (mpi/distributed_moebius.h) under mpirun with 1, 2 and 4 ranks:
# bitwise equal to the CPU kernels on the whole vector.
harsanyi_add_mpi_test(test_mpi_moebius)
