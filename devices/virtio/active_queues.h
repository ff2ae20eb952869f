// What an emulated device (virtio-blk, virtio-net on a TAP, vsock) keeps
// of its activation, from DRIVER_OK to reset: its virtqueues (with
// EVENT_IDX when the driver took it), the interrupt, and the way to ask for
// a reset when the driver's rings make no sense; plus the capped warnings
// each device logs about its driver (a hostile one must not flood the log).
//
// Thread-safety: Activate and Clear come from the transport while the
// device's worker is stopped; the rest from the worker (Warn from anywhere).
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "base/log_limiter.h"
#include "base/status.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"

namespace ember {

class ActiveQueues {
 public:
  explicit ActiveQueues(std::string device_name) : name_(std::move(device_name)) {}

  // Takes the activation's queues `indices`, in that order. Each must be
  // ready: the transport checks a queue's areas only when the driver makes
  // it ready, so a queue it never readied is refused here.
  Status Activate(const Activation& activation, std::initializer_list<uint16_t> indices);
  void Clear();
  bool active() const { return !queues_.empty(); }
  // The i-th of the indices given to Activate.
  VirtQueue& operator[](size_t i) { return queues_[i]; }

  // The driver's ring makes no sense: the device stops serving and the
  // driver sees DEVICE_NEEDS_RESET.
  void Broken(const std::string& problem);
  bool broken() const { return broken_; }
  // Raises the interrupt once if the driver wants one for any queue that
  // completed chains: {{queue, completed}, ...}.
  void InterruptIfWanted(std::initializer_list<std::pair<size_t, bool>> queues);
  // Logged through a rate limit: a driver can repeat its mistakes at will.
  void Warn(const std::string& message);
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  std::vector<VirtQueue> queues_;
  int interrupt_fd_ = -1;
  std::function<void()> needs_reset_;
  bool broken_ = false;
  LogLimiter log_limit_;
};

}  // namespace ember
