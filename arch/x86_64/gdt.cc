#include "arch/x86_64/gdt.h"

namespace ember::x86 {

kvm_segment SegmentFromGdtEntry(uint64_t entry, uint8_t index) {
  kvm_segment segment{};
  segment.base = static_cast<uint64_t>(((entry >> 16) & 0x00ffffff) | ((entry >> 32) & 0xff000000));
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | ((entry >> 32) & 0xf0000));
  segment.g = (entry >> 55) & 1;
  // With 4 KiB granularity the limit counts pages.
  segment.limit = segment.g ? (limit << 12) | 0xfff : limit;
  segment.selector = static_cast<uint16_t>(index * 8);
  segment.type = (entry >> 40) & 0xf;
  segment.present = (entry >> 47) & 1;
  segment.dpl = (entry >> 45) & 3;
  segment.db = (entry >> 54) & 1;
  segment.s = (entry >> 44) & 1;
  segment.l = (entry >> 53) & 1;
  segment.avl = (entry >> 52) & 1;
  segment.unusable = segment.present ? 0 : 1;
  return segment;
}

std::array<uint64_t, 4> BootGdt(GdtMode mode) {
  if (mode == GdtMode::kLong64) {
    return {0, GdtEntry(0xa09b, 0, 0xfffff), GdtEntry(0xc093, 0, 0xfffff),
            GdtEntry(0x808b, 0, 0xfffff)};
  }
  return {0, GdtEntry(0xc09b, 0, 0xfffff), GdtEntry(0xc093, 0, 0xfffff), GdtEntry(0x008b, 0, 0x67)};
}

}  // namespace ember::x86
