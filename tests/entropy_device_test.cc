// virtio-rng at the device level: rings written by hand into real guest
// memory and the device's own worker thread, filling requests from the
// host's getrandom. Hostile chains come back empty and counted; a rate
// limiter holds requests back until its buckets refill.
#include "devices/virtio/entropy_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "arch/x86_64/e820.h"
#include "jail/seccomp_filters.h"
#include "tests/hand_rings.h"
#include "tests/test_util.h"

namespace ember {
namespace {

using testing::Desc;
using testing::kDescNext;
using testing::kDescWrite;

constexpr uint16_t kQueueSize = 32;
constexpr uint64_t kRing = 0x10000;  // descriptors; avail +0x1000, used +0x2000
constexpr uint64_t kBuffers = 0x40000;
constexpr uint64_t kOutsideRam = 0x7fff0000;

// A used entry: {chain head, bytes written}.
std::pair<int64_t, int64_t> Used(int64_t head, int64_t written) { return {head, written}; }

bool DeviceFilterAllowsGetrandom() {
  const std::vector<SyscallRule>& rules = FilterRules(ThreadKind::kDevice);
  return std::any_of(rules.begin(), rules.end(), [](const SyscallRule& rule) {
    return rule.syscall == SYS_getrandom && rule.fail_with == 0 && rule.arguments.empty();
  });
}

// The worker calls getrandom: its filter must let it, or ember exits 148
// at the guest's first request.
TEST(EntropyDeviceSeccompTest, TheDeviceWorkersFilterAllowsGetrandom) {
  EXPECT_TRUE(DeviceFilterAllowsGetrandom())
      << "jail/seccomp_filters.cc DeviceRules() needs "
         "{SCMP_SYS(getrandom), {}, \"bytes for a virtio-rng driver\"}";
}

class EntropyDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::default_logger();  // made on the main thread, not in a filtered worker
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(1 << 20));
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(*memory));
    rings_.emplace(*memory_, 1, kQueueSize, kRing);
  }
  void TearDown() override {
    if (device_) device_->Reset();
  }

  // Creates and activates the device with `options` (queue size kQueueSize).
  void Start(EntropyOptions options = {}, uint64_t features = kVirtioFeatureVersion1) {
    options.queue_size = kQueueSize;
    Result<std::shared_ptr<EntropyDevice>> device = EntropyDevice::Create(std::move(options));
    ASSERT_TRUE(device.ok()) << device.status().message();
    device_ = *device;
    Activation activation = rings_->MakeActivation(features, [this] { ++resets_; });
    interrupt_fd_ = activation.interrupt_fd;
    ASSERT_TRUE(device_->Activate(activation).ok());
  }

  void PutDesc(uint16_t index, Desc desc) { rings_->PutDesc(0, index, desc); }
  void Publish(uint16_t head) { rings_->Publish(0, head); }
  std::pair<int64_t, int64_t> WaitUsedEntry() { return rings_->WaitUsedEntry(0); }
  int64_t WaitUsed() { return rings_->WaitUsed(0); }
  std::vector<uint8_t> Bytes(uint64_t address, size_t length) {
    std::vector<uint8_t> bytes(length);
    EXPECT_TRUE(memory_->Read(address, bytes).ok());
    return bytes;
  }
  static bool AllZero(const std::vector<uint8_t>& bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
  }
  // Whether the device raised its interrupt since the last call.
  bool TakeInterrupt() {
    uint64_t count = 0;
    return read(interrupt_fd_, &count, sizeof(count)) == sizeof(count) && count > 0;
  }

  std::optional<GuestMemory> memory_;
  std::optional<testing::HandRings> rings_;
  std::shared_ptr<EntropyDevice> device_;
  int interrupt_fd_ = -1;
  int resets_ = 0;
};

TEST_F(EntropyDeviceTest, IdentityFeaturesAndAnEmptyConfigSpace) {
  Start();
  EXPECT_EQ(device_->device_type(), 4u);
  EXPECT_EQ(device_->queue_count(), 1);
  EXPECT_EQ(device_->max_queue_size(), kQueueSize);
  EXPECT_EQ(device_->device_features(), kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx);
  std::vector<uint8_t> config(8, 0xaa);
  device_->ReadConfig(0, config);
  EXPECT_TRUE(AllZero(config));
  EXPECT_EQ(EntropyOptions{}.queue_size, 256);  // Firecracker's
}

TEST_F(EntropyDeviceTest, CreateRefusesAQueueSizeThatIsNotAPowerOfTwo) {
  for (uint16_t size : {0, 100}) {
    EntropyOptions options;
    options.queue_size = size;
    Result<std::shared_ptr<EntropyDevice>> device = EntropyDevice::Create(std::move(options));
    ASSERT_FALSE(device.ok());
    EXPECT_NE(device.status().message().find("queue_size"), std::string::npos);
  }
}

TEST_F(EntropyDeviceTest, ARequestGetsItsBytesAndTwoRequestsDiffer) {
  Start();
  Metrics& metrics = GlobalMetrics();
  const uint64_t bytes = metrics.rng_bytes.Read();
  const uint64_t events = metrics.rng_event_count.Read();
  PutDesc(0, {kBuffers, 256, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsedEntry(), Used(0, 256));
  PutDesc(1, {kBuffers + 0x1000, 256, kDescWrite, 0});
  Publish(1);
  EXPECT_EQ(WaitUsedEntry(), Used(1, 256));
  const std::vector<uint8_t> first = Bytes(kBuffers, 256);
  const std::vector<uint8_t> second = Bytes(kBuffers + 0x1000, 256);
  EXPECT_FALSE(AllZero(first));
  EXPECT_FALSE(AllZero(second));
  EXPECT_NE(first, second);
  // Nothing past the buffer.
  EXPECT_TRUE(AllZero(Bytes(kBuffers + 256, 256)));
  EXPECT_EQ(metrics.rng_bytes.Read(), bytes + 512);
  EXPECT_EQ(metrics.rng_event_count.Read(), events + 2);
  device_->Sync();
  EXPECT_TRUE(TakeInterrupt());
}

TEST_F(EntropyDeviceTest, EveryDescriptorOfAChainIsFilled) {
  Start();
  PutDesc(0, {kBuffers, 16, kDescWrite | kDescNext, 1});
  PutDesc(1, {kBuffers + 0x1000, 32, kDescWrite | kDescNext, 2});
  PutDesc(2, {kBuffers + 0x2000, 64, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsedEntry(), Used(0, 112));
  EXPECT_FALSE(AllZero(Bytes(kBuffers, 16)));
  EXPECT_FALSE(AllZero(Bytes(kBuffers + 0x1000, 32)));
  EXPECT_FALSE(AllZero(Bytes(kBuffers + 0x2000, 64)));
  EXPECT_TRUE(AllZero(Bytes(kBuffers + 16, 16)));
}

TEST_F(EntropyDeviceTest, HostileChainsComeBackEmptyAndCounted) {
  Start();
  Metrics& metrics = GlobalMetrics();
  const uint64_t fails = metrics.rng_event_fails.Read();
  const uint64_t bytes = metrics.rng_bytes.Read();
  // A buffer the device may not write, alone and after a writable one.
  PutDesc(0, {kBuffers, 64, 0, 0});
  Publish(0);
  EXPECT_EQ(WaitUsedEntry(), Used(0, 0));
  PutDesc(1, {kBuffers + 0x1000, 64, kDescWrite | kDescNext, 2});
  PutDesc(2, {kBuffers + 0x2000, 64, 0, 0});
  Publish(1);
  EXPECT_EQ(WaitUsedEntry(), Used(1, 0));
  // Outside guest RAM; a loop; a link past the table.
  PutDesc(3, {kOutsideRam, 64, kDescWrite, 0});
  Publish(3);
  EXPECT_EQ(WaitUsedEntry(), Used(3, 0));
  PutDesc(4, {kBuffers, 64, kDescWrite | kDescNext, 5});
  PutDesc(5, {kBuffers + 64, 64, kDescWrite | kDescNext, 4});
  Publish(4);
  EXPECT_EQ(WaitUsedEntry(), Used(4, 0));
  PutDesc(6, {kBuffers, 64, kDescWrite | kDescNext, 1000});
  Publish(6);
  EXPECT_EQ(WaitUsedEntry(), Used(6, 0));
  EXPECT_TRUE(AllZero(Bytes(kBuffers, 0x3000)));
  EXPECT_EQ(metrics.rng_event_fails.Read(), fails + 5);
  // An empty request is answered emptily, not a failure; the device goes on.
  PutDesc(7, {0, 0, kDescWrite, 0});
  Publish(7);
  EXPECT_EQ(WaitUsedEntry(), Used(7, 0));
  PutDesc(8, {kBuffers, 32, kDescWrite, 0});
  Publish(8);
  EXPECT_EQ(WaitUsedEntry(), Used(8, 32));
  EXPECT_EQ(metrics.rng_event_fails.Read(), fails + 5);
  EXPECT_EQ(metrics.rng_bytes.Read(), bytes + 32);
  EXPECT_EQ(resets_, 0);
}

TEST_F(EntropyDeviceTest, AChainIsServedAtMost64KiB) {
  Start();
  // One buffer longer than the bound: the first 64 KiB are filled.
  PutDesc(0, {kBuffers, 100 * 1024, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsed(), 65536);
  EXPECT_FALSE(AllZero(Bytes(kBuffers + 65536 - 64, 64)));
  EXPECT_TRUE(AllZero(Bytes(kBuffers + 65536, 100 * 1024 - 65536)));
  // Twenty overlapping 4 KiB descriptors claim 80 KiB of one page.
  for (uint16_t i = 0; i < 20; ++i) {
    PutDesc(1 + i, {kBuffers + 0x40000, 4096,
                    static_cast<uint16_t>(i < 19 ? kDescWrite | kDescNext : kDescWrite),
                    static_cast<uint16_t>(2 + i)});
  }
  Publish(1);
  EXPECT_EQ(WaitUsed(), 65536);
}

TEST_F(EntropyDeviceTest, AFailedGetrandomReturnsTheRequestEmpty) {
  EntropyOptions options;
  options.random = [](std::span<uint8_t>) {
    errno = EIO;
    return false;
  };
  Start(std::move(options));
  Metrics& metrics = GlobalMetrics();
  const uint64_t host_fails = metrics.rng_host_fails.Read();
  const uint64_t fails = metrics.rng_event_fails.Read();
  PutDesc(0, {kBuffers, 64, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsed(), 0);
  EXPECT_TRUE(AllZero(Bytes(kBuffers, 64)));
  EXPECT_EQ(metrics.rng_host_fails.Read(), host_fails + 1);
  EXPECT_EQ(metrics.rng_event_fails.Read(), fails + 1);
}

TEST_F(EntropyDeviceTest, TheHostsGetrandomFillsLargeBuffers) {
  std::vector<uint8_t> bytes(EntropyDevice::kMaxBytesPerRequest, 0);
  ASSERT_TRUE(HostGetRandom(bytes));
  EXPECT_FALSE(AllZero(std::vector<uint8_t>(bytes.end() - 64, bytes.end())));
}

TEST_F(EntropyDeviceTest, TheRateLimiterHoldsARequestUntilItsBucketRefills) {
  EntropyOptions options;
  // 1000 bytes per 200 ms, the bucket full at the start.
  options.rate_limiter.bandwidth = TokenBucketConfig{1000, 0, 200};
  Start(std::move(options));
  Metrics& metrics = GlobalMetrics();
  const uint64_t throttled = metrics.rng_rate_limiter_throttled.Read();
  const uint64_t limiter_events = metrics.rng_rate_limiter_events.Read();
  PutDesc(0, {kBuffers, 1000, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsed(), 1000);
  // The bucket is empty: the second request waits (it is not lost).
  PutDesc(1, {kBuffers + 0x1000, 1000, kDescWrite, 0});
  Publish(1);
  device_->Sync();
  EXPECT_EQ(rings_->used_index(0), 1);
  EXPECT_EQ(metrics.rng_rate_limiter_throttled.Read(), throttled + 1);
  // A kick meanwhile does not serve it, nor ask the limiter again.
  rings_->SetAvailIndex(0, 2);
  device_->Sync();
  EXPECT_EQ(rings_->used_index(0), 1);
  EXPECT_EQ(metrics.rng_rate_limiter_throttled.Read(), throttled + 1);
  // The limiter's timer resumes it.
  EXPECT_EQ(WaitUsedEntry(), Used(1, 1000));
  EXPECT_FALSE(AllZero(Bytes(kBuffers + 0x1000, 1000)));
  EXPECT_GE(metrics.rng_rate_limiter_events.Read(), limiter_events + 2);
}

TEST_F(EntropyDeviceTest, TheOpsBucketCountsRequests) {
  EntropyOptions options;
  options.rate_limiter.ops = TokenBucketConfig{1, 0, 100};  // one request per 100 ms
  Start(std::move(options));
  for (uint16_t i = 0; i < 3; ++i) PutDesc(i, {kBuffers + 0x1000ull * i, 8, kDescWrite, 0});
  for (uint16_t i = 0; i < 3; ++i) Publish(i);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(WaitUsedEntry(), Used(i, 8));
  }
}

TEST_F(EntropyDeviceTest, ResetThenActivateAgainServesRequests) {
  Start();
  PutDesc(0, {kBuffers, 32, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsed(), 32);
  device_->Reset();
  // Posted while the device is reset: served once the driver is back.
  PutDesc(1, {kBuffers + 0x1000, 48, kDescWrite, 0});
  Publish(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(rings_->used_index(0), 1);
  ASSERT_TRUE(device_->Activate(rings_->MakeActivation(kVirtioFeatureVersion1)).ok());
  EXPECT_EQ(WaitUsedEntry(), Used(1, 48));
  PutDesc(2, {kBuffers + 0x2000, 16, kDescWrite, 0});
  Publish(2);
  EXPECT_EQ(WaitUsedEntry(), Used(2, 16));
}

TEST_F(EntropyDeviceTest, AQueueNeverMadeReadyIsRefusedAndCounted) {
  Start();
  device_->Reset();
  const uint64_t fails = GlobalMetrics().rng_activate_fails.Read();
  std::vector<VirtQueueState> states = {{kQueueSize, false, kRing, kRing + 0x1000, kRing + 0x2000}};
  Activation template_activation = rings_->MakeActivation(kVirtioFeatureVersion1);
  Activation activation{kVirtioFeatureVersion1,
                        *memory_,
                        states,
                        template_activation.kick_fds,
                        template_activation.interrupt_fd,
                        template_activation.needs_reset};
  EXPECT_FALSE(device_->Activate(activation).ok());
  EXPECT_EQ(GlobalMetrics().rng_activate_fails.Read(), fails + 1);
}

TEST_F(EntropyDeviceTest, BrokenRingAsksForAReset) {
  Start();
  rings_->SetAvailIndex(0, 1000);  // far more than the queue holds
  EXPECT_TRUE(testing::WaitUntil([&] { return resets_ == 1; }, 5));
}

TEST_F(EntropyDeviceTest, WithEventIdxTheDriversUsedEventDecidesInterrupts) {
  Start({}, kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx);
  const uint64_t used_event = kRing + 0x1000 + 4 + 2 * kQueueSize;
  const uint64_t avail_event = kRing + 0x2000 + 4 + 8 * kQueueSize;
  PutDesc(0, {kBuffers, 8, kDescWrite, 0});
  Publish(0);
  EXPECT_EQ(WaitUsed(), 8);
  device_->Sync();
  EXPECT_TRUE(TakeInterrupt());  // used_event 0: the first completion
  // The device asked for a kick at the next entry.
  EXPECT_EQ(rings_->Get<uint16_t>(avail_event), 1);
  // The driver wants an interrupt only after its 5th used entry.
  ASSERT_TRUE(memory_->WriteObject<uint16_t>(used_event, 4).ok());
  PutDesc(1, {kBuffers + 0x1000, 8, kDescWrite, 0});
  Publish(1);
  EXPECT_EQ(WaitUsed(), 8);
  device_->Sync();
  EXPECT_FALSE(TakeInterrupt());
  EXPECT_EQ(rings_->Get<uint16_t>(avail_event), 2);
}

}  // namespace
}  // namespace ember
