# The study pipeline behind `harsanyi run`: the study file (in harsanyi_app, no LibTorch).
target_sources(harsanyi_app PRIVATE ${CMAKE_CURRENT_LIST_DIR}/study_writer.cpp)
