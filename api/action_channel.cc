#include "api/action_channel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "base/sys_error.h"

namespace ember {
namespace {
constexpr const char* kShuttingDown = "ember is shutting down: the microVM has stopped";
}  // namespace

Result<std::unique_ptr<ActionChannel>> ActionChannel::Create() {
  UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return ErrnoStatus("creating the API eventfd");
  return std::unique_ptr<ActionChannel>(new ActionChannel(std::move(fd)));
}

VmmReply ActionChannel::Submit(VmmAction action) {
  auto pending = std::make_unique<Pending>(Pending{std::move(action), {}});
  std::future<VmmReply> reply = pending->reply.get_future();
  {
    std::lock_guard lock(mutex_);
    if (closed_) return VmmReply::Error(kShuttingDown);
    queue_.push_back(std::move(pending));
  }
  uint64_t one = 1;
  (void)!write(event_fd_.get(), &one, sizeof(one));
  return reply.get();
}

void ActionChannel::Drain(const std::function<VmmReply(const VmmAction&)>& handle) {
  uint64_t count;
  (void)!read(event_fd_.get(), &count, sizeof(count));
  while (true) {
    std::unique_ptr<Pending> pending;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    pending->reply.set_value(handle(pending->action));
  }
}

void ActionChannel::Close() {
  std::deque<std::unique_ptr<Pending>> left;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    left.swap(queue_);
  }
  for (auto& pending : left) pending->reply.set_value(VmmReply::Error(kShuttingDown));
}

}  // namespace ember
