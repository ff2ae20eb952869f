// Firecracker's rate limiter: two token buckets, one counting bytes
// (bandwidth) and one counting requests (ops). Each bucket holds up to
// `size` tokens, refills at size per refill_time, and may start with a
// one_time_burst that is spent first and never refilled. A request takes
// its tokens from both buckets or waits; one bigger than a whole bucket
// goes through when the bucket is full and leaves it in debt, so it is
// slowed, not starved.
//
// Thread-safety: none; the device serialises use (its worker, and PATCH
// under the device's lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "config/vm_config.h"

namespace ember {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TokenBucket(const TokenBucketConfig& config, Clock::time_point now = Clock::now());

  bool limits() const { return config_.size != 0 && config_.refill_time_ms != 0; }
  // How long until `tokens` could be taken (zero: now).
  Clock::duration WaitFor(uint64_t tokens, Clock::time_point now);
  // Takes `tokens`; call only after WaitFor gave zero.
  void Take(uint64_t tokens);

 private:
  void Refill(Clock::time_point now);

  TokenBucketConfig config_;
  double tokens_;  // may go below zero: a request bigger than the bucket
  double burst_;
  Clock::time_point last_;
};

class RateLimiter {
 public:
  using Clock = TokenBucket::Clock;

  explicit RateLimiter(const RateLimiterConfig& config = {}, Clock::time_point now = Clock::now());

  bool limits() const { return bandwidth_.limits() || ops_.limits(); }
  // Zero when a request of `bytes` may go now (and its tokens are taken);
  // otherwise how long to wait before asking again.
  Clock::duration TryTake(uint64_t bytes, Clock::time_point now = Clock::now());

 private:
  TokenBucket bandwidth_;
  TokenBucket ops_;
};

}  // namespace ember
