# Tests of the data part: dataset readers, study config, players and masking.
harsanyi_add_test(test_dataset harsanyi_data)
harsanyi_add_test(test_study_config harsanyi_data)
harsanyi_add_test(test_players harsanyi_data)
