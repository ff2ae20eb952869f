#!/usr/bin/env bash
# The sanitizer stage (README.md; .ci/run runs it after scripts/test.sh):
#  1. ember, its tests and the fuzz targets' replays built with GCC's
#     AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/, and
#     the unit, KVM and backend tests run there through scripts/test.sh
#     (the nested Linux boots are left to the normal build: they test the
#     guest, not ember's memory, and cost minutes each);
#  2. every fuzz target for FUZZ_SECONDS (default 20) from its corpus,
#     with clang's libFuzzer, ASan and UBSan (scripts/fuzz.sh).
# Any sanitizer report fails the test that caused it; any fuzz crash fails
# the stage and leaves its input in tests/fuzz/regressions/.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$SECONDS
BUILD_DIR=build-asan CMAKE_ARGS="-DEMBER_SANITIZE=address,undefined" scripts/test.sh -LE nested
echo "sanitize: ASan+UBSan tests took $((SECONDS - start)) s"
start=$SECONDS
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "sanitize: fuzzing took $((SECONDS - start)) s"
