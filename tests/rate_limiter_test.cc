// Firecracker's token buckets with time given by the test: how long a
// request waits, the one-time burst, requests bigger than a bucket, and a
// bucket that does not limit.
#include "devices/rate_limiter.h"

#include <gtest/gtest.h>

namespace ember {
namespace {

using std::chrono::milliseconds;
using Clock = RateLimiter::Clock;

double Ms(Clock::duration wait) { return std::chrono::duration<double, std::milli>(wait).count(); }

TEST(RateLimiterTest, BandwidthRefillsAtSizePerRefillTime) {
  const Clock::time_point t0{};
  RateLimiter limiter({TokenBucketConfig{1000, 0, 100}, std::nullopt}, t0);
  EXPECT_EQ(limiter.TryTake(600, t0), Clock::duration::zero());
  // 400 left: 600 more need 200 tokens, 20 ms of refill.
  Clock::duration wait = limiter.TryTake(600, t0);
  EXPECT_NEAR(Ms(wait), 20.0, 0.01);
  EXPECT_NE(limiter.TryTake(600, t0 + milliseconds(19)), Clock::duration::zero());
  EXPECT_EQ(limiter.TryTake(600, t0 + milliseconds(20)), Clock::duration::zero());
}

TEST(RateLimiterTest, OneTimeBurstIsSpentFirstAndNotRefilled) {
  const Clock::time_point t0{};
  RateLimiter limiter({TokenBucketConfig{100, 500, 1000}, std::nullopt}, t0);
  EXPECT_EQ(limiter.TryTake(550, t0), Clock::duration::zero());  // 500 burst + 50
  EXPECT_EQ(limiter.TryTake(50, t0), Clock::duration::zero());
  EXPECT_NE(limiter.TryTake(50, t0), Clock::duration::zero());
  // After a long pause the bucket is full again (100), the burst gone.
  EXPECT_EQ(limiter.TryTake(100, t0 + milliseconds(5000)), Clock::duration::zero());
  EXPECT_NE(limiter.TryTake(1, t0 + milliseconds(5000)), Clock::duration::zero());
}

TEST(RateLimiterTest, RequestsBiggerThanTheBucketGoWhenItIsFullAndLeaveDebt) {
  const Clock::time_point t0{};
  RateLimiter limiter({TokenBucketConfig{100, 0, 100}, std::nullopt}, t0);
  EXPECT_EQ(limiter.TryTake(300, t0), Clock::duration::zero());
  // 200 in debt: the next byte waits for 201 tokens' worth, 201 ms.
  Clock::duration wait = limiter.TryTake(1, t0);
  EXPECT_NEAR(Ms(wait), 201.0, 0.01);
}

TEST(RateLimiterTest, OpsCountRequestsAndBothBucketsMustAgree) {
  const Clock::time_point t0{};
  RateLimiter limiter({TokenBucketConfig{1 << 20, 0, 1000}, TokenBucketConfig{2, 0, 1000}}, t0);
  EXPECT_EQ(limiter.TryTake(10, t0), Clock::duration::zero());
  EXPECT_EQ(limiter.TryTake(10, t0), Clock::duration::zero());
  Clock::duration wait = limiter.TryTake(10, t0);
  EXPECT_NEAR(Ms(wait), 500.0, 0.01);
}

TEST(RateLimiterTest, ZeroSizeOrRefillTimeDoesNotLimit) {
  RateLimiter none;
  EXPECT_FALSE(none.limits());
  RateLimiter zero({TokenBucketConfig{0, 0, 100}, TokenBucketConfig{5, 0, 0}});
  EXPECT_FALSE(zero.limits());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(zero.TryTake(1 << 30), Clock::duration::zero());
}

}  // namespace
}  // namespace ember
