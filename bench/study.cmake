# study_perf: a whole `harsanyi run` study with its time split.
if(TARGET harsanyi_study)
  add_executable(study_perf study_perf.cpp)
  target_link_libraries(study_perf PRIVATE harsanyi_bench_driver harsanyi_study)
  set_target_properties(study_perf PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
