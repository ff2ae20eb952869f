#include "arch/x86_64/configure_system.h"

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/mptable.h"
#include "arch/x86_64/page_tables.h"
#include "arch/x86_64/pvh.h"

namespace ember::x86 {

Result<BootEntry> ConfigureSystem(GuestMemory& memory, const LoadedKernel& kernel,
                                  const std::optional<InitrdPlacement>& initrd,
                                  const SystemConfig& system) {
  const std::string& cmdline = system.cmdline;
  if (cmdline.size() + 1 > kernel.cmdline_max) {
    return Status::Error("the command line (" + std::to_string(cmdline.size()) +
                         " bytes) is longer than the kernel accepts (" +
                         std::to_string(kernel.cmdline_max - 1) + ")");
  }
  EMBER_RETURN_IF_ERROR(
      memory.Write(layout::kCmdlineStart,
                   {reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1}));

  std::vector<E820Entry> e820 = BuildE820(memory.regions());
  EMBER_ASSIGN_OR_RETURN(std::vector<uint8_t> mptable,
                         BuildMptable(system.vcpu_count, layout::kMptableStart));
  EMBER_RETURN_IF_ERROR(memory.Write(layout::kMptableStart, mptable));
  uint64_t rsdp_address = 0;  // 0: no ACPI
  if (system.acpi) {
    EMBER_ASSIGN_OR_RETURN(rsdp_address,
                           WriteAcpiTables(memory, {system.vcpu_count, system.virtio_devices}));
  }

  BootEntry entry{};
  entry.entry_point = kernel.entry;
  if (kernel.format == KernelFormat::kElfPvh) {
    entry.mode = EntryMode::kPvh32;
    EMBER_ASSIGN_OR_RETURN(entry.boot_info, WritePvhStartInfo(memory, layout::kCmdlineStart, e820,
                                                              initrd, rsdp_address));
  } else {
    entry.mode = EntryMode::kLinux64;
    EMBER_ASSIGN_OR_RETURN(boot_params params,
                           BuildBootParams(kernel.setup, layout::kCmdlineStart, cmdline.size() + 1,
                                           e820, initrd, rsdp_address));
    EMBER_RETURN_IF_ERROR(memory.WriteObject(layout::kZeroPageStart, params));
    entry.boot_info = layout::kZeroPageStart;
    EMBER_ASSIGN_OR_RETURN(entry.page_table_root, WriteIdentityPageTables(memory));
  }
  EMBER_RETURN_IF_ERROR(WriteBootDescriptorTables(memory, entry.mode));
  return entry;
}

}  // namespace ember::x86
