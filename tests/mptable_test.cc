#include "arch/x86_64/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "arch/x86_64/layout.h"

namespace ember::x86 {
namespace {

uint8_t Sum(const uint8_t* bytes, size_t length) {
  return static_cast<uint8_t>(std::accumulate(bytes, bytes + length, 0u));
}

struct ParsedTable {
  int processors = 0;
  int bootstrap = 0;
  int ioapics = 0;
  int io_interrupts = 0;
  int local_interrupts = 0;
};

ParsedTable Parse(const std::vector<uint8_t>& table) {
  ParsedTable parsed;
  const uint8_t* config = table.data() + 16;
  uint16_t entries;
  std::memcpy(&entries, config + 34, 2);
  const uint8_t* entry = config + 44;
  for (uint16_t i = 0; i < entries; ++i) {
    switch (entry[0]) {
      case 0:
        ++parsed.processors;
        if (entry[3] & 2) ++parsed.bootstrap;
        entry += 20;
        break;
      case 2:
        ++parsed.ioapics;
        entry += 8;
        break;
      case 3:
        ++parsed.io_interrupts;
        entry += 8;
        break;
      case 4:
        ++parsed.local_interrupts;
        entry += 8;
        break;
      default:
        entry += 8;
        break;
    }
  }
  return parsed;
}

class MptableTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MptableTest, ChecksumsAndEntriesAreValid) {
  const uint32_t cpus = GetParam();
  Result<std::vector<uint8_t>> table = BuildMptable(cpus, layout::kMptableStart);
  ASSERT_TRUE(table.ok()) << table.status().message();
  ASSERT_LE(table->size(), layout::kMptableMaxSize);
  EXPECT_EQ(std::memcmp(table->data(), "_MP_", 4), 0);
  EXPECT_EQ(Sum(table->data(), 16), 0) << "floating pointer checksum";
  uint32_t config_address;
  std::memcpy(&config_address, table->data() + 4, 4);
  EXPECT_EQ(config_address, layout::kMptableStart + 16);
  const uint8_t* config = table->data() + 16;
  EXPECT_EQ(std::memcmp(config, "PCMP", 4), 0);
  uint16_t length;
  std::memcpy(&length, config + 4, 2);
  EXPECT_EQ(length, table->size() - 16);
  EXPECT_EQ(Sum(config, length), 0) << "configuration table checksum";
  ParsedTable parsed = Parse(*table);
  EXPECT_EQ(parsed.processors, static_cast<int>(cpus));
  EXPECT_EQ(parsed.bootstrap, 1);
  EXPECT_EQ(parsed.ioapics, 1);
  EXPECT_EQ(parsed.io_interrupts, 24);
  EXPECT_EQ(parsed.local_interrupts, 2);
}

INSTANTIATE_TEST_SUITE_P(VcpuCounts, MptableTest, ::testing::Values(1u, 2u, 7u, 32u));

TEST(MptableLimitsTest, RejectsZeroAndTooManyVcpus) {
  EXPECT_FALSE(BuildMptable(0, layout::kMptableStart).ok());
  EXPECT_FALSE(BuildMptable(layout::kMaxVcpus + 1, layout::kMptableStart).ok());
}

}  // namespace
}  // namespace ember::x86
