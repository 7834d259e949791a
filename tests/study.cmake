# Tests of the study pipeline: the study file, and `harsanyi run` end to end.
harsanyi_add_test(test_study_writer harsanyi_app)
add_test(NAME cli_run_study COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_run.sh $<TARGET_FILE:harsanyi>
         ${CMAKE_CURRENT_SOURCE_DIR}/data/torchscript)
set_tests_properties(cli_run_study PROPERTIES LABELS cli TIMEOUT 900)
