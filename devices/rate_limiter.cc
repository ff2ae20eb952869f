#include "devices/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace ember {

TokenBucket::TokenBucket(const TokenBucketConfig& config, Clock::time_point now)
    : config_(config),
      tokens_(static_cast<double>(config.size)),
      burst_(static_cast<double>(config.one_time_burst)),
      last_(now) {}

void TokenBucket::Refill(Clock::time_point now) {
  if (now <= last_) return;
  const double elapsed_ms = std::chrono::duration<double, std::milli>(now - last_).count();
  const double size = static_cast<double>(config_.size);
  tokens_ =
      std::min(size, tokens_ + elapsed_ms * size / static_cast<double>(config_.refill_time_ms));
  last_ = now;
}

TokenBucket::Clock::duration TokenBucket::WaitFor(uint64_t tokens, Clock::time_point now) {
  if (!limits()) return Clock::duration::zero();
  Refill(now);
  const double size = static_cast<double>(config_.size);
  // More than the bucket holds: goes when the bucket is full.
  const double needed = std::min(static_cast<double>(tokens), size) - burst_;
  if (needed <= tokens_) return Clock::duration::zero();
  const double missing_ms = (needed - tokens_) * static_cast<double>(config_.refill_time_ms) / size;
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(std::max(missing_ms, 0.001)));
}

void TokenBucket::Take(uint64_t tokens) {
  if (!limits()) return;
  double amount = static_cast<double>(tokens);
  const double from_burst = std::min(burst_, amount);
  burst_ -= from_burst;
  tokens_ -= amount - from_burst;
}

RateLimiter::RateLimiter(const RateLimiterConfig& config, Clock::time_point now)
    : bandwidth_(config.bandwidth.value_or(TokenBucketConfig{}), now),
      ops_(config.ops.value_or(TokenBucketConfig{}), now) {}

RateLimiter::Clock::duration RateLimiter::TryTake(uint64_t bytes, Clock::time_point now) {
  const Clock::duration wait = std::max(bandwidth_.WaitFor(bytes, now), ops_.WaitFor(1, now));
  if (wait != Clock::duration::zero()) return wait;
  bandwidth_.Take(bytes);
  ops_.Take(1);
  return wait;
}

}  // namespace ember
