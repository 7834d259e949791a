# Datasets, study config and players (no LibTorch): target harsanyi_data.
add_library(harsanyi_data STATIC
  ${CMAKE_CURRENT_LIST_DIR}/players.cpp)
target_include_directories(harsanyi_data PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(harsanyi_data PUBLIC harsanyi_core)
