# The study pipeline behind `harsanyi run`: the study file (in harsanyi_app, no LibTorch) and
# the runner (training, masked forwards, solver), linked into the harsanyi binary.
target_sources(harsanyi_app PRIVATE ${CMAKE_CURRENT_LIST_DIR}/study_writer.cpp)
add_library(harsanyi_study STATIC ${CMAKE_CURRENT_LIST_DIR}/study.cpp)
target_include_directories(harsanyi_study PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(harsanyi_study PUBLIC harsanyi_app harsanyi_torch harsanyi_data)
target_link_libraries(harsanyi PRIVATE harsanyi_study)
