// Hands typed actions from API threads to the VMM thread and their replies
// back: a queue plus an eventfd that the VMM thread's epoll loop watches.
//
// Thread-safety: Submit from any number of API threads; Drain and Close
// from the VMM thread only.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>

#include "api/vmm_action.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

class ActionChannel {
 public:
  static Result<std::unique_ptr<ActionChannel>> Create();

  int event_fd() const { return event_fd_.get(); }

  // Queues an action and waits for the VMM thread's reply.
  VmmReply Submit(VmmAction action);
  // Runs `handle` on every queued action and sends each reply back.
  void Drain(const std::function<VmmReply(const VmmAction&)>& handle);
  // Answers everything queued, and everything submitted later, with an
  // error: the VMM is going away.
  void Close();

 private:
  struct Pending {
    VmmAction action;
    std::promise<VmmReply> reply;
  };
  explicit ActionChannel(UniqueFd event_fd) : event_fd_(std::move(event_fd)) {}

  UniqueFd event_fd_;
  std::mutex mutex_;
  std::deque<std::unique_ptr<Pending>> queue_;
  bool closed_ = false;
};

}  // namespace ember
