#include "devices/boot_timer.h"

#include "base/clock.h"

namespace ember {

void BootTimer::Read(uint64_t, std::span<uint8_t> data) {
  for (uint8_t& byte : data) byte = 0;
}

void BootTimer::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty() || data[0] != kMagic) return;
  auto wall = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start_);
  report_(static_cast<uint64_t>(wall.count()), ProcessCpuMicros() - start_cpu_us_);
}

}  // namespace ember
