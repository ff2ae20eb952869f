#include "arch/x86_64/cpuid.h"

#include <gtest/gtest.h>

namespace ember::x86 {
namespace {

kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t index = 0) {
  kvm_cpuid_entry2 entry{};
  entry.function = function;
  entry.index = index;
  return entry;
}

const kvm_cpuid_entry2* Find(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                             uint32_t index = 0) {
  for (const auto& entry : entries) {
    if (entry.function == function && entry.index == index) return &entry;
  }
  return nullptr;
}

std::vector<kvm_cpuid_entry2> Supported() {
  kvm_cpuid_entry2 features = Leaf(1);
  features.ebx = 0xff00'0800;  // stale APIC ID and count, CLFLUSH size 8
  features.edx = 1u << 28;
  kvm_cpuid_entry2 cache = Leaf(4);
  cache.eax = (3 << 5) | 3;  // level 3 unified cache
  return {Leaf(0), features, cache, Leaf(0xb, 0), Leaf(0xb, 1), Leaf(0xb, 2), Leaf(0x40000000)};
}

TEST(CpuidTest, SetsApicIdAndHypervisorBitPerVcpu) {
  for (uint32_t index : {0u, 1u, 5u}) {
    auto entries = FilterCpuid(Supported(), index, {6, false});
    const kvm_cpuid_entry2* features = Find(entries, 1);
    ASSERT_NE(features, nullptr);
    EXPECT_EQ(features->ebx >> 24, index);
    EXPECT_EQ((features->ebx >> 16) & 0xff, 8u) << "6 vCPUs rounded to a power of two";
    EXPECT_EQ(features->ebx & 0xffff, 0x0800u) << "CLFLUSH size kept";
    EXPECT_TRUE(features->ecx & (1u << 31));
    EXPECT_TRUE(features->edx & (1u << 28));
  }
}

TEST(CpuidTest, SingleVcpuHasNoHyperthreadingFlag) {
  auto entries = FilterCpuid(Supported(), 0, {1, false});
  EXPECT_FALSE(Find(entries, 1)->edx & (1u << 28));
}

TEST(CpuidTest, TopologyLeafDescribesThreadsAndCores) {
  auto entries = FilterCpuid(Supported(), 3, {4, false});
  const kvm_cpuid_entry2* smt = Find(entries, 0xb, 0);
  const kvm_cpuid_entry2* core = Find(entries, 0xb, 1);
  const kvm_cpuid_entry2* end = Find(entries, 0xb, 2);
  EXPECT_EQ(smt->ebx, 1u);
  EXPECT_EQ(smt->eax, 0u);
  EXPECT_EQ((smt->ecx >> 8) & 0xff, 1u);
  EXPECT_EQ(smt->edx, 3u);
  EXPECT_EQ(core->ebx, 4u);
  EXPECT_EQ(core->eax, 2u);
  EXPECT_EQ((core->ecx >> 8) & 0xff, 2u);
  EXPECT_EQ(core->edx, 3u);
  EXPECT_EQ(end->ebx, 0u);
  EXPECT_EQ((end->ecx >> 8) & 0xff, 0u);

  auto with_smt = FilterCpuid(Supported(), 0, {4, true});
  EXPECT_EQ(Find(with_smt, 0xb, 0)->ebx, 2u);
  EXPECT_EQ(Find(with_smt, 0xb, 0)->eax, 1u);
}

TEST(CpuidTest, CacheLeafCountsCoresPerPackage) {
  auto entries = FilterCpuid(Supported(), 0, {4, false});
  const kvm_cpuid_entry2* cache = Find(entries, 4);
  EXPECT_EQ(cache->eax >> 26, 3u);            // 4 cores - 1
  EXPECT_EQ((cache->eax >> 14) & 0xfff, 3u);  // L3 shared by all 4
  EXPECT_EQ(cache->eax & 0x3fff, (3u << 5) | 3);
}

TEST(CpuidTest, KeepsLeavesItDoesNotOwn) {
  auto entries = FilterCpuid(Supported(), 0, {1, false});
  EXPECT_EQ(entries.size(), Supported().size());
  EXPECT_NE(Find(entries, 0x40000000), nullptr);
}

}  // namespace
}  // namespace ember::x86
