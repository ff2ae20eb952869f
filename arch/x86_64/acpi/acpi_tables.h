// The ACPI tables ember gives a guest (ACPI 6.x, chapter 5): how stock
// kernels find the vCPUs, the IOAPIC, COM1 and the virtio-mmio devices, and
// how they power off or reset the machine. A hardware-reduced platform:
//
//   RSDP -> XSDT -> FADT -> DSDT   \_SB: a processor device per vCPU, COM1,
//                                  the i8042, a device per virtio-mmio
//                                  slot; \_S5
//                -> MADT           a local APIC per vCPU, the IOAPIC
//
// The tables live in the BIOS area (layout::kAcpiStart), the RSDP first.
// The MP table (mptable.h) stays for guests without ACPI.
//
// Thread-safety: plain functions on values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "kvm/guest_memory.h"

namespace ember::x86 {

struct AcpiVirtioMmioDevice {
  uint64_t base;
  uint64_t size;
  uint32_t irq;  // IOAPIC pin (KVM routes line n to pin n)
};

// What the tables describe.
struct AcpiMachine {
  uint32_t vcpu_count = 1;
  std::vector<AcpiVirtioMmioDevice> virtio_devices;
};

// ember's first `count` virtio-mmio slots (layout::kVirtioMmioStart,
// one window and one line from layout::kVirtioIrqs each).
std::vector<AcpiVirtioMmioDevice> VirtioMmioSlots(size_t count);

struct AcpiTable {
  std::string signature;  // "RSD PTR " for the RSDP, else the table's 4 characters
  uint64_t guest_address;
  std::vector<uint8_t> bytes;
};

struct AcpiTables {
  uint64_t rsdp_address;
  std::vector<AcpiTable> tables;  // RSDP, XSDT, FADT, MADT, DSDT, by address
};

// Builds every table with its checksums and cross-pointers, placed from
// layout::kAcpiStart; fails on a machine it cannot describe (no vCPU or too
// many, a device outside 32 bits or on a line the IOAPIC lacks) or tables
// that outgrow layout::kAcpiMaxSize.
Result<AcpiTables> BuildAcpiTables(const AcpiMachine& machine);

// Builds the tables and writes them into guest memory; returns the RSDP's
// address (for boot_params.acpi_rsdp_addr and PVH start_info.rsdp_paddr).
Result<uint64_t> WriteAcpiTables(GuestMemory& memory, const AcpiMachine& machine);

}  // namespace ember::x86
