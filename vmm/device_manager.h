// Places the board's virtio-mmio devices, once: each takes the next slot of
// the arch's table (its register window and interrupt line), and both the
// kernel command line and the ACPI DSDT are generated from the one list
// kept here, so they cannot disagree.
//
// Thread-safety: VMM thread, while the machine is built.
#pragma once

#include <string>
#include <vector>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "base/status.h"

namespace ember {

class DeviceManager {
 public:
  DeviceManager();

  // The slot for the next device; an error names `name` when none is left.
  Result<x86::AcpiVirtioMmioDevice> PlaceVirtioDevice(const std::string& name);
  const std::vector<x86::AcpiVirtioMmioDevice>& virtio_devices() const { return placed_; }
  // " virtio_mmio.device=<size>@<base>:<irq>" for each device, in order
  // (for guests without ACPI; Linux ignores it when the DSDT has them).
  std::string VirtioCommandLine() const;

 private:
  std::vector<x86::AcpiVirtioMmioDevice> slots_;
  std::vector<x86::AcpiVirtioMmioDevice> placed_;
};

}  // namespace ember
