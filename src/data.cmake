# Datasets, study config and players (no LibTorch): target harsanyi_data.
find_package(ZLIB REQUIRED)
# toml++ is used header-only, by study_config.cpp alone.
find_path(HARSANYI_TOMLPP_INCLUDE_DIR toml++/toml.h REQUIRED)

add_library(harsanyi_data STATIC
  ${CMAKE_CURRENT_LIST_DIR}/players.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dataset_readers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/study_config.cpp)
target_include_directories(harsanyi_data PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_include_directories(harsanyi_data PRIVATE ${HARSANYI_TOMLPP_INCLUDE_DIR})
target_link_libraries(harsanyi_data PUBLIC harsanyi_core PRIVATE ZLIB::ZLIB)
