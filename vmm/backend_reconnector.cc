#include "vmm/backend_reconnector.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

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
  std::unique_ptr<BackendReconnector> reconnector(
      new BackendReconnector(backend, loop, std::move(timer)));
  BackendReconnector* self = reconnector.get();
  EMBER_RETURN_IF_ERROR(
      loop.Add(self->timer_.get(), EPOLLIN, [self](uint32_t) { self->OnRetryTimer(); }));
  EMBER_RETURN_IF_ERROR(self->WatchConnection());
  return reconnector;
}

BackendReconnector::~BackendReconnector() {
  loop_.Remove(timer_.get());
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
    spdlog::warn(
        "{}: the vhost-user backend disconnected; the VM keeps running, waiting for it "
        "on {}",
        name, backend_.endpoint.socket);
    listening_ =
        loop_.Add(backend_.listener.get(), EPOLLIN, [this](uint32_t) { OnBackendConnecting(); })
            .ok();
  } else {
    spdlog::warn(
        "{}: the vhost-user backend disconnected; the VM keeps running, reconnecting to "
        "{} every {} ms",
        name, backend_.endpoint.socket, backend_.endpoint.reconnect_interval.count());
    ArmTimer(true);
  }
}

void BackendReconnector::OnRetryTimer() {
  uint64_t expirations;
  (void)!read(timer_.get(), &expirations, sizeof(expirations));
  const auto timeout = backend_.endpoint.reconnect_timeout;
  if (timeout.count() > 0 && MillisSince(lost_at_) > static_cast<uint64_t>(timeout.count())) {
    ArmTimer(false);
    GlobalMetrics().vhost_user_reconnect_failures.Add();
    spdlog::error("{}: gave up reconnecting after {} ms; the device stays disconnected",
                  backend_.device->name(), timeout.count());
    return;
  }
  Result<UniqueFd> fd = ConnectToBackend(backend_.endpoint.socket, backend_.device->name());
  if (!fd.ok()) return;  // not back yet: try again on the next tick
  if (Resume(std::move(*fd))) ArmTimer(false);
}

void BackendReconnector::OnBackendConnecting() {
  UniqueFd fd(accept4(backend_.listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return;
  if (Resume(std::move(fd))) {
    loop_.Remove(backend_.listener.get());
    listening_ = false;
  }
}

bool BackendReconnector::Resume(UniqueFd fd) {
  const std::string& name = backend_.device->name();
  Status resumed = backend_.device->Reconnect(VhostUserConnection(std::move(fd), name));
  if (!resumed.ok()) {
    GlobalMetrics().vhost_user_reconnect_failures.Add();
    spdlog::error("{}: reconnect failed: {}", name, resumed.message());
    return false;
  }
  if (Status watched = WatchConnection(); !watched.ok()) {
    spdlog::error("{}: {}", name, watched.message());
    return false;
  }
  GlobalMetrics().vhost_user_reconnects.Add();
  spdlog::info("{}: reconnected to the vhost-user backend {} ms after it went away", name,
               MillisSince(lost_at_));
  return true;
}

}  // namespace ember
