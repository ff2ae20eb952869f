#include "base/log_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/metrics.h"

namespace ember {
namespace {

// A burst, then nothing until an interval passes; the next line let through
// learns how many were held back, and each held-back line is counted.
TEST(LogLimiterTest, LetsABurstThroughThenOnePerIntervalAndCountsTheRest) {
  LogLimiter limiter(3, 50'000'000);  // 3 lines, then one per 50 ms
  const uint64_t missed_before = GlobalMetrics().logger_missed_log_count.Read();
  uint64_t held_back = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Allow(held_back));
    EXPECT_EQ(held_back, 0u);
  }
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.Allow(held_back));
  EXPECT_EQ(GlobalMetrics().logger_missed_log_count.Read() - missed_before, 1000u);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ASSERT_TRUE(limiter.Allow(held_back));
  EXPECT_EQ(held_back, 1000u);
  EXPECT_FALSE(limiter.Allow(held_back)) << "one interval earned one line";
}

TEST(LogLimiterTest, AGuestLoopLogsABoundedNumberOfLines) {
  LogLimiter limiter;  // the devices' default: 10, then 1 per second
  int logged = 0;
  uint64_t held_back = 0;
  for (int i = 0; i < 1'000'000; ++i) logged += limiter.Allow(held_back) ? 1 : 0;
  EXPECT_LE(logged, 12);  // the burst, and at most a refill or two if this run is slow
  EXPECT_GE(logged, 10);
}

}  // namespace
}  // namespace ember
