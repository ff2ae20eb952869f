#include "vmm/boot.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include <algorithm>

#include "arch/x86_64/configure_system.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/kernel_loader.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/vcpu_setup.h"
#include "arch/x86_64/vm_setup.h"
#include "base/hex.h"
#include "base/stale_socket.h"
#include "base/sys_error.h"
#include "devices/acpi_power.h"
#include "devices/boot_timer.h"
#include "devices/tap.h"
#include "devices/virtio/block_device.h"
#include "devices/virtio/entropy_device.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vhost_user_blk.h"
#include "devices/virtio/vhost_user_fs.h"
#include "devices/virtio/vhost_user_net.h"
#include "jail/seccomp.h"

namespace ember {
namespace {

constexpr uint32_t kLeafAddressSizes = 0x80000008;
constexpr uint32_t kDefaultPhysicalAddressBits = 36;

struct OpenedFile {
  UniqueFd fd;
  uint64_t size;
};

// Opens a file named by a config field; errors name the field. O_NONBLOCK:
// a FIFO (or a device) must not hold the VMM thread in open() before the
// regular-file check can refuse it; reads of regular files ignore it.
Result<OpenedFile> OpenInput(const std::string& path, const std::string& field) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return ErrnoStatus(field + ": " + path);
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) return ErrnoStatus(field + ": " + path);
  if (!S_ISREG(info.st_mode)) return Status::Error(field + ": " + path + " is not a regular file");
  return OpenedFile{std::move(fd), static_cast<uint64_t>(info.st_size)};
}

// Opens `path` as OpenInput does; the error is the I/O error alone.
Status CheckOpens(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return Status::Error(IoErrorText());
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) return Status::Error(IoErrorText());
  if (!S_ISREG(info.st_mode)) return Status::Error("not a regular file");
  return Status::Ok();
}

uint32_t PhysicalAddressBits(const Kvm& kvm) {
  for (const kvm_cpuid_entry2& entry : kvm.supported_cpuid()) {
    if (entry.function == kLeafAddressSizes) return entry.eax & 0xff;
  }
  return kDefaultPhysicalAddressBits;
}

// The console is drained by the VMM thread: a reader that stalls must cost
// output (dropped and counted by ConsoleOutput), never a wedged thread.
// A pipe, FIFO or terminal gets a description of its own, non-blocking,
// opened through /proc so that the O_NONBLOCK does not reach whoever shares
// ember's stdout. Regular files do not block and keep their own (a reopen
// would lose O_APPEND and the offset); so do sockets, which cannot be
// reopened (ConsoleOutput sends to them with MSG_DONTWAIT).
int NonBlockingConsole(Machine& machine, int fd) {
  struct stat info {};
  if (fstat(fd, &info) != 0 || !(S_ISFIFO(info.st_mode) || S_ISCHR(info.st_mode))) return fd;
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  machine.serial_output.reset(open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  return machine.serial_output.valid() ? machine.serial_output.get() : fd;
}

Status AddDevices(Machine& machine, const VmConfig& config, const BuildOptions& options) {
  int console_fd = options.console_fd;
  if (config.serial.serial_out_path) {
    // O_NONBLOCK: a FIFO without a reader is refused (ENXIO), not waited on;
    // O_NOFOLLOW: a symlink planted at the path is refused (ELOOP).
    const std::string& path = *config.serial.serial_out_path;
    machine.serial_output.reset(open(
        path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW, 0600));
    if (!machine.serial_output.valid()) return ErrnoStatus("serial.serial_out_path: " + path);
    console_fd = machine.serial_output.get();
  } else if (console_fd >= 0) {
    console_fd = NonBlockingConsole(machine, console_fd);
  }
  const Vm* vm = machine.vm.get();
  EMBER_ASSIGN_OR_RETURN(machine.console_output, ConsoleOutput::Create(console_fd));
  machine.serial =
      std::make_shared<Serial>(*machine.console_output, [vm] { vm->PulseIrq(layout::kCom1Irq); });
  EMBER_RETURN_IF_ERROR(machine.pio_bus.Insert(machine.serial, layout::kCom1Port,
                                               Serial::kRegisterCount, "serial (COM1)"));
  VmExitEvent* exit_event = &machine.exit_event;
  machine.i8042 = std::make_shared<I8042>(
      [exit_event] {
        exit_event->Report(VmExitReason::kGuestReset, "guest reset through the i8042");
      },
      [vm] { vm->PulseIrq(layout::kI8042Irq); });
  EMBER_RETURN_IF_ERROR(
      machine.pio_bus.Insert(machine.i8042, layout::kI8042Port, I8042::kPortSpan, "i8042"));
  if (config.machine.acpi) {
    auto power = std::make_shared<AcpiPowerDevice>(
        layout::kAcpiResetValue,
        [exit_event] {
          exit_event->Report(VmExitReason::kGuestPowerOff, "guest powered off through ACPI");
        },
        [exit_event] {
          exit_event->Report(VmExitReason::kGuestReset, "guest reset through ACPI");
        });
    EMBER_RETURN_IF_ERROR(machine.pio_bus.Insert(power, layout::kAcpiSleepControlPort,
                                                 AcpiPowerDevice::kPortSpan, "ACPI power"));
  }
  if (options.boot_timer) {
    auto timer = std::make_shared<BootTimer>(
        options.start_time, options.start_cpu_us, [](uint64_t wall_us, uint64_t cpu_us) {
          SPDLOG_INFO("Guest-boot-time = {:>6} us {} ms, {:>6} CPU us {} CPU ms", wall_us,
                      wall_us / 1000, cpu_us, cpu_us / 1000);
        });
    EMBER_RETURN_IF_ERROR(machine.mmio_bus.Insert(timer, layout::kBootTimerStart,
                                                  layout::kBootTimerSize, "boot timer"));
  }
  return Status::Ok();
}

// Puts a virtio device in the next virtio-mmio slot the device manager
// gives (its window and its own line), wires kicks (ioeventfds) and
// interrupts (an irqfd) inside KVM, and returns the transport.
Result<std::shared_ptr<VirtioMmioTransport>> AttachVirtioDevice(
    Machine& machine, std::shared_ptr<VirtioDevice> device, const std::string& name) {
  const Vm& vm = *machine.vm;
  EMBER_ASSIGN_OR_RETURN(x86::AcpiVirtioMmioDevice slot,
                         machine.device_manager.PlaceVirtioDevice(name));
  const uint64_t base = slot.base;
  const uint32_t irq = slot.irq;
  std::vector<UniqueFd> kicks;
  for (uint16_t queue = 0; queue < device->queue_count(); ++queue) {
    UniqueFd kick(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!kick.valid()) return ErrnoStatus(name + ": eventfd");
    EMBER_RETURN_IF_ERROR(
        vm.AddIoEventFd(base + VirtioMmioTransport::kQueueNotifyOffset, 4, queue, kick.get())
            .Context(name));
    kicks.push_back(std::move(kick));
  }
  UniqueFd interrupt(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!interrupt.valid()) return ErrnoStatus(name + ": eventfd");
  EMBER_RETURN_IF_ERROR(vm.AddIrqFd(interrupt.get(), irq).Context(name));
  auto transport = std::make_shared<VirtioMmioTransport>(name, std::move(device), vm.memory(),
                                                         std::move(kicks), std::move(interrupt));
  EMBER_RETURN_IF_ERROR(
      machine.mmio_bus.Insert(transport, base, VirtioMmioTransport::kWindowSize, name));
  machine.virtio_devices.push_back(transport);
  return transport;
}

// Reaches a backend: connects to it (client mode) or listens on the socket
// and waits for it (server mode; `listener` keeps the socket for reconnects).
Result<VhostUserConnection> OpenBackend(const VhostUserEndpoint& endpoint, const std::string& owner,
                                        UniqueFd& listener) {
  if (endpoint.mode == SocketMode::kClient) {
    EMBER_ASSIGN_OR_RETURN(UniqueFd fd, ConnectToBackend(endpoint.socket, owner));
    return VhostUserConnection(std::move(fd), owner);
  }
  EMBER_ASSIGN_OR_RETURN(listener, ListenForBackend(endpoint.socket, owner));
  SPDLOG_INFO("{}: waiting up to {} ms for the backend on {}", owner,
              endpoint.connect_timeout.count(), endpoint.socket);
  EMBER_ASSIGN_OR_RETURN(
      UniqueFd fd, AcceptBackend(listener.get(), endpoint.connect_timeout, endpoint.socket, owner));
  return VhostUserConnection(std::move(fd), owner);
}

// Reaches one device's backend, negotiates (`connect` makes the device on
// the connection), and attaches it.
template <typename Connect>
Status AddVhostUserDevice(Machine& machine, const VhostUserEndpoint& endpoint,
                          const std::string& owner, Connect connect) {
  UniqueFd listener;
  EMBER_ASSIGN_OR_RETURN(VhostUserConnection connection, OpenBackend(endpoint, owner, listener));
  auto made = connect(std::move(connection));
  if (!made.ok()) return made.status();
  std::shared_ptr<VhostUserDevice> device = *made;
  device->UseControlThread(*machine.device_control);
  machine.vhost_user_backends.push_back({device, endpoint, std::move(listener)});
  return AttachVirtioDevice(machine, device, owner).status();
}

// A drive on its backing file, opened again here (PUT checked it) so the
// file the guest sees is the one at InstanceStart.
Status AddDrive(Machine& machine, const DriveConfig& config) {
  const std::string name = "drive " + config.drive_id;
  const bool honour_flush = config.cache_type == CacheType::kWriteback;
  if (config.socket) {
    machine.drives.push_back({config.drive_id, nullptr, nullptr});
    return AddVhostUserDevice(machine, *config.socket, name, [&](VhostUserConnection connection) {
      return VhostUserBlkDevice::Connect(std::move(connection), honour_flush);
    });
  }
  Result<UniqueFd> file = BlockDevice::OpenBackingFile(config.path_on_host, config.is_read_only);
  if (!file.ok()) return file.status().Context(name + ": path_on_host");
  BlockDeviceOptions options{config.drive_id, config.is_read_only, honour_flush};
  options.rate_limiter = config.rate_limiter.value_or(RateLimiterConfig{});
  options.async_io = config.async_io;
  EMBER_ASSIGN_OR_RETURN(std::shared_ptr<BlockDevice> device,
                         BlockDevice::Create(std::move(options), std::move(*file)));
  EMBER_ASSIGN_OR_RETURN(std::shared_ptr<VirtioMmioTransport> transport,
                         AttachVirtioDevice(machine, device, name));
  machine.drives.push_back({config.drive_id, device, transport});
  return Status::Ok();
}

// A network interface on its TAP, with ember's virtio-net; it answers MMDS
// itself when mmds-config lists it.
Status AddTapNet(Machine& machine, const NetConfig& config, const VmConfig& vm,
                 const BuildOptions& build) {
  const std::string name = "net device " + config.iface_id;
  Result<UniqueFd> tap = OpenTap(config.host_dev_name);
  if (!tap.ok()) return tap.status().Context(name);
  TapNetOptions options{config.iface_id,
                        config.host_dev_name,
                        config.guest_mac,
                        static_cast<uint16_t>(config.queue_size),
                        config.mtu,
                        config.rx_rate_limiter.value_or(RateLimiterConfig{}),
                        config.tx_rate_limiter.value_or(RateLimiterConfig{})};
  if (vm.mmds && std::count(vm.mmds->network_interfaces.begin(), vm.mmds->network_interfaces.end(),
                            config.iface_id) > 0) {
    options.mmds = build.mmds;
  }
  EMBER_ASSIGN_OR_RETURN(std::shared_ptr<TapNetDevice> device,
                         TapNetDevice::Create(std::move(options), std::move(*tap)));
  EMBER_RETURN_IF_ERROR(AttachVirtioDevice(machine, device, name).status());
  machine.tap_nets.push_back({config.iface_id, device});
  return Status::Ok();
}

// The vsock device, listening on its uds_path from here on.
Status AddVsock(Machine& machine, const VsockConfig& config) {
  EMBER_RETURN_IF_ERROR(RemoveStaleSocket(config.uds_path, "vsock: uds_path"));
  EMBER_ASSIGN_OR_RETURN(machine.vsock, VsockDevice::Create({config.guest_cid, config.uds_path}));
  return AttachVirtioDevice(machine, machine.vsock, "vsock").status();
}

// The entropy device (virtio-rng), last as in Firecracker.
Status AddEntropy(Machine& machine, const EntropyConfig& config) {
  EntropyOptions options;
  options.rate_limiter = config.rate_limiter.value_or(RateLimiterConfig{});
  EMBER_ASSIGN_OR_RETURN(std::shared_ptr<EntropyDevice> device,
                         EntropyDevice::Create(std::move(options)));
  return AttachVirtioDevice(machine, device, "entropy").status();
}

// Firecracker's root=: the root drive is /dev/vda (it is attached first),
// or the partition the user named.
std::string RootDeviceArgs(const VmConfig& config) {
  for (const DriveConfig& drive : config.drives) {
    if (!drive.is_root_device) continue;
    const std::string device = drive.partuuid ? "PARTUUID=" + *drive.partuuid : "/dev/vda";
    return " root=" + device + (drive.is_read_only ? " ro" : " rw");
  }
  return "";
}

// Creates every virtio device, in Firecracker's order (drives first, so the
// root drive is vda), then fs, net and vsock; the device manager places
// each.
Status AddVirtioDevices(Machine& machine, const VmConfig& config, const BuildOptions& build) {
  const size_t count = config.drives.size() + config.fs.size() + config.net.size() +
                       (config.vsock ? 1 : 0) + (config.entropy ? 1 : 0);
  if (count > layout::kMaxVirtioDevices) {
    return Status::Error(std::to_string(count) +
                         " drives, fs, net, vsock and entropy devices configured, at most " +
                         std::to_string(layout::kMaxVirtioDevices) + " fit");
  }
  for (const DriveConfig& drive : config.drives) EMBER_RETURN_IF_ERROR(AddDrive(machine, drive));
  for (const FsConfig& fs : config.fs) {
    EMBER_RETURN_IF_ERROR(AddVhostUserDevice(
        machine, fs.backend, "fs device " + fs.fs_id, [&](VhostUserConnection connection) {
          return VhostUserFsDevice::Connect(fs, std::move(connection));
        }));
  }
  for (const NetConfig& net : config.net) {
    if (!net.host_dev_name.empty()) {
      EMBER_RETURN_IF_ERROR(AddTapNet(machine, net, config, build));
      continue;
    }
    EMBER_RETURN_IF_ERROR(AddVhostUserDevice(
        machine, net.backend, "net device " + net.iface_id, [&](VhostUserConnection connection) {
          return VhostUserNetDevice::Connect(net, std::move(connection));
        }));
  }
  if (config.vsock) EMBER_RETURN_IF_ERROR(AddVsock(machine, *config.vsock));
  if (config.entropy) EMBER_RETURN_IF_ERROR(AddEntropy(machine, *config.entropy));
  return Status::Ok();
}

// Loads the kernel and initrd, then lets the arch write every boot
// structure for the board as built (the device manager's list).
Result<x86::BootEntry> LoadGuest(Machine& machine, const VmConfig& config) {
  const BootSourceConfig& boot = *config.boot_source;
  GuestMemory& memory = machine.vm->memory();
  EMBER_ASSIGN_OR_RETURN(OpenedFile kernel_file,
                         OpenInput(boot.kernel_image_path, "boot-source.kernel_image_path"));
  Result<x86::LoadedKernel> loaded =
      x86::LoadKernel(memory, kernel_file.fd.get(), kernel_file.size);
  if (!loaded.ok()) {
    return loaded.status().Context("boot-source.kernel_image_path: " + boot.kernel_image_path);
  }
  const x86::LoadedKernel& kernel = *loaded;
  SPDLOG_DEBUG("kernel {} loaded as {}, entry {:#x}", boot.kernel_image_path,
               x86::KernelFormatName(kernel.format), kernel.entry);

  std::optional<x86::InitrdPlacement> initrd;
  if (boot.initrd_path) {
    EMBER_ASSIGN_OR_RETURN(OpenedFile initrd_file,
                           OpenInput(*boot.initrd_path, "boot-source.initrd_path"));
    Result<x86::InitrdPlacement> placed =
        x86::LoadInitrd(memory, initrd_file.fd.get(), initrd_file.size, kernel);
    if (!placed.ok())
      return placed.status().Context("boot-source.initrd_path: " + *boot.initrd_path);
    initrd = *placed;
  }

  x86::SystemConfig system;
  system.vcpu_count = config.machine.vcpu_count;
  system.acpi = config.machine.acpi;
  system.cmdline = boot.boot_args.value_or(kDefaultBootArgs) + RootDeviceArgs(config) +
                   machine.device_manager.VirtioCommandLine();
  system.virtio_devices = machine.device_manager.virtio_devices();
  Result<x86::BootEntry> entry = x86::ConfigureSystem(memory, kernel, initrd, system);
  if (!entry.ok()) {
    // Only a command line the kernel cannot take is the client's boot_args.
    const bool cmdline_too_long = system.cmdline.size() + 1 > kernel.cmdline_max;
    return entry.status().Context(cmdline_too_long ? "boot-source.boot_args"
                                                   : "writing the guest's boot structures");
  }
  return entry;
}

Status CreateVcpus(Machine& machine, const MachineConfig& config, const x86::BootEntry& entry) {
  const x86::CpuTopology topology{config.vcpu_count, config.smt};
  for (uint32_t index = 0; index < config.vcpu_count; ++index) {
    EMBER_ASSIGN_OR_RETURN(std::unique_ptr<Vcpu> vcpu,
                           Vcpu::Create(*machine.kvm, machine.vm->fd(), index, machine.pio_bus,
                                        machine.mmio_bus, machine.exit_event));
    const std::string which = "vCPU " + std::to_string(index);
    int fd = vcpu->fd();
    EMBER_RETURN_IF_ERROR(
        x86::SetCpuid(fd, x86::FilterCpuid(machine.kvm->supported_cpuid(), index, topology))
            .Context(which));
    EMBER_RETURN_IF_ERROR(x86::SetBootMsrs(fd).Context(which));
    EMBER_RETURN_IF_ERROR(x86::SetFpu(fd).Context(which));
    EMBER_RETURN_IF_ERROR(x86::SetLapicLints(fd).Context(which));
    // Application processors wait for INIT/SIPI from the guest.
    if (index == 0) EMBER_RETURN_IF_ERROR(x86::SetBootRegisters(fd, entry).Context(which));
    machine.vcpus.push_back(std::move(vcpu));
  }
  return Status::Ok();
}

}  // namespace

Status CheckBootSource(const BootSourceConfig& boot) {
  if (Status opens = CheckOpens(boot.kernel_image_path); !opens.ok()) {
    return Status::Error("The kernel file cannot be opened: " + opens.message() +
                         " (kernel_image_path " + boot.kernel_image_path + ")");
  }
  if (boot.initrd_path) {
    if (Status opens = CheckOpens(*boot.initrd_path); !opens.ok()) {
      return Status::Error(
          "The initrd file cannot be opened due to invalid path or invalid permissions. " +
          opens.message() + " (initrd_path " + *boot.initrd_path + ")");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Machine>> Boot(const VmConfig& config, const BuildOptions& options,
                                      const BootHooks& hooks) {
  if (!config.boot_source) {
    return Status::Error("boot-source: must be configured before the VM can start");
  }
  auto machine = std::make_unique<Machine>();
  if (!machine->exit_event.valid()) return ErrnoStatus("creating the VM exit eventfd");

  // 1. Accelerator.
  EMBER_ASSIGN_OR_RETURN(Kvm kvm, Kvm::Open(options.kvm_device));
  machine->kvm = std::make_unique<Kvm>(std::move(kvm));
  SPDLOG_INFO("KVM backed by {}", KvmBackingName(machine->kvm->backing()));
  if (config.machine.vcpu_count > static_cast<uint32_t>(machine->kvm->max_vcpus())) {
    return Status::Error("machine-config.vcpu_count: " + std::to_string(config.machine.vcpu_count) +
                         " is more than this KVM supports (" +
                         std::to_string(machine->kvm->max_vcpus()) + ")");
  }

  // 2. Memory and VM, with the arch's in-kernel parts.
  const uint64_t mem_bytes = uint64_t{config.machine.mem_size_mib} * layout::kMiB;
  const uint32_t address_bits = PhysicalAddressBits(*machine->kvm);
  std::vector<RamRange> ram = x86::GuestRamRanges(mem_bytes);
  if (ram.back().guest_address + ram.back().size > (uint64_t{1} << address_bits)) {
    return Status::Error(
        "machine-config.mem_size_mib: " + std::to_string(config.machine.mem_size_mib) +
        " MiB does not fit in the guest's " + std::to_string(address_bits) +
        "-bit physical address space");
  }
  Result<GuestMemory> memory =
      GuestMemory::Create(ram, config.machine.huge_pages_2m ? GuestMemory::Pages::kHuge2M
                                                            : GuestMemory::Pages::kNormal);
  if (!memory.ok()) {
    return memory.status().Context(config.machine.huge_pages_2m ? "machine-config.huge_pages"
                                                                : "machine-config.mem_size_mib");
  }
  EMBER_ASSIGN_OR_RETURN(Vm vm, Vm::Create(*machine->kvm, std::move(*memory)));
  machine->vm = std::make_unique<Vm>(std::move(vm));
  EMBER_RETURN_IF_ERROR(x86::SetUpVm(*machine->vm));

  // 3. Board: serial, i8042, ACPI power, boot timer.
  EMBER_RETURN_IF_ERROR(AddDevices(*machine, config, options));

  // 4. Virtio devices, each placed once by the device manager.
  EMBER_RETURN_IF_ERROR(AddVirtioDevices(*machine, config, options));

  // 5. Guest: kernel, initrd, and the x86 boot structures for this board.
  EMBER_ASSIGN_OR_RETURN(x86::BootEntry entry, LoadGuest(*machine, config));

  // 6. vCPUs, configured, not yet running.
  EMBER_RETURN_IF_ERROR(CreateVcpus(*machine, config.machine, entry));

  // 7. Threads: device control and the vCPUs, each installing its own
  //    seccomp filter before the VMM thread takes its own (so they do not
  //    inherit it).
  // (No vhost-user device, no conversations: no thread, whose filter
  // costs ~1 ms of CPU to build and load.)
  if (!machine->vhost_user_backends.empty()) {
    EMBER_RETURN_IF_ERROR(machine->device_control->Start());
  }
  EMBER_RETURN_IF_ERROR(Vcpu::InstallKickSignalHandler());
  for (auto& vcpu : machine->vcpus) EMBER_RETURN_IF_ERROR(vcpu->StartThread());

  // 8. The VMM thread's event loop takes the machine's events.
  if (Status attached = hooks.attach(*machine); !attached.ok()) {
    hooks.detach(*machine);
    return attached;
  }

  // 9. The VMM thread's filter.
  if (Status filtered = InstallThreadFilter(ThreadKind::kVmm); !filtered.ok()) {
    hooks.detach(*machine);
    return filtered;  // the machine goes: vCPU threads stop, nothing half-built stays
  }

  // 10. The guest runs, every vCPU together.
  for (auto& vcpu : machine->vcpus) vcpu->Resume();
  return machine;
}

}  // namespace ember
