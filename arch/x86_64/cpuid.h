// Per-vCPU CPUID: KVM's supported leaves with this vCPU's APIC ID, the
// topology ember presents (one socket, `vcpu_count` cores, optionally two
// threads per core) and the hypervisor bit.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace ember::x86 {

struct CpuTopology {
  uint32_t vcpu_count;
  bool smt;  // two threads per core
};

std::vector<kvm_cpuid_entry2> FilterCpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                          uint32_t vcpu_index, const CpuTopology& topology);

}  // namespace ember::x86
