// A built microVM: the accelerator, the VM and its memory, the buses with
// their devices, and the vCPUs. Built by Boot (boot.h) in a fixed order; owned and driven by the
// VMM thread. Not movable: vCPU threads hold references to the buses and the exit event.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/vhost_user/vhost_user_endpoint.h"
#include "devices/virtio/block_device.h"
#include "devices/virtio/device_control.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/tap_net_device.h"
#include "devices/virtio/vhost_user_device.h"
#include "devices/virtio/vsock_device.h"
#include "kvm/bus.h"
#include "kvm/kvm.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "kvm/vm_exit.h"
#include "vmm/device_manager.h"

namespace ember {

struct Machine {
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;
  Machine() = default;
  // vCPU threads go first: they use everything else. Then the
  // device-control thread, after its backends' sockets are shut so that a
  // conversation with a stalled backend ends now.
  ~Machine() {
    for (auto& vcpu : vcpus) vcpu->Stop();
    for (VhostUserBackend& backend : vhost_user_backends) {
      shutdown(backend.device->backend_socket(), SHUT_RDWR);
    }
    if (device_control) device_control->Stop();
  }

  std::unique_ptr<Kvm> kvm;
  std::unique_ptr<Vm> vm;
  Bus pio_bus{"port I/O"};
  Bus mmio_bus{"MMIO"};
  DeviceManager device_manager;
  VmExitEvent exit_event;
  UniqueFd serial_output;                         // set when the console goes to a file
  std::unique_ptr<ConsoleOutput> console_output;  // the serial port's, drained by the VMM
  std::shared_ptr<Serial> serial;
  std::shared_ptr<I8042> i8042;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  // vhost-user devices with how their backends are reached (and, in
  // server mode, the listening socket the backend reconnects to).
  struct VhostUserBackend {
    std::shared_ptr<VhostUserDevice> device;
    VhostUserEndpoint endpoint;
    UniqueFd listener;
  };
  std::vector<VhostUserBackend> vhost_user_backends;
  std::vector<std::shared_ptr<BusDevice>> virtio_devices;
  // Drives, by id, for PATCH /drives after boot.
  struct Drive {
    std::string drive_id;
    std::shared_ptr<BlockDevice> device;
    std::shared_ptr<VirtioMmioTransport> transport;
  };
  std::vector<Drive> drives;
  // TAP network interfaces, by id, for PATCH /network-interfaces after boot.
  struct TapNet {
    std::string iface_id;
    std::shared_ptr<TapNetDevice> device;
  };
  std::vector<TapNet> tap_nets;
  std::shared_ptr<VsockDevice> vsock;
  // Runs the vhost-user devices' backend conversations (device_control.h).
  std::unique_ptr<DeviceControl> device_control = std::make_unique<DeviceControl>();
};

}  // namespace ember
