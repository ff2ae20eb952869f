// The boot path, in one place and in DESIGN.md's order: a VmConfig becomes
// a running machine through numbered steps (boot.cc, Boot): accelerator,
// memory and VM, board, virtio devices (placed by the device manager),
// guest (kernel, initrd, x86 boot structures), vCPUs, threads, the VMM
// thread's loop and filter, and the guest running.
// Runs on the VMM thread. A failure at any step returns a Status naming the
// step; everything built so far is released (nothing half-built survives).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "config/vm_config.h"
#include "devices/mmds/mmds_store.h"
#include "vmm/machine.h"

namespace ember {

struct BuildOptions {
  std::string kvm_device = "/dev/kvm";
  bool boot_timer = false;
  // When the user asked for the VM (InstanceStart or process start).
  std::chrono::steady_clock::time_point start_time = std::chrono::steady_clock::now();
  uint64_t start_cpu_us = 0;
  int console_fd = 1;  // used unless the config names serial_out_path
  // MMDS's data, served on the TAP interfaces the config's mmds-config lists.
  std::shared_ptr<MmdsStore> mmds;
};

// What the VMM thread does with the machine before its filter goes on:
// its event loop watches the exit event, backends and console input.
struct BootHooks {
  std::function<Status(Machine&)> attach;
  std::function<void(Machine&)> detach;  // undoes attach when a later step fails
};

// PUT /boot-source's checks (and the config file's), Firecracker's: the
// kernel and initrd can be opened as regular files. Messages are
// Firecracker's ("The kernel file cannot be opened: ..."), naming the path.
Status CheckBootSource(const BootSourceConfig& boot);

Result<std::unique_ptr<Machine>> Boot(const VmConfig& config, const BuildOptions& options,
                                      const BootHooks& hooks);

}  // namespace ember
