#include "arch/x86_64/e820.h"

#include "arch/x86_64/layout.h"

namespace ember::x86 {

std::vector<RamRange> GuestRamRanges(uint64_t size) {
  return SplitAroundHole(size, layout::kMmioHoleStart, layout::kMmioHoleEnd);
}

std::vector<E820Entry> BuildE820(const std::vector<GuestRegion>& regions) {
  std::vector<E820Entry> map;
  for (const GuestRegion& region : regions) {
    uint64_t end = region.guest_address + region.size;
    if (region.guest_address == 0) {
      // Base memory ends where the MP table starts; the legacy
      // 640 KiB-1 MiB window is not RAM.
      map.push_back({0, std::min(end, layout::kEbdaStart), kE820Ram});
      if (end > layout::kHighMemoryStart) {
        map.push_back({layout::kHighMemoryStart, end - layout::kHighMemoryStart, kE820Ram});
      }
    } else {
      map.push_back({region.guest_address, region.size, kE820Ram});
    }
  }
  return map;
}

}  // namespace ember::x86
