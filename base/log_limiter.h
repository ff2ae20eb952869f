// A rate limit for log lines that a guest, a client or a backend can cause
// at will (a driver looping resets, a backend that keeps failing): a burst
// of lines, then one per interval. What is held back is counted in
// logger.missed_log_count and said with the next line let through, so the
// log stays readable and bounded without losing the fact that it happened.
#pragma once

#include <cstdint>
#include <mutex>

namespace ember {

class LogLimiter {
 public:
  static constexpr uint32_t kDefaultBurst = 10;
  static constexpr uint64_t kDefaultIntervalNs = 1'000'000'000;

  explicit LogLimiter(uint32_t burst = kDefaultBurst, uint64_t interval_ns = kDefaultIntervalNs);

  // Whether a line may be logged now. When it may, `held_back` is the number
  // of lines refused since the last one let through.
  bool Allow(uint64_t& held_back);

 private:
  const uint32_t burst_;
  const uint64_t interval_ns_;
  std::mutex mutex_;
  uint32_t tokens_;
  uint64_t refilled_at_ns_ = 0;
  uint64_t held_back_ = 0;
};

}  // namespace ember

// SPDLOG_<level>(...) through `limiter`; a line let through after others
// were held back is followed by one that says how many.
#define EMBER_LOG_LIMITED(limiter, SPDLOG_MACRO, ...)                                           \
  do {                                                                                          \
    uint64_t ember_held_back_ = 0;                                                              \
    if ((limiter).Allow(ember_held_back_)) {                                                    \
      SPDLOG_MACRO(__VA_ARGS__);                                                                \
      if (ember_held_back_ != 0) {                                                              \
        SPDLOG_WARN("{} similar lines were held back by the log rate limit", ember_held_back_); \
      }                                                                                         \
    }                                                                                           \
  } while (0)
