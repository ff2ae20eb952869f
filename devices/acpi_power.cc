#include "devices/acpi_power.h"

#include <algorithm>

namespace ember {

void AcpiPowerDevice::Read(uint64_t /*offset*/, std::span<uint8_t> data) {
  // Sleep status: WAK_STS never set. The other registers are write-only
  // and read 0 too.
  std::fill(data.begin(), data.end(), 0);
}

void AcpiPowerDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  // The registers are one byte wide: a wider access writes its low byte.
  const uint8_t value = data[0];
  if (offset == kSleepControlOffset) {
    const uint8_t sleep_type = (value & kSleepTypeMask) >> kSleepTypeShift;
    if ((value & kSleepEnable) && sleep_type == kSleepTypeS5) on_power_off_();
  } else if (offset == kResetOffset) {
    if (value == reset_value_) on_reset_();
  }
}

}  // namespace ember
