// One vCPU and the thread that runs it, as an explicit state machine:
//
//   Paused --Resume--> Running --Pause--> Paused
//   any --Stop--> Stopped (thread joined)
//   Running --guest reset/power-off/KVM error--> Exited (reported, waits for Stop)
//
// The thread is created Paused. Commands come from the VMM thread; a vCPU
// inside KVM_RUN is kicked out with immediate_exit plus a signal.
// Port and MMIO exits are dispatched on the buses from the vCPU thread.
//
// Thread-safety: the public methods are for the VMM thread only.
#pragma once

#include <linux/kvm.h>
#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "base/unique_fd.h"
#include "kvm/bus.h"
#include "kvm/kvm.h"
#include "kvm/vm_exit.h"

namespace ember {

class Vcpu {
 public:
  enum class State { kPaused, kRunning, kExited, kStopped };

  static Result<std::unique_ptr<Vcpu>> Create(const Kvm& kvm, int vm_fd, uint32_t index,
                                              const Bus& pio_bus, const Bus& mmio_bus,
                                              VmExitEvent& exit_event);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  int fd() const { return fd_.get(); }
  uint32_t index() const { return index_; }

  // Starts the thread in the Paused state.
  Status StartThread();
  void Resume();
  // Returns once the thread is out of KVM_RUN and paused (or has exited).
  void Pause();
  // Ends the thread and joins it. Safe to call more than once.
  void Stop();
  State state();

  // Installs the no-op handler of the kick signal; once per process.
  static Status InstallKickSignalHandler();
  // Registers of this vCPU, formatted for error messages.
  std::string DescribeRegisters() const;

 private:
  enum class Command { kNone, kResume, kPause, kStop };

  Vcpu(uint32_t index, UniqueFd fd, kvm_run* run, size_t run_size, const Bus& pio_bus,
       const Bus& mmio_bus, VmExitEvent& exit_event)
      : index_(index),
        fd_(std::move(fd)),
        run_(run),
        run_size_(run_size),
        pio_bus_(pio_bus),
        mmio_bus_(mmio_bus),
        exit_event_(exit_event) {}

  void ThreadMain();
  void SendCommand(Command command);
  // Runs KVM_RUN once and handles the exit; false when the VM must end.
  bool RunOnce();
  void HandleIo();
  void HandleMmio();
  void ReportExit(VmExitReason reason, const std::string& detail);

  const uint32_t index_;
  UniqueFd fd_;
  kvm_run* const run_;
  const size_t run_size_;
  const Bus& pio_bus_;
  const Bus& mmio_bus_;
  VmExitEvent& exit_event_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  Command pending_ = Command::kNone;
  std::optional<Status> started_;  // set once the thread has its filter
  State state_ = State::kPaused;
};

}  // namespace ember
