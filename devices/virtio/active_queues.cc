#include "devices/virtio/active_queues.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace ember {

Status ActiveQueues::Activate(const Activation& activation,
                              std::initializer_list<uint16_t> indices) {
  const bool event_idx = (activation.acked_features & kVirtioFeatureRingEventIdx) != 0;
  queues_.clear();
  for (uint16_t index : indices) {
    if (index >= activation.queues.size() || !activation.queues[index].ready) {
      return Status::Error(name_ + ": queue " + std::to_string(index) +
                           " was not made ready before DRIVER_OK");
    }
  }
  queues_.reserve(indices.size());
  for (uint16_t index : indices) {
    queues_.emplace_back(activation.memory, activation.queues[index]);
    queues_.back().SetEventIdx(event_idx);
  }
  interrupt_fd_ = activation.interrupt_fd;
  needs_reset_ = activation.needs_reset;
  broken_ = false;
  return Status::Ok();
}

void ActiveQueues::Clear() {
  queues_.clear();
  needs_reset_ = nullptr;
}

void ActiveQueues::Broken(const std::string& problem) {
  EMBER_LOG_LIMITED(log_limit_, SPDLOG_ERROR, "{}: {}: the device needs a reset", name_, problem);
  broken_ = true;
  if (needs_reset_) needs_reset_();
}

void ActiveQueues::InterruptIfWanted(std::initializer_list<std::pair<size_t, bool>> queues) {
  bool wanted = false;
  // Every queue that completed is asked: DriverWantsInterrupt also moves
  // its EVENT_IDX bookkeeping on.
  for (const auto& [index, completed] : queues) {
    if (completed) wanted |= queues_[index].DriverWantsInterrupt();
  }
  if (!wanted) return;
  uint64_t one = 1;
  (void)!write(interrupt_fd_, &one, sizeof(one));
}

void ActiveQueues::Warn(const std::string& message) {
  EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN, "{}: {}", name_, message);
}

}  // namespace ember
