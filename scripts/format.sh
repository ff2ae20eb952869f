#!/usr/bin/env bash
# Formats ember's C++ (clang-format, Google base, see .clang-format).
# `scripts/format.sh --check` only reports files that need formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h' | grep -v '^tests/guest/')
if [[ ${1:-} == --check ]]; then
  clang-format --dry-run -Werror $files
else
  clang-format -i $files
fi
