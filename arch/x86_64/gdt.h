// Flat boot GDT for the two entry modes ember uses (64-bit long mode and
// the 32-bit protected mode of PVH), and its conversion to KVM segments.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

namespace ember::x86 {

// One descriptor: `flags` holds the access byte in bits 0-7 and the
// granularity/size nibble in bits 12-15 (e.g. 0xa09b = 64-bit code).
constexpr uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((static_cast<uint64_t>(base) & 0xff000000u) << 32) |
         ((static_cast<uint64_t>(flags) & 0xf0ff) << 40) |
         ((static_cast<uint64_t>(limit) & 0x000f0000u) << 32) |
         ((static_cast<uint64_t>(base) & 0x00ffffffu) << 16) |
         (static_cast<uint64_t>(limit) & 0x0000ffffu);
}

// Decodes descriptor `index` of a GDT into the segment KVM loads.
kvm_segment SegmentFromGdtEntry(uint64_t entry, uint8_t index);

enum class GdtMode { kLong64, kProtected32 };

// Null, code, data, TSS: selectors 0x08, 0x10 and 0x18.
constexpr uint16_t kCodeSelector = 0x08;
constexpr uint16_t kDataSelector = 0x10;
constexpr uint16_t kTssSelector = 0x18;
std::array<uint64_t, 4> BootGdt(GdtMode mode);

}  // namespace ember::x86
