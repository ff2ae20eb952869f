// Keeps a vhost-user device's backend connected across backend restarts,
// on the VMM thread's event loop. When the backend hangs up, the VM keeps
// running and the device stops being served; in client mode ember retries
// the connection every reconnect_interval (until reconnect_timeout, if
// set), in server mode it accepts the backend's next connection; then the
// device negotiates again and resumes its rings.
//
// Thread-safety: VMM thread only. Everything it needs from the kernel (the
// retry timer) is created before the VMM thread's seccomp filter.
#pragma once

#include <chrono>
#include <memory>

#include "base/status.h"
#include "base/unique_fd.h"
#include "vmm/event_loop.h"
#include "vmm/machine.h"

namespace ember {

class BackendReconnector {
 public:
  static Result<std::unique_ptr<BackendReconnector>> Create(Machine::VhostUserBackend& backend,
                                                            EventLoop& loop);
  ~BackendReconnector();

 private:
  BackendReconnector(Machine::VhostUserBackend& backend, EventLoop& loop, UniqueFd timer)
      : backend_(backend), loop_(loop), timer_(std::move(timer)) {}
  Status WatchConnection();
  void OnHangUp();
  void OnRetryTimer();
  void OnBackendConnecting();
  // Negotiates on a new connection; false if the device refused it.
  bool Resume(UniqueFd fd);
  void ArmTimer(bool on);

  Machine::VhostUserBackend& backend_;
  EventLoop& loop_;
  UniqueFd timer_;
  int watched_fd_ = -1;
  bool listening_ = false;
  std::chrono::steady_clock::time_point lost_at_;
};

}  // namespace ember
