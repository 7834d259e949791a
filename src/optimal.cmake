# The optimal AND-OR solver (CPU kernels in harsanyi_core) and the solver dispatch shared by
# `harsanyi extract` and `harsanyi run` (in harsanyi_app: it calls the CUDA backend).
target_sources(harsanyi_core PRIVATE ${CMAKE_CURRENT_LIST_DIR}/optimal_solver.cpp)
target_sources(harsanyi_app PRIVATE ${CMAKE_CURRENT_LIST_DIR}/and_or_solver.cpp)
