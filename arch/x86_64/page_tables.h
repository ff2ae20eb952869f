// Identity page tables for the 64-bit entry: 2 MiB pages over the first
// layout::kIdentityMappedBytes, at the addresses in layout.h.
#pragma once

#include <cstdint>

#include "kvm/guest_memory.h"

namespace ember::x86 {

// Writes PML4, PDPT and page directories; returns the CR3 value.
Result<uint64_t> WriteIdentityPageTables(GuestMemory& memory);

}  // namespace ember::x86
