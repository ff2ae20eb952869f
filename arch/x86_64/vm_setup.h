// The x86 parts of a KVM VM that live in the kernel: the pages KVM keeps
// for its real-mode TSS and identity map, the irqchip (PIC, IOAPIC,
// LAPICs) and the PIT.
#pragma once

#include "base/status.h"
#include "kvm/vm.h"

namespace ember::x86 {

// Call after the memory slots are in and before any vCPU exists: once the
// irqchip exists, every slot update waits for an SRCU grace period
// (measured ~7 ms on PVM).
Status SetUpVm(const Vm& vm);

}  // namespace ember::x86
