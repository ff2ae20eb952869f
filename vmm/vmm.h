// The VMM thread: owns the configuration being built up, the machine once
// started, and the epoll loop that serves API actions, the guest console's
// input, metrics flushes, termination signals and the VM's exit.
//
// Thread-safety: every method runs on the VMM thread (the main thread).
// Other threads reach it only through the ActionChannel.
#pragma once

#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "api/action_channel.h"
#include "api/vmm_action.h"
#include "base/metrics.h"
#include "base/status.h"
#include "config/vm_config.h"
#include "devices/mmds/mmds_store.h"
#include "vmm/backend_reconnector.h"
#include "vmm/event_loop.h"
#include "vmm/machine.h"
#include "vmm/terminal.h"

namespace ember {

struct VmmOptions {
  std::string instance_id = "anonymous-instance";
  std::string kvm_device = "/dev/kvm";
  bool boot_timer = false;
  std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();
  uint64_t process_start_cpu_us = 0;
  int console_fd = 1;
  int stdin_fd = 0;
  // MMDS: the data store's size limit (--mmds-size-limit) and what it holds
  // from the start (--metadata).
  size_t mmds_size_limit = 51200;
  std::optional<nlohmann::json> metadata;
};

class Vmm {
 public:
  enum class State { kNotStarted, kRunning, kPaused };

  explicit Vmm(VmmOptions options) : options_(std::move(options)) {}
  ~Vmm();

  // Pre-boot configuration from a config file (logger and metrics take
  // effect at once).
  Status Configure(const VmConfig& config);
  Status ApplyLoggerConfig(const LoggerConfig& config);
  Status ConfigureMetrics(const std::string& path);
  // Builds and starts the machine. `timed_from_now`: the boot timer counts
  // from this call (InstanceStart) rather than from process start.
  Status StartInstance(bool timed_from_now);

  VmmReply Handle(const VmmAction& action);

  // Creates the event loop and what it watches (signals, the metrics
  // timer, the API channel if any). Before StartInstance.
  Status Prepare(ActionChannel* api);
  // Serves events until the VM ends (or SIGINT/SIGTERM/SIGHUP); returns the
  // exit code: 0 after a clean guest shutdown, SIGINT or SIGTERM, 1 after a
  // VM error, 156 after SIGHUP (Firecracker's code).
  Result<int> Run();
  // The termination signal that ended Run, if one did.
  int stop_signal() const { return stop_signal_; }

 private:
  VmmReply HandleStart();
  Status PutDrive(const DriveConfig& drive);
  Status PatchDrive(const DriveUpdate& update);
  Status PutFsDevice(const FsConfig& device);
  Status PutNetDevice(const NetConfig& device);
  Status PatchNetDevice(const NetUpdate& update);
  Status PutVsock(const VsockConfig& vsock);
  VmmReply HandleSetVmState(bool paused);
  VmmReply HandleMmds(const VmmAction& action);
  Status AttachMachineToLoop(Machine& machine);
  void DetachMachineFromLoop(Machine& machine);
  void OnVmExit();
  void ForwardConsoleInput();
  void DrainConsole();
  void FlushConsoleAtExit();

  VmmOptions options_;
  VmConfig config_;
  State state_ = State::kNotStarted;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<RawTerminal> terminal_;
  bool console_waits_ = false;  // the console fd is watched for EPOLLOUT
  std::vector<std::unique_ptr<BackendReconnector>> reconnectors_;
  std::optional<MetricsWriter> metrics_;
  // MMDS's data (made by Prepare); TAP interfaces listed in mmds-config
  // serve it to the guest from their workers.
  std::shared_ptr<MmdsStore> mmds_;
  std::unique_ptr<EventLoop> loop_;  // created by Prepare()
  ActionChannel* api_ = nullptr;
  UniqueFd signal_fd_;
  UniqueFd metrics_timer_;
  bool done_ = false;
  int exit_code_ = 0;
  int stop_signal_ = 0;
};

const char* VmmStateName(Vmm::State state);

// The signals that end ember: main blocks them in every thread before any
// other exists, and the VMM thread reads them from a signalfd.
sigset_t TerminationSignals();
// Firecracker's exit code after SIGHUP.
inline constexpr int kSighupExitCode = 156;

}  // namespace ember
