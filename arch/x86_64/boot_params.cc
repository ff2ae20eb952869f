#include "arch/x86_64/boot_params.h"

#include <string>

namespace ember::x86 {
namespace {

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
constexpr uint8_t kLoaderUndefined = 0xff;
constexpr uint32_t kDefaultKernelAlignment = 0x1000000;

}  // namespace

Result<boot_params> BuildBootParams(const std::optional<setup_header>& setup,
                                    uint64_t cmdline_address, uint64_t cmdline_size,
                                    const std::vector<E820Entry>& e820,
                                    const std::optional<InitrdPlacement>& initrd,
                                    uint64_t acpi_rsdp_address) {
  boot_params params{};
  if (setup) {
    params.hdr = *setup;
  } else {
    params.hdr.boot_flag = kBootFlag;
    params.hdr.header = kHeaderMagic;
    params.hdr.kernel_alignment = kDefaultKernelAlignment;
    // A bzImage states its own limit here; for vmlinux it is informative.
    params.hdr.cmdline_size = static_cast<uint32_t>(cmdline_size);
  }
  params.hdr.type_of_loader = kLoaderUndefined;
  params.hdr.cmd_line_ptr = static_cast<uint32_t>(cmdline_address);
  params.ext_cmd_line_ptr = static_cast<uint32_t>(cmdline_address >> 32);
  if (initrd) {
    params.hdr.ramdisk_image = static_cast<uint32_t>(initrd->address);
    params.ext_ramdisk_image = static_cast<uint32_t>(initrd->address >> 32);
    params.hdr.ramdisk_size = static_cast<uint32_t>(initrd->size);
    params.ext_ramdisk_size = static_cast<uint32_t>(initrd->size >> 32);
  }
  if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE) {
    return Status::Error("e820 map has " + std::to_string(e820.size()) + " entries, at most " +
                         std::to_string(E820_MAX_ENTRIES_ZEROPAGE) + " fit in boot_params");
  }
  for (size_t i = 0; i < e820.size(); ++i) {
    params.e820_table[i].addr = e820[i].address;
    params.e820_table[i].size = e820[i].size;
    params.e820_table[i].type = e820[i].type;
  }
  params.e820_entries = static_cast<uint8_t>(e820.size());
  params.acpi_rsdp_addr = acpi_rsdp_address;
  return params;
}

}  // namespace ember::x86
