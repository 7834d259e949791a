#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest). Ends with ctest's
# counts as one line "N passed, N failed, N skipped" (skipped: the GPU tests on a machine without
# a GPU, each with its reason in the log above).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BUILD=${HARSANYI_BUILD_DIR:-build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
total=$(sed -n 's/.* tests failed out of \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*tests passed, \([0-9][0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
skipped=$(grep -c '(Skipped)$' "$log" || true)
if [[ -n $total && -n $failed ]]; then
  echo "$((total - failed - skipped)) passed, $failed failed, $skipped skipped"
fi
exit "$rc"
