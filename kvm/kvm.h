// The KVM accelerator: /dev/kvm, its API version and the capabilities ember
// relies on. Opened once per process by the VMM thread; afterwards its
// queries are read-only and may be used from any thread.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

// Which kernel module backs /dev/kvm. PVM runs non-PVM guests in KVM's
// instruction emulator, which matters for what guests can boot here.
enum class KvmBacking { kIntel, kAmd, kPvm, kUnknown };
const char* KvmBackingName(KvmBacking backing);
// Reads /sys/module to tell which backing is loaded.
KvmBacking DetectKvmBacking();

class Kvm {
 public:
  // Opens `device` (normally /dev/kvm) and checks the API version and every
  // required capability; the error names the missing piece.
  static Result<Kvm> Open(const std::string& device = "/dev/kvm");

  int fd() const { return fd_.get(); }
  KvmBacking backing() const { return backing_; }
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  int max_vcpus() const { return max_vcpus_; }
  // The CPUID entries KVM can expose (KVM_GET_SUPPORTED_CPUID).
  const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return supported_cpuid_; }

  int CheckExtension(long capability) const;

 private:
  Kvm() = default;

  UniqueFd fd_;
  KvmBacking backing_ = KvmBacking::kUnknown;
  int vcpu_mmap_size_ = 0;
  int max_vcpus_ = 0;
  std::vector<kvm_cpuid_entry2> supported_cpuid_;
};

}  // namespace ember
