// Architectural state of a vCPU before it first runs: CPUID, MSRs, FPU,
// LAPIC wiring, and (for the boot vCPU) the registers of the entry mode.
// Called by the VMM thread on vCPU fds that are not running yet.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "kvm/guest_memory.h"

namespace ember::x86 {

enum class EntryMode {
  kLinux64,  // long mode, paging on, RSI = boot_params
  kPvh32,    // protected mode, paging off, EBX = hvm_start_info
};

struct BootEntry {
  EntryMode mode;
  uint64_t entry_point;
  uint64_t boot_info;        // zero page or start_info address
  uint64_t page_table_root;  // CR3 for kLinux64
};

Status SetCpuid(int vcpu_fd, const std::vector<kvm_cpuid_entry2>& entries);
Status SetBootMsrs(int vcpu_fd);
Status SetFpu(int vcpu_fd);
// LINT0 delivers ExtINT (the PIC), LINT1 NMI, as firmware leaves them.
Status SetLapicLints(int vcpu_fd);
// Writes the boot GDT and IDT to guest memory (once per VM).
Status WriteBootDescriptorTables(GuestMemory& memory, EntryMode mode);
// Segment, control and general registers for the boot vCPU.
Status SetBootRegisters(int vcpu_fd, const BootEntry& entry);

}  // namespace ember::x86
