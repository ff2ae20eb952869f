// One KVM virtual machine: the VM fd and guest RAM registered as memory
// slots. The architecture's in-kernel pieces (on x86: TSS and identity-map
// pages, irqchip, PIT) are added by arch/ (x86_64/vm_setup.h).
//
// Thread-safety: created and configured by the VMM thread. SetIrqLine is a
// single ioctl and may be called from any thread (devices on vCPU threads).
#pragma once

#include <cstdint>

#include "base/status.h"
#include "base/unique_fd.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"

namespace ember {

class Vm {
 public:
  static Result<Vm> Create(const Kvm& kvm, GuestMemory memory);

  int fd() const { return fd_.get(); }
  GuestMemory& memory() { return memory_; }
  const GuestMemory& memory() const { return memory_; }

  Status SetIrqLine(uint32_t irq, bool high) const;
  // A guest write of `datamatch` (`length` bytes) to `address` signals `fd`
  // inside KVM, without an exit to ember.
  Status AddIoEventFd(uint64_t address, uint32_t length, uint64_t datamatch, int fd) const;
  // A write to `fd` raises interrupt line `irq` (an edge), inside KVM.
  Status AddIrqFd(int fd, uint32_t irq) const;
  // Raises and lowers a line: an edge for the IOAPIC's edge-triggered pins.
  void PulseIrq(uint32_t irq) const;

 private:
  Vm(UniqueFd fd, GuestMemory memory) : fd_(std::move(fd)), memory_(std::move(memory)) {}

  UniqueFd fd_;
  GuestMemory memory_;
};

}  // namespace ember
