# Reproducible collective reductions (reproducible_sum.h): element-wise sums of vectors over
# ranks through 128-bit fixed point, bitwise independent of the rank count.
target_sources(harsanyi_mpi PRIVATE ${CMAKE_CURRENT_LIST_DIR}/reproducible_sum.cpp)
