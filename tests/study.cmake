# Tests of the study pipeline.
harsanyi_add_test(test_study_writer harsanyi_app)
