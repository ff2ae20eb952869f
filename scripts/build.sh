#!/usr/bin/env bash
# Configures and builds ember, its tests, the test guest and the benchmark
# into ${BUILD_DIR:-build}. Two jobs: the machines have two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# CMAKE_ARGS: more -D options (scripts/sanitize.sh, scripts/tsan.sh).
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"
