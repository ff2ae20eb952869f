// C layouts of KVM's variable-length structures, and their ioctl numbers.
// linux-libc-dev 6.1 declares the trailing arrays with __DECLARE_FLEX_ARRAY,
// which in C++ adds an empty member: sizeof and the array offset grow by 4,
// so both the ioctl numbers (they encode the size) and the layout are wrong
// for the kernel. These match the kernel's C ABI.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace ember::kvm_abi {

struct Cpuid2 {
  uint32_t nent;
  uint32_t padding;
  kvm_cpuid_entry2 entries[];
};
static_assert(offsetof(Cpuid2, entries) == 8);

struct Msrs {
  uint32_t nmsrs;
  uint32_t pad;
  kvm_msr_entry entries[];
};
static_assert(offsetof(Msrs, entries) == 8);

constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, Msrs);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, Msrs);

}  // namespace ember::kvm_abi
