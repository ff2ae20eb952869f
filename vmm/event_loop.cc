#include "vmm/event_loop.h"

#include <sys/epoll.h>

#include "base/sys_error.h"

namespace ember {

Result<EventLoop> EventLoop::Create() {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1");
  return EventLoop(std::move(epoll));
}

Status EventLoop::Add(int fd, uint32_t events, Handler handler) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) return ErrnoStatus("epoll_ctl add");
  handlers_[fd] = std::move(handler);
  return Status::Ok();
}

void EventLoop::Remove(int fd) {
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

Status EventLoop::RunOnce(int timeout_ms) {
  constexpr int kMaxEvents = 16;
  epoll_event events[kMaxEvents];
  int ready = epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return Status::Ok();
    return ErrnoStatus("epoll_wait");
  }
  for (int i = 0; i < ready; ++i) {
    auto it = handlers_.find(events[i].data.fd);
    // A handler may have removed this fd while handling an earlier event.
    if (it == handlers_.end()) continue;
    Handler handler = it->second;
    handler(events[i].events);
  }
  return Status::Ok();
}

}  // namespace ember
