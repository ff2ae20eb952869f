#include "arch/x86_64/page_tables.h"

#include "arch/x86_64/layout.h"

namespace ember::x86 {
namespace {

constexpr uint64_t kPresent = 1 << 0;
constexpr uint64_t kWritable = 1 << 1;
constexpr uint64_t kHugePage = 1 << 7;
constexpr uint64_t kEntriesPerTable = 512;
constexpr uint64_t kPageTableSize = 4096;

}  // namespace

Result<uint64_t> WriteIdentityPageTables(GuestMemory& memory) {
  constexpr uint64_t kDirectories = layout::kIdentityMappedBytes / layout::kGiB;
  uint8_t* pml4_host = memory.HostAddress(layout::kPml4Start, kPageTableSize);
  uint8_t* pdpt_host = memory.HostAddress(layout::kPdptStart, kPageTableSize);
  uint8_t* pd_host = memory.HostAddress(layout::kPdStart, kDirectories * kPageTableSize);
  if (pml4_host == nullptr || pdpt_host == nullptr || pd_host == nullptr) {
    return Status::Error("guest memory too small for the boot page tables");
  }
  auto* pml4 = reinterpret_cast<uint64_t*>(pml4_host);
  auto* pdpt = reinterpret_cast<uint64_t*>(pdpt_host);
  auto* pd = reinterpret_cast<uint64_t*>(pd_host);
  pml4[0] = layout::kPdptStart | kPresent | kWritable;
  for (uint64_t dir = 0; dir < kDirectories; ++dir) {
    pdpt[dir] = (layout::kPdStart + dir * kPageTableSize) | kPresent | kWritable;
  }
  for (uint64_t i = 0; i < kDirectories * kEntriesPerTable; ++i) {
    pd[i] = (i << 21) | kPresent | kWritable | kHugePage;
  }
  return layout::kPml4Start;
}

}  // namespace ember::x86
