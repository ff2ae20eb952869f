#include "arch/x86_64/pvh.h"

#include "arch/x86_64/layout.h"

namespace ember::x86 {

Result<uint64_t> WritePvhStartInfo(GuestMemory& memory, uint64_t cmdline_address,
                                   const std::vector<E820Entry>& e820,
                                   const std::optional<InitrdPlacement>& initrd,
                                   uint64_t rsdp_address) {
  if (e820.size() > layout::kPvhMemmapMaxEntries) {
    return Status::Error("PVH memory map has too many entries");
  }
  PvhStartInfo info{};
  info.magic = kPvhStartInfoMagic;
  info.version = 1;
  info.cmdline_paddr = cmdline_address;
  info.rsdp_paddr = rsdp_address;
  info.memmap_paddr = layout::kPvhMemmapStart;
  info.memmap_entries = static_cast<uint32_t>(e820.size());
  if (initrd) {
    info.nr_modules = 1;
    info.modlist_paddr = layout::kPvhModlistStart;
    EMBER_RETURN_IF_ERROR(memory.WriteObject(layout::kPvhModlistStart,
                                             PvhModule{initrd->address, initrd->size, 0, 0}));
  }
  for (size_t i = 0; i < e820.size(); ++i) {
    PvhMemmapEntry entry{e820[i].address, e820[i].size, e820[i].type, 0};
    EMBER_RETURN_IF_ERROR(
        memory.WriteObject(layout::kPvhMemmapStart + i * sizeof(PvhMemmapEntry), entry));
  }
  EMBER_RETURN_IF_ERROR(memory.WriteObject(layout::kPvhInfoStart, info));
  return layout::kPvhInfoStart;
}

}  // namespace ember::x86
