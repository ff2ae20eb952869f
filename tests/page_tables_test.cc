#include "arch/x86_64/page_tables.h"

#include <gtest/gtest.h>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"

namespace ember::x86 {
namespace {

uint64_t ReadU64(const GuestMemory& memory, uint64_t address) {
  uint64_t value = 0;
  EXPECT_TRUE(memory.Read(address, {reinterpret_cast<uint8_t*>(&value), 8}).ok());
  return value;
}

TEST(PageTablesTest, IdentityMapsFourGibWithLargePages) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  Result<uint64_t> cr3 = WriteIdentityPageTables(*memory);
  ASSERT_TRUE(cr3.ok());
  EXPECT_EQ(*cr3, layout::kPml4Start);
  EXPECT_EQ(ReadU64(*memory, layout::kPml4Start), layout::kPdptStart | 0x3);
  EXPECT_EQ(ReadU64(*memory, layout::kPml4Start + 8), 0u);
  for (uint64_t gib = 0; gib < 4; ++gib) {
    EXPECT_EQ(ReadU64(*memory, layout::kPdptStart + gib * 8),
              (layout::kPdStart + gib * 4096) | 0x3);
  }
  EXPECT_EQ(ReadU64(*memory, layout::kPdptStart + 4 * 8), 0u);
  // First, a middle and the last 2 MiB page: present, writable, large.
  EXPECT_EQ(ReadU64(*memory, layout::kPdStart), 0x83u);
  EXPECT_EQ(ReadU64(*memory, layout::kPdStart + 1536 * 8), (1536ull << 21) | 0x83);
  EXPECT_EQ(ReadU64(*memory, layout::kPdStart + 2047 * 8), (2047ull << 21) | 0x83);
}

TEST(GdtTest, EncodesAndDecodesFlatSegments) {
  auto gdt = BootGdt(GdtMode::kLong64);
  EXPECT_EQ(gdt[1], 0x00af9b000000ffffull);
  EXPECT_EQ(gdt[2], 0x00cf93000000ffffull);
  kvm_segment code = SegmentFromGdtEntry(gdt[1], 1);
  EXPECT_EQ(code.selector, 8);
  EXPECT_EQ(code.l, 1);
  EXPECT_EQ(code.db, 0);
  EXPECT_EQ(code.g, 1);
  EXPECT_EQ(code.limit, 0xffffffffu);
  EXPECT_EQ(code.type, 0xb);
  auto gdt32 = BootGdt(GdtMode::kProtected32);
  kvm_segment code32 = SegmentFromGdtEntry(gdt32[1], 1);
  EXPECT_EQ(code32.l, 0);
  EXPECT_EQ(code32.db, 1);
  kvm_segment tss = SegmentFromGdtEntry(gdt32[3], 3);
  EXPECT_EQ(tss.limit, 0x67u);
  EXPECT_EQ(tss.type, 0xb);
}

}  // namespace
}  // namespace ember::x86
