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

# ctest counts a skipped test as neither passed nor failed: say how many,
# and why (the reason GTEST_SKIP gave).
skipped=$(grep -c '(Skipped)$' "$log" || true)
if ((skipped)); then
  (cd "$build_dir" && ctest -V -R "$(sed -n 's/^\s*[0-9]* - \(.*\) (Skipped)$/\1/p' "$log" |
    sed 's/[][().*+?^$|]/\\&/g' | paste -sd '|')") 2>/dev/null |
    grep -A1 ': Skipped$' | grep -v -e ': Skipped$' -e '^--$' | sed 's/^[0-9]*: /  skip reason: /' | sort -u
fi
echo "ctest: ${skipped} test(s) skipped"
exit "$status"
