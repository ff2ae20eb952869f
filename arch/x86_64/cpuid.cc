#include "arch/x86_64/cpuid.h"

#include <bit>

namespace ember::x86 {
namespace {

constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParameters = 0x4;
constexpr uint32_t kLeafTopology = 0xb;
constexpr uint32_t kLeafTopologyV2 = 0x1f;
constexpr uint32_t kLeafAmdTopology = 0x8000001e;

constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;

constexpr uint32_t kLevelTypeSmt = 1;
constexpr uint32_t kLevelTypeCore = 2;

// Bits needed to number `count` items (0 for one).
uint32_t BitsFor(uint32_t count) { return count <= 1 ? 0 : std::bit_width(count - 1); }

void SetTopologyLevel(kvm_cpuid_entry2& entry, uint32_t apic_id, const CpuTopology& topology) {
  uint32_t threads_per_core = topology.smt ? 2 : 1;
  entry.edx = apic_id;
  switch (entry.index) {
    case 0:  // thread level
      entry.eax = BitsFor(threads_per_core);
      entry.ebx = threads_per_core;
      entry.ecx = (kLevelTypeSmt << 8) | entry.index;
      break;
    case 1:  // core level: every vCPU of the package
      entry.eax = BitsFor(topology.vcpu_count);
      entry.ebx = topology.vcpu_count;
      entry.ecx = (kLevelTypeCore << 8) | entry.index;
      break;
    default:  // no further levels
      entry.eax = 0;
      entry.ebx = 0;
      entry.ecx = entry.index;
      break;
  }
}

}  // namespace

std::vector<kvm_cpuid_entry2> FilterCpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                          uint32_t vcpu_index, const CpuTopology& topology) {
  std::vector<kvm_cpuid_entry2> entries = supported;
  const uint32_t apic_id = vcpu_index;
  const uint32_t threads_per_core = topology.smt ? 2 : 1;
  const uint32_t cores = (topology.vcpu_count + threads_per_core - 1) / threads_per_core;
  for (kvm_cpuid_entry2& entry : entries) {
    switch (entry.function) {
      case kLeafFeatures:
        entry.ebx =
            (entry.ebx & 0x0000ffff) | (apic_id << 24) | (std::bit_ceil(topology.vcpu_count) << 16);
        entry.ecx |= kEcxHypervisor;
        if (topology.vcpu_count > 1) {
          entry.edx |= kEdxHtt;
        } else {
          entry.edx &= ~kEdxHtt;
        }
        break;
      case kLeafCacheParameters:
        // EAX[31:26] = cores per package - 1; EAX[25:14] = threads sharing
        // this cache - 1 (caches are per core, L3 per package).
        if ((entry.eax & 0x1f) != 0) {
          uint32_t cache_level = (entry.eax >> 5) & 0x7;
          uint32_t sharing = cache_level >= 3 ? topology.vcpu_count : threads_per_core;
          entry.eax = (entry.eax & 0x3fff) | ((std::bit_ceil(sharing) - 1) << 14) |
                      ((std::bit_ceil(cores) - 1) << 26);
        }
        break;
      case kLeafTopology:
      case kLeafTopologyV2:
        SetTopologyLevel(entry, apic_id, topology);
        break;
      case kLeafAmdTopology:
        entry.eax = apic_id;
        entry.ebx =
            (entry.ebx & ~0xffffu) | ((threads_per_core - 1) << 8) | (apic_id / threads_per_core);
        entry.ecx = entry.ecx & ~0xffu;  // one node
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace ember::x86
