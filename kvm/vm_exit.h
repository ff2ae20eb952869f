// How a running VM asks the VMM thread to end it: a vCPU or a device
// reports a reason once, and the VMM thread's epoll loop wakes on the
// eventfd. The first report wins; later ones are ignored.
//
// Thread-safety: Report may be called from any thread.
#pragma once

#include <sys/eventfd.h>

#include <mutex>
#include <optional>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

enum class VmExitReason {
  kGuestReset,     // i8042 reset, triple fault, KVM reset event
  kGuestPowerOff,  // KVM shutdown event (ACPI power-off)
  kError,          // KVM or emulation failure
};

struct VmExit {
  VmExitReason reason;
  std::string detail;
};

class VmExitEvent {
 public:
  VmExitEvent() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }

  void Report(VmExitReason reason, std::string detail) {
    {
      std::lock_guard lock(mutex_);
      if (exit_) return;
      exit_ = VmExit{reason, std::move(detail)};
    }
    uint64_t one = 1;
    (void)!write(fd_.get(), &one, sizeof(one));
  }

  std::optional<VmExit> Taken() {
    std::lock_guard lock(mutex_);
    return exit_;
  }

 private:
  UniqueFd fd_;
  std::mutex mutex_;
  std::optional<VmExit> exit_;
};

}  // namespace ember
