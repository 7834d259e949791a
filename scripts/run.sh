#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: interactions of an example values file
# (planted games with known AND and OR terms), printing the per-order table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
H=${HARSANYI_BUILD_DIR:-build}/harsanyi
mkdir -p results
"$H" make-values --out results/example-values.h5 --n 10 --samples 8 --force
"$H" extract --values results/example-values.h5 --out results/example-interactions.h5 --force
