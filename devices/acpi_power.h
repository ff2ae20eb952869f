// The power registers of a hardware-reduced ACPI platform (ACPI 6.x: the
// Sleep Control, Sleep Status and Reset registers), one byte each on the
// port I/O bus at the ports the FADT names (arch/x86_64/acpi/acpi_tables.h).
//
//   sleep control  a write with SLP_EN (bit 5) and SLP_TYP (bits 4:2) 5,
//                  the DSDT's \_S5, powers the machine off; other sleep
//                  states are not offered and their writes are ignored
//   sleep status   reads 0 (never woken); writes are ignored
//   reset          a write of layout::kAcpiResetValue resets the machine
//
// Thread-safety: Read/Write run on vCPU threads; the device has no state.
// The callbacks must be safe to call from any vCPU thread.
#pragma once

#include <cstdint>
#include <functional>

#include "kvm/bus.h"

namespace ember {

class AcpiPowerDevice : public BusDevice {
 public:
  // Offsets from the base port (layout::kAcpiSleepControlPort).
  static constexpr uint64_t kSleepControlOffset = 0;
  static constexpr uint64_t kSleepStatusOffset = 1;
  static constexpr uint64_t kResetOffset = 2;
  static constexpr uint64_t kPortSpan = 3;

  static constexpr uint8_t kSleepEnable = 1 << 5;
  static constexpr uint8_t kSleepTypeShift = 2;
  static constexpr uint8_t kSleepTypeMask = 0x7 << kSleepTypeShift;
  static constexpr uint8_t kSleepTypeS5 = 5;

  AcpiPowerDevice(uint8_t reset_value, std::function<void()> on_power_off,
                  std::function<void()> on_reset)
      : reset_value_(reset_value),
        on_power_off_(std::move(on_power_off)),
        on_reset_(std::move(on_reset)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const uint8_t reset_value_;
  const std::function<void()> on_power_off_;
  const std::function<void()> on_reset_;
};

}  // namespace ember
