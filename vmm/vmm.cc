#include "vmm/vmm.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/clock.h"
#include "base/logger.h"
#include "base/metrics.h"
#include "base/stale_socket.h"
#include "base/sys_error.h"
#include "base/version.h"
#include "config/config_render.h"
#include "devices/tap.h"
#include "jail/seccomp.h"
#include "vmm/backend_reconnector.h"
#include "vmm/boot.h"

namespace ember {
namespace {

constexpr const char* kNotAfterStart =
    "The requested operation is not supported after starting the microVM.";
constexpr const char* kNotBeforeStart =
    "The requested operation is not supported before starting the microVM.";
constexpr time_t kMetricsPeriodSeconds = 60;

template <class... Handlers>
struct Overloaded : Handlers... {
  using Handlers::operator()...;
};
template <class... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

VmmReply FromStatus(const Status& status) {
  return status.ok() ? VmmReply::NoContent() : VmmReply::Error(status.message());
}

}  // namespace

sigset_t TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  return signals;
}

const char* VmmStateName(Vmm::State state) {
  switch (state) {
    case Vmm::State::kNotStarted:
      return "Not started";
    case Vmm::State::kRunning:
      return "Running";
    case Vmm::State::kPaused:
      return "Paused";
  }
  return "?";
}

Vmm::~Vmm() {
  // Reconnectors watch the machine's backends; vCPU threads stop before the
  // terminal is restored and memory unmapped.
  reconnectors_.clear();
  machine_.reset();
}

Status Vmm::ConfigureMetrics(const std::string& path) {
  if (metrics_) {
    return Status::Error(
        "Cannot initialize the metrics system due to bad user input: Reinitialization of metrics "
        "not allowed.");
  }
  EMBER_ASSIGN_OR_RETURN(MetricsWriter writer, MetricsWriter::Open(path));
  metrics_.emplace(std::move(writer));
  config_.metrics_path = path;
  return Status::Ok();
}

Status Vmm::ApplyLoggerConfig(const LoggerConfig& config) {
  LoggerOptions logger{config.level, config.log_path, config.show_level, config.show_log_origin,
                       options_.instance_id};
  EMBER_RETURN_IF_ERROR(ConfigureLogger(logger));
  config_.logger = config;
  return Status::Ok();
}

namespace {

MmdsSettings ToSettings(const MmdsConfig& config) {
  MmdsSettings settings;
  settings.version = config.v2 ? MmdsVersion::kV2 : MmdsVersion::kV1;
  settings.ipv4_address = config.ipv4_address;
  settings.imds_compat = config.imds_compat;
  return settings;
}

// A store refusal: 413 when the data does not fit (Firecracker's status).
VmmReply FromMmdsStatus(const Status& status) {
  if (status.ok()) return VmmReply::NoContent();
  return VmmReply::Error(status.message(), MmdsStore::IsLimitExceeded(status) ? 413 : 400);
}

}  // namespace

VmmReply Vmm::HandleMmds(const VmmAction& action) {
  const bool started = state_ != State::kNotStarted;
  if (!mmds_) return VmmReply::Error("MMDS is not available before the VMM is prepared");
  if (const auto* put = std::get_if<PutMmdsConfig>(&action)) {
    if (started) return VmmReply::Error(kNotAfterStart);
    if (Status interfaces = CheckMmdsInterfaces(put->config, config_.net); !interfaces.ok()) {
      return VmmReply::Error("MMDS config error: " + interfaces.message());
    }
    if (Status set = mmds_->Configure(ToSettings(put->config)); !set.ok()) {
      return VmmReply::Error("MMDS config error: " + set.message());
    }
    config_.mmds = put->config;
    return VmmReply::NoContent();
  }
  // The data may change before and after boot, as in Firecracker.
  if (const auto* put = std::get_if<PutMmds>(&action)) return FromMmdsStatus(mmds_->Put(put->data));
  if (const auto* patch = std::get_if<PatchMmds>(&action)) {
    return FromMmdsStatus(mmds_->Patch(patch->patch));
  }
  nlohmann::json data = mmds_->Get();
  return VmmReply::Json(data.is_null() ? nlohmann::json::object() : std::move(data));
}

Status Vmm::Configure(const VmConfig& config) {
  if (config.logger) EMBER_RETURN_IF_ERROR(ApplyLoggerConfig(*config.logger).Context("logger"));
  if (config.metrics_path) EMBER_RETURN_IF_ERROR(ConfigureMetrics(*config.metrics_path));
  if (config.boot_source) {
    EMBER_RETURN_IF_ERROR(CheckBootSource(*config.boot_source).Context("Boot source error"));
  }
  if (config.mmds && mmds_) {
    EMBER_RETURN_IF_ERROR(mmds_->Configure(ToSettings(*config.mmds)).Context("mmds-config"));
  }
  config_ = config;
  return Status::Ok();
}

namespace {

// What can be known before a backend is contacted: its socket exists.
// (virtiofsd serves a single connection, so ember connects only at start.)
Status CheckBackendSocket(const std::string& device, const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return ErrnoStatus(device + ": socket " + path);
  if (!S_ISSOCK(info.st_mode)) return Status::Error(device + ": " + path + " is not a socket");
  return Status::Ok();
}

// PUT semantics of Firecracker's device resources: a new id adds a
// device, a known id replaces it; then the whole set is checked.
template <typename Config, typename Id>
std::vector<Config> Upsert(const std::vector<Config>& devices, const Config& device, Id id) {
  std::vector<Config> updated = devices;
  auto same = std::find_if(updated.begin(), updated.end(),
                           [&](const Config& d) { return d.*id == device.*id; });
  if (same != updated.end()) {
    *same = device;
  } else {
    updated.push_back(device);
  }
  return updated;
}

}  // namespace

Status Vmm::PutDrive(const DriveConfig& drive) {
  // Firecracker opens the file at PUT time: a bad path fails here, and the
  // configuration keeps the drive it had.
  if (!drive.socket) {
    Result<UniqueFd> file = BlockDevice::OpenBackingFile(drive.path_on_host, drive.is_read_only);
    if (!file.ok()) return file.status().Context("path_on_host");
  } else if (drive.socket->mode == SocketMode::kClient) {
    EMBER_RETURN_IF_ERROR(CheckBackendSocket("drive " + drive.drive_id, drive.socket->socket));
  }
  std::vector<DriveConfig> drives = UpsertDrive(config_.drives, drive);
  EMBER_RETURN_IF_ERROR(CheckDrives(drives));
  config_.drives = std::move(drives);
  return Status::Ok();
}

Status Vmm::PatchDrive(const DriveUpdate& update) {
  auto drive = std::find_if(config_.drives.begin(), config_.drives.end(),
                            [&](const DriveConfig& d) { return d.drive_id == update.drive_id; });
  if (drive == config_.drives.end()) {
    return Status::Error("drive_id: no drive \"" + update.drive_id + "\" is configured");
  }
  if (drive->socket) {
    return Status::Error(std::string(update.path_on_host ? "path_on_host" : "rate_limiter") +
                         ": drive " + update.drive_id +
                         " is a vhost-user drive; its backend owns the file and the data");
  }
  std::optional<UniqueFd> file;
  if (update.path_on_host) {
    Result<UniqueFd> opened =
        BlockDevice::OpenBackingFile(*update.path_on_host, drive->is_read_only);
    if (!opened.ok()) return opened.status().Context("path_on_host");
    file = std::move(*opened);
  }
  if (machine_) {
    // After boot: the running device takes the new file or buckets.
    auto running =
        std::find_if(machine_->drives.begin(), machine_->drives.end(),
                     [&](const Machine::Drive& d) { return d.drive_id == update.drive_id; });
    if (running == machine_->drives.end() || running->device == nullptr) {
      return Status::Error("drive_id: drive \"" + update.drive_id + "\" is not running");
    }
    GlobalMetrics().block_update_count.Add();
    if (file) {
      Status replaced = running->device->ReplaceFile(std::move(*file));
      if (!replaced.ok()) {
        GlobalMetrics().block_update_fails.Add();
        return replaced;
      }
      // The driver reads the new capacity after a config-change interrupt.
      running->transport->NotifyConfigChange();
      SPDLOG_INFO("drive {}: now on {} ({} sectors)", update.drive_id, *update.path_on_host,
                  running->device->capacity_sectors());
    }
    if (update.rate_limiter) running->device->SetRateLimiter(*update.rate_limiter);
  }
  if (update.path_on_host) drive->path_on_host = *update.path_on_host;
  if (update.rate_limiter) drive->rate_limiter = update.rate_limiter;
  return Status::Ok();
}

Status Vmm::PatchNetDevice(const NetUpdate& update) {
  auto iface = std::find_if(config_.net.begin(), config_.net.end(),
                            [&](const NetConfig& n) { return n.iface_id == update.iface_id; });
  if (iface == config_.net.end()) {
    return Status::Error("iface_id: no network interface \"" + update.iface_id +
                         "\" is configured");
  }
  if (iface->host_dev_name.empty()) {
    return Status::Error(
        std::string(update.rx_rate_limiter ? "rx_rate_limiter" : "tx_rate_limiter") + ": " +
        update.iface_id + " is a vhost-user interface; its backend switches the packets");
  }
  if (machine_) {
    auto running =
        std::find_if(machine_->tap_nets.begin(), machine_->tap_nets.end(),
                     [&](const Machine::TapNet& n) { return n.iface_id == update.iface_id; });
    if (running == machine_->tap_nets.end()) {
      return Status::Error("iface_id: network interface \"" + update.iface_id +
                           "\" is not running");
    }
    running->device->SetRateLimiters(update.rx_rate_limiter, update.tx_rate_limiter);
  }
  if (update.rx_rate_limiter) iface->rx_rate_limiter = update.rx_rate_limiter;
  if (update.tx_rate_limiter) iface->tx_rate_limiter = update.tx_rate_limiter;
  return Status::Ok();
}

Status Vmm::PutFsDevice(const FsConfig& device) {
  if (device.backend.mode == SocketMode::kClient) {
    EMBER_RETURN_IF_ERROR(CheckBackendSocket("fs device " + device.fs_id, device.backend.socket));
  }
  std::vector<FsConfig> devices = Upsert(config_.fs, device, &FsConfig::fs_id);
  EMBER_RETURN_IF_ERROR(CheckFsDevices(devices));
  config_.fs = std::move(devices);
  return Status::Ok();
}

Status Vmm::PutNetDevice(const NetConfig& device) {
  if (!device.host_dev_name.empty()) {
    // As Firecracker, the TAP is checked at PUT (missing, busy, not ours);
    // it is opened again at InstanceStart.
    EMBER_RETURN_IF_ERROR(OpenTap(device.host_dev_name).status());
  } else if (device.backend.mode == SocketMode::kClient) {
    EMBER_RETURN_IF_ERROR(
        CheckBackendSocket("net device " + device.iface_id, device.backend.socket));
  }
  std::vector<NetConfig> devices = Upsert(config_.net, device, &NetConfig::iface_id);
  EMBER_RETURN_IF_ERROR(CheckNetDevices(devices));
  config_.net = std::move(devices);
  return Status::Ok();
}

Status Vmm::PutVsock(const VsockConfig& vsock) {
  // The socket is made at InstanceStart; what can fail then is checked
  // now: its directory exists and nothing (but a stale socket) is there.
  const std::string& path = vsock.uds_path;
  const size_t slash = path.rfind('/');
  const std::string directory =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat info {};
  if (stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return Status::Error("uds_path: the directory " + directory + " of " + path +
                         " does not exist");
  }
  EMBER_RETURN_IF_ERROR(RemoveStaleSocket(path, "uds_path"));
  // One vsock device: a second PUT replaces the first, as in Firecracker.
  config_.vsock = vsock;
  return Status::Ok();
}

Status Vmm::StartInstance(bool timed_from_now) {
  if (state_ != State::kNotStarted) return Status::Error(kNotAfterStart);
  BuildOptions build;
  build.kvm_device = options_.kvm_device;
  build.boot_timer = options_.boot_timer;
  build.console_fd = options_.console_fd;
  build.start_time = timed_from_now ? std::chrono::steady_clock::now() : options_.process_start;
  build.start_cpu_us = timed_from_now ? ProcessCpuMicros() : options_.process_start_cpu_us;
  build.mmds = mmds_;
  // (PUT /network-interfaces may have replaced a listed interface since.)
  if (config_.mmds) {
    EMBER_RETURN_IF_ERROR(
        CheckMmdsInterfaces(*config_.mmds, config_.net).Context("MMDS config error"));
  }
  terminal_ = std::make_unique<RawTerminal>(options_.stdin_fd);
  Result<std::unique_ptr<Machine>> booted =
      Boot(config_, build,
           {[this](Machine& machine) { return AttachMachineToLoop(machine); },
            [this](Machine& machine) { DetachMachineFromLoop(machine); }});
  if (!booted.ok()) {
    terminal_.reset();
    return booted.status();
  }
  machine_ = std::move(*booted);
  state_ = State::kRunning;
  return Status::Ok();
}

VmmReply Vmm::HandleStart() {
  Status status = StartInstance(/*timed_from_now=*/true);
  if (!status.ok()) SPDLOG_ERROR("InstanceStart failed: {}", status.message());
  return FromStatus(status);
}

VmmReply Vmm::HandleSetVmState(bool paused) {
  if (state_ == State::kNotStarted) return VmmReply::Error(kNotBeforeStart);
  for (auto& vcpu : machine_->vcpus) {
    if (paused) {
      vcpu->Pause();
    } else {
      vcpu->Resume();
    }
  }
  state_ = paused ? State::kPaused : State::kRunning;
  SPDLOG_INFO("VM {}", paused ? "paused" : "resumed");
  return VmmReply::NoContent();
}

VmmReply Vmm::Handle(const VmmAction& action) {
  const bool started = state_ != State::kNotStarted;
  return std::visit(
      Overloaded{
          [&](const GetInstanceInfo&) {
            return VmmReply::Json({{"id", options_.instance_id},
                                   {"state", VmmStateName(state_)},
                                   {"vmm_version", kFirecrackerApiVersion},
                                   {"app_name", "ember"}});
          },
          [&](const GetVersion&) {
            // Firecracker clients read firecracker_version: the API version
            // ember answers as (base/version.h).
            return VmmReply::Json({{"firecracker_version", kFirecrackerApiVersion},
                                   {"ember_version", kEmberVersion}});
          },
          [&](const GetVmConfig&) { return VmmReply::Json(RenderVmConfig(config_)); },
          [&](const GetMachineConfig&) {
            return VmmReply::Json(RenderMachineConfig(config_.machine));
          },
          [&](const PutBootSource& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            // Checked before it replaces what was there (Firecracker's rule).
            if (Status files = CheckBootSource(put.config); !files.ok()) {
              return VmmReply::Error("Boot source error: " + files.message());
            }
            config_.boot_source = put.config;
            return VmmReply::NoContent();
          },
          [&](const UpdateMachineConfig& update) {
            if (started) return VmmReply::Error(kNotAfterStart);
            Result<MachineConfig> machine =
                ApplyMachineConfigUpdate(config_.machine, update.update);
            if (!machine.ok()) return VmmReply::Error(machine.status().message());
            config_.machine = *machine;
            return VmmReply::NoContent();
          },
          [&](const PutLogger& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(ApplyLoggerConfig(put.config).Context("Logger error"));
          },
          [&](const PutMetrics& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(ConfigureMetrics(put.path).Context("Metrics error"));
          },
          [&](const PutSerial& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            config_.serial = put.config;
            return VmmReply::NoContent();
          },
          [&](const ember::PutDrive& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(PutDrive(put.config));
          },
          [&](const ember::PatchDrive& patch) { return FromStatus(PatchDrive(patch.update)); },
          [&](const PutFs& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(PutFsDevice(put.config));
          },
          [&](const PutNetworkInterface& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(PutNetDevice(put.config));
          },
          [&](const ember::PatchNetworkInterface& patch) {
            return FromStatus(PatchNetDevice(patch.update));
          },
          [&](const ember::PutVsock& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            return FromStatus(PutVsock(put.config));
          },
          [&](const PutEntropy& put) {
            if (started) return VmmReply::Error(kNotAfterStart);
            config_.entropy = put.config;
            return VmmReply::NoContent();
          },
          [&](const GetMmds&) { return HandleMmds(action); },
          [&](const PutMmds&) { return HandleMmds(action); },
          [&](const PatchMmds&) { return HandleMmds(action); },
          [&](const PutMmdsConfig&) { return HandleMmds(action); },
          [&](const ember::StartInstance&) { return HandleStart(); },
          [&](const SendCtrlAltDel&) {
            if (!started) return VmmReply::Error(kNotBeforeStart);
            machine_->i8042->SendCtrlAltDel();
            return VmmReply::NoContent();
          },
          [&](const FlushMetrics&) {
            // Firecracker's rules: only a running VM flushes, and with no
            // metrics file there is nothing to write (204).
            if (!started) return VmmReply::Error(kNotBeforeStart);
            if (!metrics_) return VmmReply::NoContent();
            return FromStatus(metrics_->Flush());
          },
          [&](const SetVmState& set) { return HandleSetVmState(set.paused); },
      },
      action);
}

Status Vmm::AttachMachineToLoop(Machine& machine) {
  EMBER_RETURN_IF_ERROR(
      loop_->Add(machine.exit_event.fd(), EPOLLIN, [this](uint32_t) { OnVmExit(); }));
  // A backend that goes away does not end the VM: see BackendReconnector.
  for (Machine::VhostUserBackend& backend : machine.vhost_user_backends) {
    EMBER_ASSIGN_OR_RETURN(std::unique_ptr<BackendReconnector> reconnector,
                           BackendReconnector::Create(backend, *loop_));
    reconnectors_.push_back(std::move(reconnector));
  }
  // Console output: drained when a vCPU queued some, and when the fd takes
  // more after it was full.
  EMBER_RETURN_IF_ERROR(loop_->Add(machine.console_output->ready_fd(), EPOLLIN,
                                   [this](uint32_t) { DrainConsole(); }));
  // Regular files and /dev/null cannot be polled; the guest then gets no input.
  int in = options_.stdin_fd;
  if (in >= 0 && loop_->Add(in, EPOLLIN, [this](uint32_t) { ForwardConsoleInput(); }).ok()) {
    fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK);
  }
  return Status::Ok();
}

void Vmm::DetachMachineFromLoop(Machine& machine) {
  loop_->Remove(machine.exit_event.fd());
  loop_->Remove(machine.console_output->ready_fd());
  if (console_waits_) loop_->Remove(machine.console_output->fd());
  console_waits_ = false;
  loop_->Remove(options_.stdin_fd);
  reconnectors_.clear();
}

void Vmm::ForwardConsoleInput() {
  uint8_t buffer[256];
  size_t space = std::min(sizeof(buffer), machine_->serial->InputSpace());
  if (space == 0) return;  // the guest is not reading; retried on the next event
  ssize_t n = read(options_.stdin_fd, buffer, space);
  if (n > 0) {
    machine_->serial->QueueInput({buffer, static_cast<size_t>(n)});
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    loop_->Remove(options_.stdin_fd);  // end of input: the guest keeps running
  }
}

void Vmm::DrainConsole() {
  ConsoleOutput& output = *machine_->console_output;
  const bool drained = output.Drain();
  if (drained && console_waits_) {
    loop_->Remove(output.fd());
    console_waits_ = false;
  } else if (!drained && !console_waits_) {
    // Full: wait until the reader takes some (EPOLLERR: it went away).
    Status watched = loop_->Add(output.fd(), EPOLLOUT, [this](uint32_t) { DrainConsole(); });
    console_waits_ = watched.ok();
    if (!watched.ok()) {
      // Nothing would drain the buffer again and the console would fall
      // silent: drop what waits and let the next byte try the fd.
      SPDLOG_WARN("serial console: {}; buffered output dropped", watched.message());
      output.Discard();
    }
  }
}

void Vmm::FlushConsoleAtExit() {
  // The guest's last lines: a reader gets up to ~1 s to take them.
  for (int tries = 0; tries < 100 && !machine_->console_output->Drain(); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Vmm::OnVmExit() {
  for (auto& vcpu : machine_->vcpus) vcpu->Stop();
  std::optional<VmExit> exit = machine_->exit_event.Taken();
  if (exit && exit->reason == VmExitReason::kError) {
    SPDLOG_ERROR("VM stopped: {}", exit->detail);
    exit_code_ = 1;
  } else {
    SPDLOG_INFO("VM stopped: {}", exit ? exit->detail : "no reason given");
    exit_code_ = 0;
  }
  done_ = true;
}

Status Vmm::Prepare(ActionChannel* api) {
  // Everything the loop needs is created here, before the VMM thread's
  // seccomp filter (installed at InstanceStart) forbids creating it.
  EMBER_ASSIGN_OR_RETURN(EventLoop loop, EventLoop::Create());
  loop_ = std::make_unique<EventLoop>(std::move(loop));
  api_ = api;
  // (Its token key comes from getrandom, which the VMM's filter forbids.)
  EMBER_ASSIGN_OR_RETURN(mmds_, MmdsStore::Create(options_.mmds_size_limit));
  if (options_.metadata) {
    EMBER_RETURN_IF_ERROR(mmds_->Put(*options_.metadata).Context("--metadata"));
  }

  // SIGINT, SIGTERM and SIGHUP end ember cleanly; main() blocked them in
  // every thread.
  sigset_t signals = TerminationSignals();
  signal_fd_.reset(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) return ErrnoStatus("signalfd");
  EMBER_RETURN_IF_ERROR(loop_->Add(signal_fd_.get(), EPOLLIN, [this](uint32_t) {
    signalfd_siginfo info{};
    (void)!read(signal_fd_.get(), &info, sizeof(info));
    stop_signal_ = static_cast<int>(info.ssi_signo);
    SPDLOG_INFO("received {}, stopping", strsignal(stop_signal_));
    // Firecracker exits 156 after SIGHUP (flintlock stops VMs with it).
    if (stop_signal_ == SIGHUP) exit_code_ = kSighupExitCode;
    done_ = true;
  }));

  metrics_timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!metrics_timer_.valid()) return ErrnoStatus("timerfd_create");
  itimerspec period{{kMetricsPeriodSeconds, 0}, {kMetricsPeriodSeconds, 0}};
  timerfd_settime(metrics_timer_.get(), 0, &period, nullptr);
  EMBER_RETURN_IF_ERROR(loop_->Add(metrics_timer_.get(), EPOLLIN, [this](uint32_t) {
    uint64_t expirations;
    (void)!read(metrics_timer_.get(), &expirations, sizeof(expirations));
    if (metrics_) {
      if (Status status = metrics_->Flush(); !status.ok()) SPDLOG_WARN("{}", status.message());
    }
  }));

  if (api != nullptr) {
    EMBER_RETURN_IF_ERROR(loop_->Add(api->event_fd(), EPOLLIN, [this](uint32_t) {
      api_->Drain([this](const VmmAction& action) { return Handle(action); });
    }));
  }
  return Status::Ok();
}

Result<int> Vmm::Run() {
  while (!done_) EMBER_RETURN_IF_ERROR(loop_->RunOnce(-1));
  if (api_ != nullptr) api_->Close();
  if (machine_) {
    for (auto& vcpu : machine_->vcpus) vcpu->Stop();
    FlushConsoleAtExit();
  }
  if (metrics_) (void)metrics_->Flush();
  return exit_code_;
}

}  // namespace ember
