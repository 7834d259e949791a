# LibTorch models, training, checkpoints and masked forwards (network.h): target harsanyi_torch.
# network.cpp is the only translation unit that includes LibTorch (~17 s, 1.2 GB to compile);
# network_common.cpp holds the LibTorch-free parts.
add_library(harsanyi_torch STATIC
  ${CMAKE_CURRENT_LIST_DIR}/network.cpp
  ${CMAKE_CURRENT_LIST_DIR}/network_common.cpp)
target_include_directories(harsanyi_torch PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(harsanyi_torch PUBLIC harsanyi_data PRIVATE harsanyi_cuda ${TORCH_LIBRARIES})
# network.h passes std::string and std::vector across the library boundary, so LibTorch must use
# the C++11 ABI of the rest of the build (Debian's 1.13 and PyTorch >= 2.7 wheels both do).
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
  message(FATAL_ERROR "this LibTorch was built with the pre-C++11 ABI (${TORCH_CXX_FLAGS}); "
                      "use a LibTorch built with _GLIBCXX_USE_CXX11_ABI=1")
endif()
