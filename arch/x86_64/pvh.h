// PVH boot ABI (Xen's hvm_start_info, version 1): what a kernel entered
// through its XEN_ELFNOTE_PHYS32_ENTRY note receives in EBX.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/e820.h"
#include "kvm/guest_memory.h"

namespace ember::x86 {

constexpr uint32_t kPvhStartInfoMagic = 0x336ec578;
constexpr uint32_t kXenElfNotePhys32Entry = 18;

#pragma pack(push, 1)
struct PvhStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
struct PvhModule {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
struct PvhMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
#pragma pack(pop)
static_assert(sizeof(PvhStartInfo) == 56);
static_assert(sizeof(PvhModule) == 32);
static_assert(sizeof(PvhMemmapEntry) == 24);

struct InitrdPlacement {
  uint64_t address;
  uint64_t size;
};

// Writes start_info, the module list and the memory map at their layout
// addresses; returns the start_info address for EBX. `rsdp_address` (0: no
// ACPI) goes to rsdp_paddr.
Result<uint64_t> WritePvhStartInfo(GuestMemory& memory, uint64_t cmdline_address,
                                   const std::vector<E820Entry>& e820,
                                   const std::optional<InitrdPlacement>& initrd,
                                   uint64_t rsdp_address = 0);

}  // namespace ember::x86
