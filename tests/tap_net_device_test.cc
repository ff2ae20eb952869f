// virtio-net on a TAP at the device level: rings written by hand into real
// guest memory, the device's own worker thread, and a SOCK_SEQPACKET
// socket pair standing in for the TAP (one message per frame, as a TAP
// reads and writes). Hostile chains are dropped and counted; a frame with
// no buffer posted waits until the driver posts one.
#include "devices/virtio/tap_net_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "arch/x86_64/e820.h"
#include "base/metrics.h"
#include "devices/tap.h"
#include "tests/hand_rings.h"
#include "tests/test_util.h"

namespace ember {
namespace {

constexpr uint16_t kQueueSize = 8;
constexpr uint16_t kNext = testing::kDescNext, kWrite = testing::kDescWrite;
// Queue 0 (receive) and 1 (transmit): descriptor tables, avail and used rings.
constexpr uint64_t kRing[2] = {0x10000, 0x20000};
constexpr uint64_t kBuffers = 0x40000;

class TapNetDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::default_logger();  // made on the main thread, not in a filtered worker
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(1 << 20));
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(*memory));
    rings_.emplace(*memory_, 2, kQueueSize, kRing[0]);
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
    host_.reset(pair[0]);
    TapNetOptions options;
    options.iface_id = "eth0";
    options.tap_name = "test";
    options.queue_size = kQueueSize;
    Result<std::shared_ptr<TapNetDevice>> device =
        TapNetDevice::Create(std::move(options), UniqueFd(pair[1]));
    ASSERT_TRUE(device.ok()) << device.status().message();
    device_ = *device;
    ASSERT_TRUE(device_->Activate(rings_->MakeActivation(kVirtioFeatureVersion1)).ok());
  }
  void TearDown() override {
    if (device_) device_->Reset();
  }

  void PutDesc(int q, uint16_t index, testing::Desc desc) { rings_->PutDesc(q, index, desc); }
  template <typename T>
  T Get(uint64_t address) {
    return rings_->Get<T>(address);
  }
  void Publish(int q, uint16_t head) { rings_->Publish(q, head); }
  int64_t WaitUsed(int q) { return rings_->WaitUsed(q); }
  // A frame with its 12-byte header, as the TAP hands it over.
  std::string Frame(size_t bytes, char fill) {
    std::string frame(kTapVnetHeaderBytes, '\0');
    frame += std::string(bytes, fill);
    return frame;
  }
  // What the host side of the "TAP" received, or "" within the wait.
  std::string HostReceive(int timeout_ms = 2000) {
    pollfd fd{host_.get(), POLLIN, 0};
    if (poll(&fd, 1, timeout_ms) != 1) return "";
    std::string buffer(70000, '\0');
    ssize_t n = read(host_.get(), buffer.data(), buffer.size());
    return n > 0 ? buffer.substr(0, static_cast<size_t>(n)) : "";
  }

  std::optional<GuestMemory> memory_;
  std::optional<testing::HandRings> rings_;
  UniqueFd host_;
  std::shared_ptr<TapNetDevice> device_;
};

TEST_F(TapNetDeviceTest, TransmitsFramesAndDropsMalformedOnes) {
  const std::string frame = Frame(100, 'a');
  ASSERT_TRUE(
      memory_->Write(kBuffers, {reinterpret_cast<const uint8_t*>(frame.data()), frame.size()})
          .ok());
  // Split across two descriptors: the device gathers them.
  PutDesc(1, 0, {kBuffers, 40, kNext, 1});
  PutDesc(1, 1, {kBuffers + 40, static_cast<uint32_t>(frame.size() - 40), 0, 0});
  Publish(1, 0);
  EXPECT_EQ(WaitUsed(1), 0);
  EXPECT_EQ(HostReceive(), frame);

  const uint64_t malformed = GlobalMetrics().net_tx_malformed_frames.Read();
  // A buffer the device may write, a frame shorter than a header, one
  // outside RAM: each returned, nothing sent.
  PutDesc(1, 2, {kBuffers, 112, kWrite, 0});
  Publish(1, 2);
  EXPECT_EQ(WaitUsed(1), 0);
  PutDesc(1, 3, {kBuffers, 10, 0, 0});
  Publish(1, 3);
  EXPECT_EQ(WaitUsed(1), 0);
  PutDesc(1, 4, {0x7fff0000, 100, 0, 0});
  Publish(1, 4);
  EXPECT_EQ(WaitUsed(1), 0);
  EXPECT_EQ(HostReceive(100), "");
  EXPECT_EQ(GlobalMetrics().net_tx_malformed_frames.Read(), malformed + 3);
}

TEST_F(TapNetDeviceTest, ReceivedFramesWaitForABufferAndBadBuffersAreDropped) {
  const std::string first = Frame(200, 'x');
  ASSERT_EQ(write(host_.get(), first.data(), first.size()), static_cast<ssize_t>(first.size()));
  // No buffer posted: the frame waits (and the worker does not spin: the
  // TAP is muted until the next kick).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Get<uint16_t>(kRing[0] + 0x2002), 0);
  // A buffer the device may not write: dropped, the frame still waits.
  PutDesc(0, 0, {kBuffers, 2048, 0, 0});
  Publish(0, 0);
  EXPECT_EQ(WaitUsed(0), 0);
  // A good buffer: the frame arrives, num_buffers = 1.
  PutDesc(0, 1, {kBuffers + 0x1000, 2048, kWrite, 0});
  Publish(0, 1);
  ASSERT_EQ(WaitUsed(0), static_cast<int64_t>(first.size()));
  EXPECT_EQ(Get<uint16_t>(kBuffers + 0x1000 + 10), 1);
  EXPECT_EQ(Get<uint8_t>(kBuffers + 0x1000 + kTapVnetHeaderBytes), 'x');
  // A frame bigger than the buffer: dropped, the buffer kept for the next.
  const std::string big = Frame(3000, 'y');
  const std::string next = Frame(60, 'z');
  ASSERT_EQ(write(host_.get(), big.data(), big.size()), static_cast<ssize_t>(big.size()));
  ASSERT_EQ(write(host_.get(), next.data(), next.size()), static_cast<ssize_t>(next.size()));
  PutDesc(0, 2, {kBuffers + 0x2000, 2048, kWrite, 0});
  Publish(0, 2);
  ASSERT_EQ(WaitUsed(0), static_cast<int64_t>(next.size()));
  EXPECT_EQ(Get<uint8_t>(kBuffers + 0x2000 + kTapVnetHeaderBytes), 'z');
}

}  // namespace
}  // namespace ember
