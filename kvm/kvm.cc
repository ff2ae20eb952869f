#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/sys_error.h"
#include "kvm/kvm_abi.h"

namespace ember {
namespace {

struct RequiredCapability {
  long id;
  const char* name;
};

// Everything the boot path uses; checked up front so a missing one is one
// clear line instead of a failure halfway through building the machine.
constexpr RequiredCapability kRequiredCapabilities[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
};

constexpr int kMaxCpuidEntries = 256;

}  // namespace

const char* KvmBackingName(KvmBacking backing) {
  switch (backing) {
    case KvmBacking::kIntel:
      return "hardware (kvm_intel)";
    case KvmBacking::kAmd:
      return "hardware (kvm_amd)";
    case KvmBacking::kPvm:
      return "PVM (kvm_pvm, instruction emulator for non-PVM guests)";
    case KvmBacking::kUnknown:
      break;
  }
  return "unknown";
}

KvmBacking DetectKvmBacking() {
  if (access("/sys/module/kvm_pvm", F_OK) == 0) return KvmBacking::kPvm;
  if (access("/sys/module/kvm_intel", F_OK) == 0) return KvmBacking::kIntel;
  if (access("/sys/module/kvm_amd", F_OK) == 0) return KvmBacking::kAmd;
  return KvmBacking::kUnknown;
}

Result<Kvm> Kvm::Open(const std::string& device) {
  Kvm kvm;
  kvm.fd_.reset(open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) {
    int err = errno;
    if (err == ENOENT) return Status::Error(device + " does not exist: KVM is not available here");
    if (err == EACCES || err == EPERM) {
      return Status::Error("no permission to open " + device + " (" + std::strerror(err) +
                           "): add this user to the kvm group or run as root; in a jail, "
                           "keep the jail off a nodev mount");
    }
    return ErrnoStatus("opening " + device, err);
  }
  int version = ioctl(kvm.fd_.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return Status::Error(device + " has KVM API version " + std::to_string(version) +
                         ", ember needs " + std::to_string(KVM_API_VERSION));
  }
  for (const RequiredCapability& cap : kRequiredCapabilities) {
    if (kvm.CheckExtension(cap.id) <= 0) {
      return Status::Error(device + " lacks the capability " + cap.name + " that ember needs");
    }
  }
  kvm.vcpu_mmap_size_ = ioctl(kvm.fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (kvm.vcpu_mmap_size_ <= 0) return ErrnoStatus("KVM_GET_VCPU_MMAP_SIZE");
  kvm.max_vcpus_ = kvm.CheckExtension(KVM_CAP_MAX_VCPUS);
  if (kvm.max_vcpus_ <= 0) kvm.max_vcpus_ = kvm.CheckExtension(KVM_CAP_NR_VCPUS);

  // The entries follow the header in one allocation.
  size_t bytes = sizeof(kvm_abi::Cpuid2) + kMaxCpuidEntries * sizeof(kvm_cpuid_entry2);
  auto storage = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* cpuid = reinterpret_cast<kvm_abi::Cpuid2*>(storage.get());
  cpuid->nent = kMaxCpuidEntries;
  if (ioctl(kvm.fd_.get(), kvm_abi::kGetSupportedCpuid, cpuid) != 0) {
    return ErrnoStatus("KVM_GET_SUPPORTED_CPUID");
  }
  kvm.supported_cpuid_.assign(cpuid->entries, cpuid->entries + cpuid->nent);
  kvm.backing_ = DetectKvmBacking();
  return kvm;
}

int Kvm::CheckExtension(long capability) const {
  return ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

}  // namespace ember
