// Turns a VmConfig into a running machine, in the fixed order of
// DESIGN.md's boot path: accelerator, machine (VM, memory), board (devices),
// loader (kernel, initrd, command line, boot structures), vCPUs.
// Runs on the VMM thread. A failure at any step returns a Status naming the
// step; everything built so far is released (nothing half-built survives).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "config/vm_config.h"
#include "vmm/machine.h"

namespace ember {

struct BuildOptions {
  std::string kvm_device = "/dev/kvm";
  bool boot_timer = false;
  // When the user asked for the VM (InstanceStart or process start).
  std::chrono::steady_clock::time_point start_time = std::chrono::steady_clock::now();
  uint64_t start_cpu_us = 0;
  int console_fd = 1;  // used unless the config names serial_out_path
};

Result<std::unique_ptr<Machine>> BuildMachine(const VmConfig& config, const BuildOptions& options);

// Starts the device-control thread and every vCPU thread (each installs
// its seccomp filter; the vCPUs then wait for ResumeVcpus).
Status StartMachineThreads(Machine& machine);
// Lets every vCPU run, together.
void ResumeVcpus(Machine& machine);

}  // namespace ember
