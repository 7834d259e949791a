#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: `harsanyi run` with its embedded
# default study (Fashion-MNIST, LeNet, 3x3 grid players, epochs 0..30), writing results/study.h5
# and printing the per-epoch report. Extra arguments go to `harsanyi run` (e.g. --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
H=${HARSANYI_BUILD_DIR:-build}/harsanyi
mkdir -p results
if [[ $# -eq 0 ]]; then set -- --force; fi
"$H" run --set output.path=results/study.h5 "$@"
