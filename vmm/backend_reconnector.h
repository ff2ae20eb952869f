// Keeps a vhost-user device's backend connected across backend restarts,
// on the VMM thread's event loop. When the backend hangs up, the VM keeps
// running and the device stops being served; in client mode ember retries
// the connection every reconnect_interval (until reconnect_timeout, if
// set), in server mode it accepts the backend's next connection; then the
// device negotiates again and resumes its rings. The negotiation runs on the
// device-control thread: the VMM thread only connects or accepts, and
// hears the outcome through an eventfd, so the API and the console keep
// answering while a restarted backend is slow.
//
// Thread-safety: VMM thread only, except the outcome, which the
// device-control thread sets. Everything it needs from the kernel (the
// retry timer, the outcome's eventfd) is created before the VMM thread's
// seccomp filter.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "base/log_limiter.h"
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
  // The control thread's answer to one Resume. Shared with the job, so it
  // outlives a reconnector that goes away while a negotiation runs.
  struct Outcome {
    UniqueFd ready;  // eventfd, written when `status` is set
    std::mutex mutex;
    std::optional<Status> status;
  };

  BackendReconnector(Machine::VhostUserBackend& backend, EventLoop& loop, UniqueFd timer,
                     std::shared_ptr<Outcome> outcome)
      : backend_(backend), loop_(loop), timer_(std::move(timer)), outcome_(std::move(outcome)) {}
  Status WatchConnection();
  void OnHangUp();
  void OnRetryTimer();
  void OnBackendConnecting();
  // Hands a new connection to the device (negotiated on the control
  // thread); OnResumed hears how it went.
  void Resume(UniqueFd fd);
  void OnResumed();
  void Listen();
  void ArmTimer(bool on);

  Machine::VhostUserBackend& backend_;
  EventLoop& loop_;
  UniqueFd timer_;
  std::shared_ptr<Outcome> outcome_;
  int watched_fd_ = -1;
  bool listening_ = false;
  bool resuming_ = false;
  LogLimiter log_limit_;  // peers refused while the backend's path is squatted
  std::chrono::steady_clock::time_point lost_at_;
};

}  // namespace ember
