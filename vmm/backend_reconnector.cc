#include "vmm/backend_reconnector.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <utility>

#include "base/metrics.h"
#include "base/sys_error.h"
#include "devices/vhost_user/vhost_user_endpoint.h"

namespace ember {
namespace {

uint64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

}  // namespace

Result<std::unique_ptr<BackendReconnector>> BackendReconnector::Create(
    Machine::VhostUserBackend& backend, EventLoop& loop) {
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer.valid()) return ErrnoStatus(backend.device->name() + ": timerfd_create");
  auto outcome = std::make_shared<Outcome>();
  outcome->ready.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!outcome->ready.valid()) return ErrnoStatus(backend.device->name() + ": eventfd");
  std::unique_ptr<BackendReconnector> reconnector(
      new BackendReconnector(backend, loop, std::move(timer), outcome));
  BackendReconnector* self = reconnector.get();
  EMBER_RETURN_IF_ERROR(
      loop.Add(self->timer_.get(), EPOLLIN, [self](uint32_t) { self->OnRetryTimer(); }));
  EMBER_RETURN_IF_ERROR(
      loop.Add(outcome->ready.get(), EPOLLIN, [self](uint32_t) { self->OnResumed(); }));
  EMBER_RETURN_IF_ERROR(self->WatchConnection());
  return reconnector;
}

BackendReconnector::~BackendReconnector() {
  loop_.Remove(timer_.get());
  loop_.Remove(outcome_->ready.get());
  if (watched_fd_ >= 0) loop_.Remove(watched_fd_);
  if (listening_) loop_.Remove(backend_.listener.get());
}

Status BackendReconnector::WatchConnection() {
  watched_fd_ = backend_.device->backend_socket();
  return loop_.Add(watched_fd_, EPOLLRDHUP, [this](uint32_t) { OnHangUp(); });
}

void BackendReconnector::ArmTimer(bool on) {
  const auto interval = backend_.endpoint.reconnect_interval;
  timespec period{static_cast<time_t>(interval.count() / 1000),
                  static_cast<long>((interval.count() % 1000) * 1000000)};
  itimerspec setting{};
  if (on) setting = {period, period};
  timerfd_settime(timer_.get(), 0, &setting, nullptr);
}

void BackendReconnector::OnHangUp() {
  const std::string& name = backend_.device->name();
  loop_.Remove(watched_fd_);
  watched_fd_ = -1;
  backend_.device->Disconnected();
  GlobalMetrics().vhost_user_disconnects.Add();
  lost_at_ = std::chrono::steady_clock::now();
  if (backend_.endpoint.mode == SocketMode::kServer) {
    SPDLOG_WARN(
        "{}: the vhost-user backend disconnected; the VM keeps running, waiting for it "
        "on {}",
        name, backend_.endpoint.socket);
    Listen();
  } else {
    SPDLOG_WARN(
        "{}: the vhost-user backend disconnected; the VM keeps running, reconnecting to "
        "{} every {} ms",
        name, backend_.endpoint.socket, backend_.endpoint.reconnect_interval.count());
    ArmTimer(true);
  }
}

void BackendReconnector::Listen() {
  listening_ =
      loop_.Add(backend_.listener.get(), EPOLLIN, [this](uint32_t) { OnBackendConnecting(); }).ok();
}

void BackendReconnector::OnRetryTimer() {
  uint64_t expirations;
  (void)!read(timer_.get(), &expirations, sizeof(expirations));
  if (resuming_) return;  // the last connection is still negotiating
  const auto timeout = backend_.endpoint.reconnect_timeout;
  if (timeout.count() > 0 && MillisSince(lost_at_) > static_cast<uint64_t>(timeout.count())) {
    ArmTimer(false);
    GlobalMetrics().vhost_user_reconnect_failures.Add();
    SPDLOG_ERROR("{}: gave up reconnecting after {} ms; the device stays disconnected",
                 backend_.device->name(), timeout.count());
    return;
  }
  Result<UniqueFd> fd = ConnectToBackend(backend_.endpoint.socket, backend_.device->name());
  if (!fd.ok()) return;  // not back yet: try again on the next tick
  Resume(std::move(*fd));
}

void BackendReconnector::OnBackendConnecting() {
  UniqueFd fd(accept4(backend_.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return;
  if (Status peer = CheckBackendPeer(fd.get(), backend_.endpoint.socket, backend_.device->name());
      !peer.ok()) {
    EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN, "{}; connection dropped", peer.message());
    return;
  }
  // One backend at a time: listen again only if this one fails.
  loop_.Remove(backend_.listener.get());
  listening_ = false;
  Resume(std::move(fd));
}

void BackendReconnector::Resume(UniqueFd fd) {
  resuming_ = true;
  std::shared_ptr<Outcome> outcome = outcome_;
  backend_.device->Reconnect(VhostUserConnection(std::move(fd), backend_.device->name()),
                             [outcome](Status status) {
                               {
                                 std::lock_guard lock(outcome->mutex);
                                 outcome->status = std::move(status);
                               }
                               uint64_t one = 1;
                               (void)!write(outcome->ready.get(), &one, sizeof(one));
                             });
}

void BackendReconnector::OnResumed() {
  uint64_t count;
  (void)!read(outcome_->ready.get(), &count, sizeof(count));
  std::optional<Status> resumed;
  {
    std::lock_guard lock(outcome_->mutex);
    resumed = std::exchange(outcome_->status, std::nullopt);
  }
  if (!resumed) return;
  resuming_ = false;
  const std::string& name = backend_.device->name();
  if (resumed->ok()) resumed = WatchConnection();
  if (!resumed->ok()) {
    GlobalMetrics().vhost_user_reconnect_failures.Add();
    SPDLOG_ERROR("{}: reconnect failed: {}", name, resumed->message());
    // Client mode: the retry timer is still running.
    if (backend_.endpoint.mode == SocketMode::kServer) Listen();
    return;
  }
  ArmTimer(false);
  GlobalMetrics().vhost_user_reconnects.Add();
  SPDLOG_INFO("{}: reconnected to the vhost-user backend {} ms after it went away", name,
              MillisSince(lost_at_));
}

}  // namespace ember
