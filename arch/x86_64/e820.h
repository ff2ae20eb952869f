// The guest's physical memory map, as e820 entries: base memory below the
// EBDA, then RAM from 1 MiB, split around the MMIO hole.
#pragma once

#include <cstdint>
#include <vector>

#include "kvm/guest_memory.h"

namespace ember::x86 {

constexpr uint32_t kE820Ram = 1;
constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t address;
  uint64_t size;
  uint32_t type;
};

// Where `size` bytes of guest RAM sit: from 0, split around the MMIO hole.
std::vector<RamRange> GuestRamRanges(uint64_t size);

std::vector<E820Entry> BuildE820(const std::vector<GuestRegion>& regions);

}  // namespace ember::x86
