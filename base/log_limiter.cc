#include "base/log_limiter.h"

#include <time.h>

#include "base/metrics.h"

namespace ember {
namespace {

uint64_t MonotonicNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);  // the vDSO: allowed on every thread
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

LogLimiter::LogLimiter(uint32_t burst, uint64_t interval_ns)
    : burst_(burst), interval_ns_(interval_ns), tokens_(burst) {}

bool LogLimiter::Allow(uint64_t& held_back) {
  std::lock_guard lock(mutex_);
  const uint64_t now = MonotonicNs();
  if (tokens_ < burst_ && now - refilled_at_ns_ >= interval_ns_) {
    const uint64_t earned = (now - refilled_at_ns_) / interval_ns_;
    tokens_ = earned >= burst_ - tokens_ ? burst_ : tokens_ + static_cast<uint32_t>(earned);
    refilled_at_ns_ = now;
  }
  if (tokens_ == 0) {
    ++held_back_;
    GlobalMetrics().logger_missed_log_count.Add();
    return false;
  }
  if (tokens_ == burst_) refilled_at_ns_ = now;  // the interval starts with the first spent token
  --tokens_;
  held_back = held_back_;
  held_back_ = 0;
  return true;
}

}  // namespace ember
