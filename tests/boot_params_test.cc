#include "arch/x86_64/boot_params.h"

#include <gtest/gtest.h>

#include <cstddef>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/pvh.h"

namespace ember::x86 {
namespace {

TEST(E820Test, SmallMemoryHasBaseAndHighRam) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(128 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  std::vector<E820Entry> map = BuildE820(memory->regions());
  ASSERT_EQ(map.size(), 2u);
  EXPECT_EQ(map[0].address, 0u);
  EXPECT_EQ(map[0].size, layout::kEbdaStart);
  EXPECT_EQ(map[0].type, kE820Ram);
  EXPECT_EQ(map[1].address, layout::kHighMemoryStart);
  EXPECT_EQ(map[1].size, 128 * layout::kMiB - layout::kHighMemoryStart);
}

TEST(E820Test, LargeMemoryIsSplitAroundTheMmioHole) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(5 * layout::kGiB));
  ASSERT_TRUE(memory.ok());
  ASSERT_EQ(memory->regions().size(), 2u);
  EXPECT_EQ(memory->regions()[1].guest_address, layout::kMmioHoleEnd);
  EXPECT_EQ(memory->regions()[1].file_offset, layout::kMmioHoleStart);
  std::vector<E820Entry> map = BuildE820(memory->regions());
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[1].address + map[1].size, layout::kMmioHoleStart);
  EXPECT_EQ(map[2].address, layout::kMmioHoleEnd);
  EXPECT_EQ(map[2].size, 2 * layout::kGiB);
  // Nothing in the hole is RAM, and guest addresses in it do not resolve.
  EXPECT_FALSE(memory->Contains(layout::kMmioHoleStart, 1));
  EXPECT_TRUE(memory->Contains(layout::kMmioHoleEnd, 1));
  EXPECT_FALSE(memory->Contains(layout::kMmioHoleStart - 1, 2)) << "range crossing into the hole";
}

TEST(BootParamsTest, VmlinuxGetsLoaderFieldsCmdlineInitrdAndE820) {
  std::vector<E820Entry> map = {{0, layout::kEbdaStart, kE820Ram},
                                {layout::kHighMemoryStart, 0x7f00000, kE820Ram}};
  InitrdPlacement initrd{0x7000000, 12345};
  Result<boot_params> params =
      BuildBootParams(std::nullopt, layout::kCmdlineStart, 20, map, initrd);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->hdr.boot_flag, 0xaa55);
  EXPECT_EQ(params->hdr.header, 0x53726448u);
  EXPECT_EQ(params->hdr.type_of_loader, 0xff);
  EXPECT_EQ(params->hdr.cmd_line_ptr, layout::kCmdlineStart);
  EXPECT_EQ(params->hdr.cmdline_size, 20u);
  EXPECT_EQ(params->hdr.ramdisk_image, 0x7000000u);
  EXPECT_EQ(params->hdr.ramdisk_size, 12345u);
  EXPECT_EQ(params->e820_entries, 2);
  EXPECT_EQ(params->e820_table[1].addr, layout::kHighMemoryStart);
  EXPECT_EQ(params->e820_table[1].size, 0x7f00000u);
  EXPECT_EQ(params->e820_table[1].type, kE820Ram);
}

TEST(BootParamsTest, BzImageHeaderIsKeptAndLoaderFieldsSet) {
  setup_header header{};
  header.version = 0x020f;
  header.cmdline_size = 2047;
  header.init_size = 0x1234000;
  Result<boot_params> params = BuildBootParams(header, layout::kCmdlineStart, 10, {}, std::nullopt);
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->hdr.version, 0x020f);
  EXPECT_EQ(params->hdr.init_size, 0x1234000u);
  EXPECT_EQ(params->hdr.cmdline_size, 2047u) << "the kernel's own limit is not overwritten";
  EXPECT_EQ(params->hdr.type_of_loader, 0xff);
  EXPECT_EQ(params->hdr.ramdisk_image, 0u);
}

TEST(BootParamsTest, RejectsMoreE820EntriesThanFit) {
  std::vector<E820Entry> map(E820_MAX_ENTRIES_ZEROPAGE + 1, E820Entry{0, 4096, kE820Ram});
  EXPECT_FALSE(BuildBootParams(std::nullopt, layout::kCmdlineStart, 1, map, std::nullopt).ok());
}

TEST(BootParamsTest, AcpiRsdpAddressAtOffset0x70OnlyWhenGiven) {
  static_assert(offsetof(boot_params, acpi_rsdp_addr) == 0x70);
  Result<boot_params> without =
      BuildBootParams(std::nullopt, layout::kCmdlineStart, 1, {}, std::nullopt);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->acpi_rsdp_addr, 0u);
  Result<boot_params> with =
      BuildBootParams(std::nullopt, layout::kCmdlineStart, 1, {}, std::nullopt, layout::kAcpiStart);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(with->acpi_rsdp_addr, layout::kAcpiStart);
}

TEST(PvhTest, StartInfoCarriesTheRsdpOnlyWhenGiven) {
  static_assert(offsetof(PvhStartInfo, rsdp_paddr) == 32);
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  std::vector<E820Entry> map = BuildE820(memory->regions());
  for (uint64_t rsdp : {uint64_t{0}, layout::kAcpiStart}) {
    Result<uint64_t> address =
        WritePvhStartInfo(*memory, layout::kCmdlineStart, map, std::nullopt, rsdp);
    ASSERT_TRUE(address.ok());
    PvhStartInfo info{};
    ASSERT_TRUE(memory->Read(*address, {reinterpret_cast<uint8_t*>(&info), sizeof(info)}).ok());
    EXPECT_EQ(info.rsdp_paddr, rsdp);
  }
}

TEST(PvhTest, StartInfoPointsAtCmdlineMemmapAndModule) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(64 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  std::vector<E820Entry> map = BuildE820(memory->regions());
  Result<uint64_t> address =
      WritePvhStartInfo(*memory, layout::kCmdlineStart, map, InitrdPlacement{0x3000000, 777});
  ASSERT_TRUE(address.ok());
  PvhStartInfo info{};
  ASSERT_TRUE(memory->Read(*address, {reinterpret_cast<uint8_t*>(&info), sizeof(info)}).ok());
  EXPECT_EQ(info.magic, kPvhStartInfoMagic);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.cmdline_paddr, layout::kCmdlineStart);
  EXPECT_EQ(info.memmap_entries, map.size());
  EXPECT_EQ(info.nr_modules, 1u);
  PvhModule module{};
  ASSERT_TRUE(
      memory->Read(info.modlist_paddr, {reinterpret_cast<uint8_t*>(&module), sizeof(module)}).ok());
  EXPECT_EQ(module.paddr, 0x3000000u);
  EXPECT_EQ(module.size, 777u);
  PvhMemmapEntry last{};
  ASSERT_TRUE(memory
                  ->Read(info.memmap_paddr + (map.size() - 1) * sizeof(last),
                         {reinterpret_cast<uint8_t*>(&last), sizeof(last)})
                  .ok());
  EXPECT_EQ(last.addr, map.back().address);
  EXPECT_EQ(last.size, map.back().size);
  EXPECT_EQ(last.type, kE820Ram);
}

}  // namespace
}  // namespace ember::x86
