// Everything x86 a loaded kernel needs in guest memory before its first
// instruction: the command line, the e820 map, the MP table, the ACPI
// tables (when on), the boot information of its entry protocol (PVH
// start_info, or the zero page with identity page tables for the 64-bit
// Linux entry) and the GDT. The kernel and initrd are already loaded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/acpi/acpi_tables.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/vcpu_setup.h"
#include "base/status.h"
#include "kvm/guest_memory.h"

namespace ember::x86 {

struct SystemConfig {
  uint32_t vcpu_count = 1;
  bool acpi = true;
  std::string cmdline;  // complete, without the NUL; must fit kernel.cmdline_max
  std::vector<AcpiVirtioMmioDevice> virtio_devices;  // as placed on the board
};

// Writes the boot structures and says where and how the boot vCPU enters.
Result<BootEntry> ConfigureSystem(GuestMemory& memory, const LoadedKernel& kernel,
                                  const std::optional<InitrdPlacement>& initrd,
                                  const SystemConfig& system);

}  // namespace ember::x86
