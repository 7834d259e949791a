# Distributed lattice transforms (Möbius, zeta, their transposes and the OR transforms) of set
# functions whose 2^n values are split over the ranks of a group (distributed_moebius.h).
target_sources(harsanyi_mpi PRIVATE ${CMAKE_CURRENT_LIST_DIR}/distributed_moebius.cpp)
