// virtio-net on a TAP at the device level: rings written by hand into real
// guest memory, the device's own worker thread, and a SOCK_SEQPACKET
// socket pair standing in for the TAP (one message per frame, as a TAP
// reads and writes). Hostile chains are dropped and counted; a frame with
// no buffer posted waits until the driver posts one. With MMDS on the
// interface, the guest's ARP and TCP for the MMDS address are answered on
// the receive queue and never reach the TAP.
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
#include "devices/mmds/mmds_store.h"
#include "devices/tap.h"
#include "tests/hand_rings.h"
#include "tests/net_frames.h"
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
    Configure(options);
    Result<std::shared_ptr<TapNetDevice>> device =
        TapNetDevice::Create(std::move(options), UniqueFd(pair[1]));
    ASSERT_TRUE(device.ok()) << device.status().message();
    device_ = *device;
    ASSERT_TRUE(device_->Activate(rings_->MakeActivation(kVirtioFeatureVersion1)).ok());
  }
  void TearDown() override {
    if (device_) device_->Reset();
  }
  virtual void Configure(TapNetOptions&) {}

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

// The same device with MMDS (V1) on the interface. The guest's side: frames
// sent on the transmit queue one per chain, answers read from receive
// buffers the test posts.
class TapNetDeviceMmdsTest : public TapNetDeviceTest {
 protected:
  static constexpr uint64_t kTxBuffers = 0x40000;  // one page per descriptor
  static constexpr uint64_t kRxBuffers = 0x50000;
  static constexpr uint32_t kRxBufferBytes = 2048;

  void Configure(TapNetOptions& options) override {
    Result<std::shared_ptr<MmdsStore>> store = MmdsStore::Create();
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)
                    ->Put(nlohmann::json::parse(R"({"latest":{"meta-data":{"ami-id":"ami-123"}}})"))
                    .ok());
    options.mmds = *store;
  }

  // Sends `frame` behind a virtio-net header whose flags byte is `flags`
  // (with NEEDS_CSUM, csum_start/csum_offset point at the TCP checksum) and
  // waits until the device returns the chain.
  void SendFrame(const std::vector<uint8_t>& frame, uint8_t flags = 0) {
    std::vector<uint8_t> bytes(kTapVnetHeaderBytes, 0);
    bytes[0] = flags;
    if (flags != 0) {
      bytes[6] = 34;  // csum_start: the TCP header
      bytes[8] = 16;  // csum_offset: its checksum field
    }
    bytes.insert(bytes.end(), frame.begin(), frame.end());
    const uint16_t index = tx_sent_++ % kQueueSize;
    ASSERT_TRUE(memory_->Write(kTxBuffers + 0x1000 * index, bytes).ok());
    PutDesc(1, index, {kTxBuffers + 0x1000 * index, static_cast<uint32_t>(bytes.size()), 0, 0});
    Publish(1, index);
    ASSERT_EQ(WaitUsed(1), 0);
  }
  void Send(const testing::GuestSegment& segment, uint8_t flags = 0) {
    SendFrame(testing::Frame(segment), flags);
  }
  void PostRxBuffer() {
    const uint16_t index = rx_posted_++ % kQueueSize;
    PutDesc(0, index, {kRxBuffers + 0x1000 * index, kRxBufferBytes, kWrite, 0});
    Publish(0, index);
  }
  // The next frame the device hands the guest, without its header (whose
  // bytes are checked: no offloads, one buffer); posts a buffer for it if
  // none is waiting. Empty if none comes within `seconds`.
  std::vector<uint8_t> Receive(int seconds = 5) {
    if (rx_posted_ == rx_received_) PostRxBuffer();
    const auto [id, length] = rings_->WaitUsedEntry(0, seconds);
    if (length < 0) return {};
    ++rx_received_;
    EXPECT_GE(length, kTapVnetHeaderBytes);
    std::vector<uint8_t> bytes(static_cast<size_t>(length));
    EXPECT_TRUE(memory_->Read(kRxBuffers + 0x1000 * static_cast<uint64_t>(id), bytes).ok());
    for (size_t i = 0; i < 10; ++i) EXPECT_EQ(bytes[i], 0) << "header byte " << i;
    EXPECT_EQ(Get<uint16_t>(kRxBuffers + 0x1000 * static_cast<uint64_t>(id) + 10), 1);
    return {bytes.begin() + kTapVnetHeaderBytes, bytes.end()};
  }
  testing::Sent ReceiveSegment() {
    const std::vector<uint8_t> frame = Receive();
    testing::Sent sent = testing::Decode(frame);
    EXPECT_TRUE(sent.ip_checksum_ok);
    EXPECT_TRUE(sent.tcp_checksum_ok);
    return sent;
  }
  // Nothing more for the guest for a while.
  void ExpectNothingReceived() {
    if (rx_posted_ == rx_received_) PostRxBuffer();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(rings_->used_index(0), rx_received_);
  }
  const MmdsStackCounters& counters() { return *device_->mmds_counters(); }

  uint16_t tx_sent_ = 0;
  uint16_t rx_posted_ = 0;
  uint16_t rx_received_ = 0;
};

TEST_F(TapNetDeviceMmdsTest, ArpForTheMmdsAddressIsAnsweredAndNeverReachesTheTap) {
  const uint64_t rx_packets = GlobalMetrics().net_rx_packets.Read();
  SendFrame(testing::ArpFrame(1, testing::kMmdsIp));
  const std::vector<uint8_t> reply = Receive();
  ASSERT_EQ(reply.size(), 42u);
  EXPECT_TRUE(std::equal(testing::kGuestMac.begin(), testing::kGuestMac.end(), reply.begin()));
  EXPECT_TRUE(std::equal(MmdsStack::kMac.begin(), MmdsStack::kMac.end(), reply.begin() + 6));
  EXPECT_EQ(testing::Get16(reply, 12), 0x0806);
  EXPECT_EQ(testing::Get16(reply, 20), 2);  // a reply
  EXPECT_TRUE(std::equal(MmdsStack::kMac.begin(), MmdsStack::kMac.end(), reply.begin() + 22));
  EXPECT_EQ(testing::Get32(reply, 28), testing::kMmdsIp);
  EXPECT_EQ(testing::Get32(reply, 38), testing::kGuestIp);
  EXPECT_EQ(HostReceive(100), "");
  // Counted as a received frame, like the TAP's.
  EXPECT_GE(GlobalMetrics().net_rx_packets.Read(), rx_packets + 1);
  EXPECT_EQ(counters().rx_accepted.Read(), 1u);
  EXPECT_EQ(counters().tx_frames.Read(), 1u);
}

TEST_F(TapNetDeviceMmdsTest, ServesAGetOverTcpFromSynToFin) {
  using testing::kAck;
  using testing::kFin;
  using testing::kPsh;
  using testing::kSyn;
  uint32_t guest_seq = 1000;
  Send({.seq = guest_seq, .flags = kSyn, .mss = 1460});
  ++guest_seq;
  const testing::Sent synack = ReceiveSegment();
  ASSERT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.source_ip, testing::kMmdsIp);
  EXPECT_EQ(synack.destination_port, testing::kGuestPort);
  EXPECT_EQ(synack.ack, guest_seq);
  uint32_t server_seq = synack.seq + 1;
  Send({.seq = guest_seq, .ack = server_seq, .flags = kAck});

  const std::string request =
      "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
  Send({.seq = guest_seq, .ack = server_seq, .flags = kAck | kPsh, .payload = request});
  guest_seq += static_cast<uint32_t>(request.size());
  // The response, in order, ACKed as it comes.
  std::string response;
  for (int i = 0; i < 10 && response.find("ami-123") == std::string::npos; ++i) {
    const testing::Sent segment = ReceiveSegment();
    ASSERT_TRUE(segment.flags & kAck);
    ASSERT_EQ(segment.seq, server_seq);
    response += segment.payload;
    server_seq += static_cast<uint32_t>(segment.payload.size());
    if (!segment.payload.empty()) Send({.seq = guest_seq, .ack = server_seq, .flags = kAck});
  }
  EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
  EXPECT_NE(response.find("\r\n\r\nami-123"), std::string::npos) << response;

  // The guest closes; MMDS ACKs and closes too.
  Send({.seq = guest_seq, .ack = server_seq, .flags = kFin | kAck});
  ++guest_seq;
  bool fin = false;
  for (int i = 0; i < 3 && !fin; ++i) {
    const testing::Sent segment = ReceiveSegment();
    EXPECT_EQ(segment.ack, guest_seq);
    fin = segment.flags & kFin;
  }
  ASSERT_TRUE(fin);
  Send({.seq = guest_seq, .ack = server_seq + 1, .flags = kAck});
  EXPECT_TRUE(testing::WaitUntil([&] { return counters().connections_destroyed.Read() == 1; }, 5));
  EXPECT_EQ(counters().connections_created.Read(), 1u);
  EXPECT_EQ(HostReceive(100), "");
}

TEST_F(TapNetDeviceMmdsTest, FramesForOtherAddressesGoToTheTap) {
  const std::vector<uint8_t> syn = testing::Frame(
      {.seq = 1, .flags = testing::kSyn, .destination_ip = net::Ipv4Address(10, 0, 0, 1)});
  SendFrame(syn);
  std::string expected(kTapVnetHeaderBytes, '\0');
  expected.append(syn.begin(), syn.end());
  EXPECT_EQ(HostReceive(), expected);
  const std::vector<uint8_t> arp = testing::ArpFrame(1, net::Ipv4Address(169, 254, 0, 1));
  SendFrame(arp);
  expected.assign(kTapVnetHeaderBytes, '\0');
  expected.append(arp.begin(), arp.end());
  EXPECT_EQ(HostReceive(), expected);
  ExpectNothingReceived();
  EXPECT_EQ(counters().rx_accepted.Read(), 0u);
}

TEST_F(TapNetDeviceMmdsTest, APartialChecksumIsAcceptedWithNeedsCsum) {
  // A checksum field as Linux leaves it with offload: not the final sum.
  auto partial_syn = [](uint16_t port) {
    std::vector<uint8_t> syn =
        testing::Frame({.seq = 5, .flags = testing::kSyn, .source_port = port});
    testing::Put16(syn, 34 + 16, static_cast<uint16_t>(testing::Get16(syn, 34 + 16) ^ 0x5a5a));
    return syn;
  };
  constexpr uint8_t kNeedsCsum = 1;
  // Without NEEDS_CSUM the same checksum is wrong: dropped.
  SendFrame(partial_syn(40001));
  ExpectNothingReceived();
  EXPECT_EQ(counters().rx_bad_checksum.Read(), 1u);
  SendFrame(partial_syn(40002), kNeedsCsum);
  const testing::Sent synack = ReceiveSegment();
  EXPECT_EQ(synack.flags, testing::kSyn | testing::kAck);
  EXPECT_EQ(synack.destination_port, 40002);
  EXPECT_EQ(synack.ack, 6u);
  EXPECT_EQ(HostReceive(100), "");
}

TEST_F(TapNetDeviceMmdsTest, AnAnswerWaitsInTheStackUntilABufferIsPosted) {
  const uint64_t no_buffer = GlobalMetrics().net_no_rx_avail_buffer.Read();
  SendFrame(testing::ArpFrame(1, testing::kMmdsIp));
  Send({.seq = 1000, .flags = testing::kSyn});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rings_->used_index(0), 0);
  EXPECT_GE(GlobalMetrics().net_no_rx_avail_buffer.Read(), no_buffer + 1);
  EXPECT_EQ(counters().tx_frames.Read(), 0u);  // nothing made yet
  // Buffers posted: the ARP reply, then the SYN-ACK.
  EXPECT_EQ(Receive().size(), 42u);
  const testing::Sent synack = ReceiveSegment();
  EXPECT_EQ(synack.flags, testing::kSyn | testing::kAck);
  EXPECT_EQ(synack.ack, 1001u);
}

TEST_F(TapNetDeviceMmdsTest, TheStacksTimerResendsWithoutAnyTraffic) {
  Send({.seq = 1000, .flags = testing::kSyn});
  const testing::Sent first = ReceiveSegment();
  ASSERT_EQ(first.flags, testing::kSyn | testing::kAck);
  // No ACK from the guest: the SYN-ACK comes again after the stack's
  // retransmission timeout, woken by the worker's timer alone.
  const auto sent = std::chrono::steady_clock::now();
  const testing::Sent again = ReceiveSegment();
  EXPECT_EQ(again.flags, testing::kSyn | testing::kAck);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, MmdsStack::kRetransmitTimeout / 2);
}

}  // namespace
}  // namespace ember
