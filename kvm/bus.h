// One bus type for port I/O and MMIO: address ranges mapped to devices.
// Devices see (offset inside their range, data).
//
// Thread-safety: ranges are inserted by the VMM thread while the machine is
// built, before any vCPU runs; afterwards the bus is read-only and vCPU
// threads dispatch on it concurrently. Devices lock their own state.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace ember {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `data` holds 1, 2, 4 or 8 bytes, little-endian as the guest sees them.
  virtual void Read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Maps [base, base + size) to `device`; refuses empty, wrapping or
  // overlapping ranges, naming both devices.
  Status Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t size,
                std::string device_name);

  // Dispatches an access; returns false when no device covers `address`
  // (reads then see all ones, as on real hardware).
  bool Read(uint64_t address, std::span<uint8_t> data) const;
  bool Write(uint64_t address, std::span<const uint8_t> data) const;

 private:
  struct Range {
    uint64_t base;
    uint64_t size;
    std::string name;
    std::shared_ptr<BusDevice> device;
  };
  const Range* Find(uint64_t address) const;

  std::string name_;
  std::vector<Range> ranges_;  // sorted by base, never overlapping
};

}  // namespace ember
