#!/usr/bin/env bash
# The test command (README.md): installs what is missing, builds, fetches
# the Linux guest, runs every test with ctest and says how many were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

scripts/install-deps.sh
scripts/build.sh
scripts/linux-guest.sh --quiet >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
(cd "$build_dir" && ctest --output-on-failure --timeout 600 "$@") 2>&1 | tee "$log" || status=$?

# ctest counts a skipped test as neither passed nor failed; say how many.
skipped=$(grep -c '(Skipped)$' "$log" || true)
echo "ctest: ${skipped} test(s) skipped$( ((skipped)) && echo ' (listed above with their reasons)')"
exit "$status"
