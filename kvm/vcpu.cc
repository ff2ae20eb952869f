#include "kvm/vcpu.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "base/hex.h"
#include "base/metrics.h"
#include "base/sys_error.h"
#include "jail/seccomp.h"

namespace ember {
namespace {

int KickSignal() { return SIGRTMIN; }

void IgnoreKick(int) {}

const char* ExitReasonName(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_INTERNAL_ERROR:
      return "internal error";
    case KVM_EXIT_FAIL_ENTRY:
      return "entry failure";
    case KVM_EXIT_UNKNOWN:
      return "unknown";
    case KVM_EXIT_EXCEPTION:
      return "exception";
    default:
      return "unexpected exit";
  }
}

}  // namespace

Status Vcpu::InstallKickSignalHandler() {
  struct sigaction action {};
  action.sa_handler = IgnoreKick;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: the point of the signal is to interrupt KVM_RUN.
  if (sigaction(KickSignal(), &action, nullptr) != 0)
    return ErrnoStatus("installing vCPU kick signal");
  return Status::Ok();
}

Result<std::unique_ptr<Vcpu>> Vcpu::Create(const Kvm& kvm, int vm_fd, uint32_t index,
                                           const Bus& pio_bus, const Bus& mmio_bus,
                                           VmExitEvent& exit_event) {
  UniqueFd fd(ioctl(vm_fd, KVM_CREATE_VCPU, index));
  if (!fd.valid()) return ErrnoStatus("KVM_CREATE_VCPU " + std::to_string(index));
  size_t run_size = static_cast<size_t>(kvm.vcpu_mmap_size());
  void* run = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return ErrnoStatus("mapping kvm_run of vCPU " + std::to_string(index));
  return std::unique_ptr<Vcpu>(new Vcpu(index, std::move(fd), static_cast<kvm_run*>(run), run_size,
                                        pio_bus, mmio_bus, exit_event));
}

Vcpu::~Vcpu() {
  Stop();
  munmap(run_, run_size_);
}

Status Vcpu::StartThread() {
  try {
    thread_ = std::thread([this] { ThreadMain(); });
  } catch (const std::system_error& error) {
    return Status::Error("starting vCPU " + std::to_string(index_) + " thread: " + error.what());
  }
  // Firecracker's names: Kata Containers finds vCPU threads by the
  // "fc_vcpu" prefix and reads the index after the space (to place each in
  // its cgroup), and Firecracker's own tooling reads them the same way.
  std::string name = "fc_vcpu " + std::to_string(index_);
  pthread_setname_np(thread_.native_handle(), name.c_str());
  // The thread installs its seccomp filter first; wait for the outcome.
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return started_.has_value(); });
  return *started_;
}

void Vcpu::SendCommand(Command command) {
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::kStopped) return;
    pending_ = command;
    // Makes a KVM_RUN that is about to start return at once.
    run_->immediate_exit = 1;
  }
  changed_.notify_all();
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), KickSignal());
}

void Vcpu::Resume() { SendCommand(Command::kResume); }

void Vcpu::Pause() {
  SendCommand(Command::kPause);
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return pending_ == Command::kNone && state_ != State::kRunning; });
}

void Vcpu::Stop() {
  if (!thread_.joinable()) return;
  SendCommand(Command::kStop);
  thread_.join();
}

Vcpu::State Vcpu::state() {
  std::lock_guard lock(mutex_);
  return state_;
}

void Vcpu::ThreadMain() {
  // Before anything the guest controls: the vCPU's own filter.
  Status filtered = InstallThreadFilter(ThreadKind::kVcpu);
  {
    std::lock_guard lock(mutex_);
    started_ = filtered.Context("vCPU " + std::to_string(index_));
    if (!filtered.ok()) state_ = State::kStopped;
  }
  changed_.notify_all();
  if (!filtered.ok()) return;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      // Running threads look at commands between KVM_RUNs; others sleep
      // until one arrives.
      changed_.wait(lock,
                    [this] { return pending_ != Command::kNone || state_ == State::kRunning; });
      switch (std::exchange(pending_, Command::kNone)) {
        case Command::kResume:
          if (state_ == State::kPaused) state_ = State::kRunning;
          break;
        case Command::kPause:
          if (state_ == State::kRunning) state_ = State::kPaused;
          break;
        case Command::kStop:
          state_ = State::kStopped;
          changed_.notify_all();
          return;
        case Command::kNone:
          break;
      }
      run_->immediate_exit = 0;
      changed_.notify_all();
      if (state_ != State::kRunning) continue;
    }
    bool running;
    try {
      running = RunOnce();
    } catch (const std::exception& error) {
      // A device's exit handler failing ends this VM with the reason, never
      // the process with std::terminate.
      ReportExit(VmExitReason::kError, std::string("internal error on vCPU ") +
                                           std::to_string(index_) + ": " + error.what());
      running = false;
    }
    if (!running) {
      std::lock_guard lock(mutex_);
      if (state_ == State::kRunning) state_ = State::kExited;
      changed_.notify_all();
    }
  }
}

bool Vcpu::RunOnce() {
  if (ioctl(fd_.get(), KVM_RUN, 0) != 0) {
    if (errno == EINTR || errno == EAGAIN) return true;  // kicked: look at commands
    ReportExit(VmExitReason::kError, std::string("KVM_RUN failed: ") + std::strerror(errno));
    return false;
  }
  switch (run_->exit_reason) {
    case KVM_EXIT_IO:
      HandleIo();
      return true;
    case KVM_EXIT_MMIO:
      HandleMmio();
      return true;
    case KVM_EXIT_HLT:
      ReportExit(VmExitReason::kGuestPowerOff, "guest halted");
      return false;
    case KVM_EXIT_SHUTDOWN:
      ReportExit(VmExitReason::kGuestReset, "guest triple fault (KVM_EXIT_SHUTDOWN)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run_->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          ReportExit(VmExitReason::kGuestPowerOff, "guest powered off");
          return false;
        case KVM_SYSTEM_EVENT_RESET:
          ReportExit(VmExitReason::kGuestReset, "guest reset");
          return false;
        default:
          ReportExit(VmExitReason::kError,
                     "guest system event " + std::to_string(run_->system_event.type));
          return false;
      }
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::string detail =
          "KVM internal error, suberror " + std::to_string(run_->internal.suberror);
      if (run_->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) detail += " (emulation failure)";
      ReportExit(VmExitReason::kError, detail + "; " + DescribeRegisters());
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY:
      ReportExit(VmExitReason::kError, "KVM entry failure, hardware reason " +
                                           Hex(run_->fail_entry.hardware_entry_failure_reason) +
                                           "; " + DescribeRegisters());
      return false;
    default:
      ReportExit(VmExitReason::kError, std::string("KVM ") + ExitReasonName(run_->exit_reason) +
                                           " (exit reason " + std::to_string(run_->exit_reason) +
                                           "); " + DescribeRegisters());
      return false;
  }
}

void Vcpu::HandleIo() {
  auto* base = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
  // String instructions (rep ins/outs) arrive as `count` back-to-back items.
  for (uint32_t i = 0; i < run_->io.count; ++i) {
    std::span<uint8_t> data(base + i * run_->io.size, run_->io.size);
    if (run_->io.direction == KVM_EXIT_IO_OUT) {
      GlobalMetrics().exit_io_out.Add();
      pio_bus_.Write(run_->io.port, data);
    } else {
      GlobalMetrics().exit_io_in.Add();
      pio_bus_.Read(run_->io.port, data);
    }
  }
}

void Vcpu::HandleMmio() {
  uint32_t length = std::min<uint32_t>(run_->mmio.len, sizeof(run_->mmio.data));
  std::span<uint8_t> data(run_->mmio.data, length);
  if (run_->mmio.is_write) {
    GlobalMetrics().exit_mmio_write.Add();
    mmio_bus_.Write(run_->mmio.phys_addr, data);
  } else {
    GlobalMetrics().exit_mmio_read.Add();
    mmio_bus_.Read(run_->mmio.phys_addr, data);
  }
}

void Vcpu::ReportExit(VmExitReason reason, const std::string& detail) {
  if (reason == VmExitReason::kError) GlobalMetrics().vcpu_failures.Add();
  exit_event_.Report(reason, "vCPU " + std::to_string(index_) + ": " + detail);
}

std::string Vcpu::DescribeRegisters() const {
  kvm_regs regs{};
  kvm_sregs sregs{};
  if (ioctl(fd_.get(), KVM_GET_REGS, &regs) != 0 || ioctl(fd_.get(), KVM_GET_SREGS, &sregs) != 0) {
    return "registers unavailable";
  }
  return "rip=" + Hex(regs.rip) + " rsp=" + Hex(regs.rsp) + " rflags=" + Hex(regs.rflags) +
         " rax=" + Hex(regs.rax) + " rbx=" + Hex(regs.rbx) + " rcx=" + Hex(regs.rcx) +
         " rdx=" + Hex(regs.rdx) + " rsi=" + Hex(regs.rsi) + " rdi=" + Hex(regs.rdi) +
         " cs=" + Hex(sregs.cs.selector) + " cr0=" + Hex(sregs.cr0) + " cr3=" + Hex(sregs.cr3) +
         " cr4=" + Hex(sregs.cr4) + " efer=" + Hex(sregs.efer);
}

}  // namespace ember
