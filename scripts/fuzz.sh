#!/usr/bin/env bash
# Fuzzes ember's input edges that have a target in tests/fuzz, with clang
# 14's libFuzzer, ASan and UBSan, in build-fuzz/ (clang-14 is installed
# from Debian when missing). Each target runs SECONDS (default 60) from its
# corpus and regressions; new interesting inputs go to build-fuzz/corpus/,
# crashers to tests/fuzz/regressions/<target>/, which ctest replays in the
# normal build: commit them with the fix.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(fuzz_block_device fuzz_tap_net_device fuzz_vsock_device fuzz_config
  fuzz_entropy_device fuzz_kernel_loader fuzz_mmio_transport fuzz_vhost_user_replies fuzz_serial
  fuzz_mmds_http fuzz_mmds_stack fuzz_api_http)

scripts/install-deps.sh >/dev/null
if ! command -v clang++-14 >/dev/null; then
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q --no-install-recommends clang-14
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMBER_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"
status=0
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target
  regressions=tests/fuzz/regressions/$target
  mkdir -p "$corpus" "$regressions"
  echo "fuzz: $target for ${seconds}s"
  build-fuzz/tests/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix="$regressions/" "$corpus" "tests/fuzz/corpus/$target" "$regressions" \
    2>&1 | grep -E '#[0-9]+ *DONE|^Done [0-9]+ runs|==ERROR|^SUMMARY|Test unit written' || status=1
done
exit "$status"
