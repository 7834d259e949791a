# The decomposition of the work over rank groups (decomposition.h).
target_sources(harsanyi_mpi PRIVATE ${CMAKE_CURRENT_LIST_DIR}/decomposition.cpp)
target_link_libraries(harsanyi_mpi PUBLIC fmt::fmt)
