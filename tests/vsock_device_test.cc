// virtio-vsock at the device level: rings written by hand into real guest
// memory, the device's own worker, and real Unix sockets on the host side.
// What a hostile driver sends (wrong CIDs, lying lengths, unknown ops,
// data beyond its credit, floods of REQUESTs, broken rings) is dropped or
// answered with RST and counted, and memory stays bounded.
#include "devices/virtio/vsock_device.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "arch/x86_64/e820.h"
#include "base/metrics.h"
#include "tests/hand_rings.h"
#include "tests/test_util.h"

namespace ember {
namespace {

using testing::Desc;
using testing::kDescNext;
using testing::kDescWrite;
using vsock::Op;
using vsock::PacketHeader;

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kGuestCid = 3;
constexpr uint64_t kRx = 0x100000;  // receive buffers, 4 KiB apart
constexpr uint64_t kTx = 0x200000;  // transmit packets, 0x20000 apart
constexpr uint32_t kGuestPort = 1234;

TEST(VsockConnectLineTest, ConnectAndADecimalPortAsFirecrackerReadsThem) {
  EXPECT_EQ(ParseVsockConnectLine("CONNECT 1024"), 1024u);
  // What Firecracker also takes: any case, more whitespace, a '\r', more words.
  EXPECT_EQ(ParseVsockConnectLine("connect 1024"), 1024u);
  EXPECT_EQ(ParseVsockConnectLine("  Connect\t1024\r"), 1024u);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT 1024 extra"), 1024u);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT 4294967295"), 4294967295u);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT 4294967296"), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT "), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT -1"), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine("CONNECT 12a"), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine("CONNECTX 1024"), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine("OPEN 1024"), std::nullopt);
  EXPECT_EQ(ParseVsockConnectLine(""), std::nullopt);
}

// What a host socket receives until the stream ends.
size_t BytesUntilEof(int fd) {
  size_t total = 0;
  char chunk[65536];
  for (ssize_t n; (n = recv(fd, chunk, sizeof(chunk), 0)) > 0;) total += static_cast<size_t>(n);
  return total;
}

class VsockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::default_logger();  // made on the main thread, not in a filtered worker
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(4 << 20));
    ASSERT_TRUE(memory.ok());
    memory_.emplace(std::move(*memory));
    rings_.emplace(*memory_, 3, kQueueSize);
    uds_ = dir_.File("v.sock");
    Result<std::shared_ptr<VsockDevice>> device =
        VsockDevice::Create({kGuestCid, uds_, kQueueSize});
    ASSERT_TRUE(device.ok()) << device.status().message();
    device_ = *device;
    ASSERT_TRUE(
        device_->Activate(rings_->MakeActivation(kVirtioFeatureVersion1, [this] { ++resets_; }))
            .ok());
  }
  void TearDown() override {
    if (device_) device_->Reset();
  }

  PacketHeader Header(Op op, uint32_t dst_port, uint32_t len = 0) {
    PacketHeader header{};
    header.src_cid = kGuestCid;
    header.dst_cid = vsock::kHostCid;
    header.src_port = kGuestPort;
    header.dst_port = dst_port;
    header.len = len;
    header.type = vsock::kTypeStream;
    header.op = static_cast<uint16_t>(op);
    header.buf_alloc = 64 * 1024;
    return header;
  }
  // Makes one packet available as a single descriptor, without waiting.
  void Post(const PacketHeader& header, const std::string& payload = "",
            uint32_t descriptor_length = 0) {
    const uint64_t at = kTx + (next_tx_ % kQueueSize) * 0x20000;
    EXPECT_TRUE(memory_->WriteObject(at, header).ok());
    EXPECT_TRUE(memory_
                    ->Write(at + sizeof(header),
                            {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()})
                    .ok());
    const uint32_t length = descriptor_length != 0
                                ? descriptor_length
                                : static_cast<uint32_t>(sizeof(header) + payload.size());
    const uint16_t index = static_cast<uint16_t>(next_tx_++ % kQueueSize);
    rings_->PutDesc(1, index, {at, length, 0, 0});
    rings_->Publish(1, index);
  }
  // Sends one packet; returns the used length (0).
  int64_t Send(const PacketHeader& header, const std::string& payload = "",
               uint32_t descriptor_length = 0) {
    Post(header, payload, descriptor_length);
    return rings_->WaitUsed(1);
  }
  // Posts receive buffer `count` times (4 KiB each).
  void PostRx(int count = 1) {
    for (int i = 0; i < count; ++i) {
      const uint16_t index = static_cast<uint16_t>(next_rx_++ % kQueueSize);
      rings_->PutDesc(0, index, {kRx + index * 0x1000, 0x1000, kDescWrite, 0});
      rings_->Publish(0, index);
    }
  }
  // The next packet the device put in a receive buffer (op kInvalid if none came).
  PacketHeader Received(int seconds = 5) {
    auto [id, length] = rings_->WaitUsedEntry(0, seconds);
    if (id < 0 || length < static_cast<int64_t>(sizeof(PacketHeader))) return {};
    return rings_->Get<PacketHeader>(kRx + static_cast<uint64_t>(id) * 0x1000);
  }
  int Listen(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(fd, 4), 0);
    return fd;
  }

  testing::TempDir dir_;
  std::string uds_;
  std::optional<GuestMemory> memory_;
  std::optional<testing::HandRings> rings_;
  std::shared_ptr<VsockDevice> device_;
  std::atomic<int> resets_{0};
  uint32_t next_tx_ = 0, next_rx_ = 0;
};

TEST_F(VsockDeviceTest, ConfigSpaceHoldsTheGuestCid) {
  uint8_t config[8] = {};
  device_->ReadConfig(0, config);
  uint64_t cid;
  std::memcpy(&cid, config, sizeof(cid));
  EXPECT_EQ(cid, kGuestCid);
  EXPECT_EQ(device_->device_type(), 19u);
  EXPECT_EQ(device_->queue_count(), 3);
}

TEST_F(VsockDeviceTest, HostilePacketsAreDroppedOrReset) {
  Metrics& metrics = GlobalMetrics();
  const uint64_t malformed = metrics.vsock_tx_malformed_packets.Read();
  PostRx(8);
  // Spoofed source CID and a destination other than the host: dropped, no answer.
  PacketHeader spoofed = Header(Op::kRequest, 5000);
  spoofed.src_cid = 7;
  EXPECT_EQ(Send(spoofed), 0);
  PacketHeader elsewhere = Header(Op::kRequest, 5000);
  elsewhere.dst_cid = 9;
  EXPECT_EQ(Send(elsewhere), 0);
  // A length beyond the descriptor, a packet shorter than its header.
  EXPECT_EQ(Send(Header(Op::kRw, 5000, 4000), "short"), 0);
  EXPECT_EQ(Send(Header(Op::kRw, 5000), "", 20), 0);
  device_->Sync();
  EXPECT_EQ(metrics.vsock_tx_malformed_packets.Read(), malformed + 4);
  EXPECT_EQ(rings_->used_index(0), 0) << "nothing is answered to those";
  // A REQUEST to a port nobody listens on, data for a stream that does not
  // exist, an unknown op, a non-stream type: RST each.
  EXPECT_EQ(Send(Header(Op::kRequest, 5000)), 0);
  EXPECT_EQ(Received().op, static_cast<uint16_t>(Op::kRst));
  EXPECT_EQ(Send(Header(Op::kRw, 5001, 3), "abc"), 0);
  PacketHeader rst = Received();
  EXPECT_EQ(rst.op, static_cast<uint16_t>(Op::kRst));
  EXPECT_EQ(rst.src_port, 5001u);
  EXPECT_EQ(rst.dst_port, kGuestPort);
  EXPECT_EQ(rst.dst_cid, kGuestCid);
  PacketHeader unknown = Header(Op::kRequest, 5002);
  unknown.op = 99;
  EXPECT_EQ(Send(unknown), 0);
  EXPECT_EQ(Received().op, static_cast<uint16_t>(Op::kRst));
  PacketHeader seqpacket = Header(Op::kRequest, 5003);
  seqpacket.type = 2;
  EXPECT_EQ(Send(seqpacket), 0);
  EXPECT_EQ(Received().op, static_cast<uint16_t>(Op::kRst));
  // A RST for nothing is not answered.
  EXPECT_EQ(Send(Header(Op::kRst, 5004)), 0);
  device_->Sync();
  EXPECT_EQ(Received(1).op, static_cast<uint16_t>(Op::kInvalid));
  EXPECT_EQ(resets_.load(), 0);
}

TEST_F(VsockDeviceTest, AFloodOfRequestsKeepsBoundedResets) {
  // No receive buffers: every refused REQUEST owes a RST that must wait.
  const uint64_t dropped = GlobalMetrics().vsock_rst_dropped.Read();
  uint32_t sent = 0;
  while (sent < VsockDevice::kMaxPendingResets + 200) {
    for (int i = 0; i < kQueueSize; ++i) {
      PacketHeader request = Header(Op::kRequest, 6000);
      request.src_port = sent++;
      Post(request);
    }
    ASSERT_TRUE(testing::WaitUntil(
        [&] { return rings_->used_index(1) == static_cast<uint16_t>(next_tx_); }, 5));
  }
  device_->Sync();
  EXPECT_GE(GlobalMetrics().vsock_rst_dropped.Read(), dropped + 200);
  EXPECT_EQ(device_->connection_count(), 0u);
  // Once buffers come, RSTs flow again.
  PostRx(1);
  EXPECT_EQ(Received().op, static_cast<uint16_t>(Op::kRst));
}

TEST_F(VsockDeviceTest, GuestInitiatedStreamAndDataBeyondCredit) {
  int listener = Listen(uds_ + "_5000");
  PostRx(4);
  EXPECT_EQ(Send(Header(Op::kRequest, 5000)), 0);
  PacketHeader response = Received();
  ASSERT_EQ(response.op, static_cast<uint16_t>(Op::kResponse));
  EXPECT_EQ(response.buf_alloc, VsockConnection::kBufferBytes);
  int host = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(host, 0);
  EXPECT_EQ(Send(Header(Op::kRw, 5000, 5), "hello"), 0);
  char buffer[16] = {};
  ASSERT_EQ(recv(host, buffer, sizeof(buffer), 0), 5);
  EXPECT_STREQ(buffer, "hello");
  // The host stops reading; the guest sends far beyond the 256 KiB it was
  // given: the stream is reset and its socket closed.
  const std::string block(60000, 'x');
  bool reset = false;
  for (int i = 0; i < 40 && !reset; ++i) {
    Send(Header(Op::kRw, 5000, static_cast<uint32_t>(block.size())), block);
    device_->Sync();
    reset = device_->connection_count() == 0;
  }
  EXPECT_TRUE(reset) << "the stream survived data beyond its credit";
  bool saw_rst = false;
  for (int i = 0; i < 3 && !saw_rst; ++i)
    saw_rst = Received(2).op == static_cast<uint16_t>(Op::kRst);
  EXPECT_TRUE(saw_rst);
  // The host gets what was within the credit, then EOF.
  const size_t total = BytesUntilEof(host);
  EXPECT_LE(total, 5 + 40 * block.size());
  close(host);
  close(listener);
}

TEST_F(VsockDeviceTest, AQueueNeverMadeReadyIsRefusedAtActivation) {
  device_->Reset();
  Activation activation = rings_->MakeActivation(kVirtioFeatureVersion1);
  std::vector<VirtQueueState> queues(activation.queues.begin(), activation.queues.end());
  queues[1].ready = false;
  queues[1].used_address = 0xf0000000;  // never checked: the driver did not ready it
  activation.queues = queues;
  Status status = device_->Activate(activation);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("queue 1 was not made ready"), std::string::npos)
      << status.message();
}

TEST_F(VsockDeviceTest, AHalfWrittenConnectLineDoesNotSpin) {
  int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, uds_.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(send(client, "CONNECT 5", 9, 0), 9);
  device_->Sync();
  // A worker that kept finding the socket readable would burn this time.
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  getrusage(RUSAGE_SELF, &after);
  const auto cpu_us = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000ll + r.ru_utime.tv_usec +
           r.ru_stime.tv_usec;
  };
  EXPECT_LT(cpu_us(after) - cpu_us(before), 100000) << "the worker spins on a partial line";
  close(client);
}

TEST_F(VsockDeviceTest, TheGuestsLastBytesReachASlowHostAfterItCloses) {
  int listener = Listen(uds_ + "_5000");
  PostRx(6);
  EXPECT_EQ(Send(Header(Op::kRequest, 5000)), 0);
  ASSERT_EQ(Received().op, static_cast<uint16_t>(Op::kResponse));
  int host = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(host, 0);
  // More than the socket takes while the host does not read, then close.
  const std::string block(60000, 'z');
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Send(Header(Op::kRw, 5000, static_cast<uint32_t>(block.size())), block), 0);
  }
  PacketHeader shutdown = Header(Op::kShutdown, 5000);
  shutdown.flags = vsock::kShutdownBoth;
  EXPECT_EQ(Send(shutdown), 0);
  device_->Sync();
  EXPECT_EQ(device_->connection_count(), 1u) << "dropped while it still had the guest's data";
  const size_t total = BytesUntilEof(host);
  EXPECT_EQ(total, 4 * block.size());
  // Then RST (credit updates for what the host took may come first).
  bool saw_rst = false;
  for (int i = 0; i < 4 && !saw_rst; ++i)
    saw_rst = Received(2).op == static_cast<uint16_t>(Op::kRst);
  EXPECT_TRUE(saw_rst);
  close(host);
  close(listener);
}

TEST_F(VsockDeviceTest, BrokenRingAsksForAReset) {
  rings_->SetAvailIndex(1, 1000);  // far more entries than the queue holds
  EXPECT_TRUE(testing::WaitUntil([&] { return resets_.load() == 1; }, 5));
}

}  // namespace
}  // namespace ember
