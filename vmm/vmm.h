// The VMM thread's main loop for a running machine: forwards host stdin to
// the serial port and waits for the VM to end (guest reset or power-off, or
// a KVM error). VMM thread only.
#pragma once

#include "vmm/machine.h"
#include "vmm/status.h"

namespace ember {

// Runs until the machine ends; returns the process exit code: 0 after a
// clean guest shutdown, 1 after an error (logged with its detail).
Result<int> RunMachine(Machine& machine, int stdin_fd);

}  // namespace ember
