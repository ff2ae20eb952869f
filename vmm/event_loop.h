// The VMM thread's epoll loop: each subscriber registers an fd with a
// handler that runs on the VMM thread when the fd is ready.
// Thread-safety: VMM thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;

  static Result<EventLoop> Create();

  Status Add(int fd, uint32_t events, Handler handler);
  void Remove(int fd);
  // Waits up to `timeout_ms` (-1: forever) and runs the handlers of ready fds.
  Status RunOnce(int timeout_ms);

 private:
  explicit EventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}

  UniqueFd epoll_;
  std::map<int, Handler> handlers_;
};

}  // namespace ember
