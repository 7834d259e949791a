#!/usr/bin/env bash
# Configures and builds harsanyi into ./build (or $HARSANYI_BUILD_DIR). Extra arguments go to cmake.
# CUDA kernels are compiled when nvcc is found (/usr/local/cuda); they run only where a GPU is.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${HARSANYI_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
