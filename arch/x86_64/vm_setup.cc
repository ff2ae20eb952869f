#include "arch/x86_64/vm_setup.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "arch/x86_64/layout.h"
#include "base/sys_error.h"

namespace ember::x86 {

Status SetUpVm(const Vm& vm) {
  if (ioctl(vm.fd(), KVM_SET_TSS_ADDR, layout::kKvmTssStart) != 0) {
    return ErrnoStatus("KVM_SET_TSS_ADDR");
  }
  uint64_t identity_map = layout::kKvmIdentityMapStart;
  if (ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) != 0) {
    return ErrnoStatus("KVM_SET_IDENTITY_MAP_ADDR");
  }
  if (ioctl(vm.fd(), KVM_CREATE_IRQCHIP, 0) != 0) return ErrnoStatus("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (ioctl(vm.fd(), KVM_CREATE_PIT2, &pit) != 0) return ErrnoStatus("KVM_CREATE_PIT2");
  return Status::Ok();
}

}  // namespace ember::x86
