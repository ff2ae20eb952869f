#include "kvm/vm.h"

#include <sys/ioctl.h>

#include "base/sys_error.h"

namespace ember {

Result<Vm> Vm::Create(const Kvm& kvm, GuestMemory memory) {
  UniqueFd fd(ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!fd.valid()) return ErrnoStatus("KVM_CREATE_VM");
  uint32_t slot = 0;
  for (const GuestRegion& region : memory.regions()) {
    kvm_userspace_memory_region kvm_region{};
    kvm_region.slot = slot++;
    kvm_region.guest_phys_addr = region.guest_address;
    kvm_region.memory_size = region.size;
    kvm_region.userspace_addr = reinterpret_cast<uint64_t>(region.host);
    if (ioctl(fd.get(), KVM_SET_USER_MEMORY_REGION, &kvm_region) != 0) {
      return ErrnoStatus("KVM_SET_USER_MEMORY_REGION for " + std::to_string(region.size >> 20) +
                         " MiB of guest memory");
    }
  }
  return Vm(std::move(fd), std::move(memory));
}

Status Vm::SetIrqLine(uint32_t irq, bool high) const {
  kvm_irq_level level{};
  level.irq = irq;
  level.level = high ? 1 : 0;
  if (ioctl(fd_.get(), KVM_IRQ_LINE, &level) != 0) return ErrnoStatus("KVM_IRQ_LINE");
  return Status::Ok();
}

Status Vm::AddIoEventFd(uint64_t address, uint32_t length, uint64_t datamatch, int fd) const {
  kvm_ioeventfd request{};
  request.datamatch = datamatch;
  request.addr = address;
  request.len = length;
  request.fd = fd;
  request.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (ioctl(fd_.get(), KVM_IOEVENTFD, &request) != 0) return ErrnoStatus("KVM_IOEVENTFD");
  return Status::Ok();
}

Status Vm::AddIrqFd(int fd, uint32_t irq) const {
  kvm_irqfd request{};
  request.fd = static_cast<uint32_t>(fd);
  request.gsi = irq;
  if (ioctl(fd_.get(), KVM_IRQFD, &request) != 0) return ErrnoStatus("KVM_IRQFD");
  return Status::Ok();
}

void Vm::PulseIrq(uint32_t irq) const {
  // Failure here means the VM fd is gone; nothing useful to report to a device.
  (void)SetIrqLine(irq, true);
  (void)SetIrqLine(irq, false);
}

}  // namespace ember
