# Tests of the optimal AND-OR solver (src/optimal_solver.h) and of the solver dispatch.
harsanyi_add_test(test_optimal_solver harsanyi_app)
