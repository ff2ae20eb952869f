// The MMDS network stack with frames built here (not by the stack's own
// builders), a fake HTTP responder and time given by the test: ARP, the TCP
// handshake and exchange, segmentation by MSS and window, retransmission,
// the connection limit, and hostile frames (bad checksums, truncation).
#include "devices/mmds/mmds_stack.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/net_frames.h"

namespace ember {
namespace {

using Clock = MmdsStack::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

using testing::ArpFrame;
using testing::Decode;
using testing::Frame;
using testing::Get16;
using testing::Get32;
using testing::GuestSegment;
using testing::InternetChecksum;
using testing::kAck;
using testing::kFin;
using testing::kGuestIp;
using testing::kGuestMac;
using testing::kGuestPort;
using testing::kMmdsIp;
using testing::kPsh;
using testing::kRst;
using testing::kSyn;
using testing::PseudoHeader;
using testing::Put16;
using testing::Sent;

// Answers every request that ends with an empty line with `answer`.
class FakeResponder : public MmdsResponder {
 public:
  struct Log {
    std::vector<std::string> requests;
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    bool close = false;
    int responders = 0;
  };
  explicit FakeResponder(Log* log) : log_(log) {}
  std::optional<MmdsHttpExchange> Respond(std::string_view received) override {
    const size_t end = received.find("\r\n\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    log_->requests.emplace_back(received.substr(0, end + 4));
    return MmdsHttpExchange{end + 4, log_->answer, log_->close};
  }

 private:
  Log* log_;
};

constexpr char kRequest[] = "GET /latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";

class MmdsStackTest : public ::testing::Test {
 protected:
  MmdsStackTest()
      : stack_(
            kMmdsIp,
            [this] {
              ++log_.responders;
              return std::make_unique<FakeResponder>(&log_);
            },
            /*isn_seed=*/7) {}

  bool Send(const GuestSegment& segment) { return stack_.HandleGuestFrame(Frame(segment), now_); }

  std::vector<std::vector<uint8_t>> DrainRaw(size_t buffer_size = 2048) {
    std::vector<std::vector<uint8_t>> frames;
    std::vector<uint8_t> buffer(buffer_size);
    while (stack_.HasFrameForGuest(now_)) {
      const size_t n = stack_.WriteNextFrame(buffer, now_);
      if (n == 0) break;
      frames.emplace_back(buffer.begin(), buffer.begin() + n);
    }
    EXPECT_FALSE(stack_.HasFrameForGuest(now_));
    EXPECT_EQ(stack_.WriteNextFrame(buffer, now_), 0u);
    return frames;
  }
  std::vector<Sent> Drain(size_t buffer_size = 2048) {
    std::vector<Sent> sent;
    for (const std::vector<uint8_t>& f : DrainRaw(buffer_size)) {
      sent.push_back(Decode(f));
      EXPECT_TRUE(sent.back().ip_checksum_ok);
      EXPECT_TRUE(sent.back().tcp_checksum_ok);
    }
    return sent;
  }

  // SYN, SYN-ACK, ACK. Returns the stack's first data sequence number.
  uint32_t Connect(uint16_t mss = 1460, uint16_t window = 64000, uint16_t port = kGuestPort) {
    EXPECT_TRUE(Send(
        {.seq = guest_seq_ - 1, .flags = kSyn, .window = window, .mss = mss, .source_port = port}));
    std::vector<Sent> synack = Drain();
    EXPECT_EQ(synack.size(), 1u);
    if (synack.empty()) return 0;
    EXPECT_EQ(synack[0].flags, kSyn | kAck);
    EXPECT_TRUE(Send({.seq = guest_seq_,
                      .ack = synack[0].seq + 1,
                      .flags = kAck,
                      .window = window,
                      .source_port = port}));
    EXPECT_TRUE(Drain().empty());
    return synack[0].seq + 1;
  }

  FakeResponder::Log log_;
  MmdsStack stack_;
  Clock::time_point now_{seconds(1000)};
  uint32_t guest_seq_ = 1001;  // after the SYN at 1000
};

TEST(MmdsStackNetHeadersTest, ChecksumMatchesAKnownIpv4Header) {
  // A textbook header whose checksum field (b861) is right.
  const std::vector<uint8_t> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                       0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(net::ChecksumFinish(net::ChecksumAdd(0, header)), 0);
  std::vector<uint8_t> zeroed = header;
  zeroed[10] = zeroed[11] = 0;
  EXPECT_EQ(net::ChecksumFinish(net::ChecksumAdd(0, zeroed)), 0xb861);
  // An odd length is padded with a zero byte.
  const std::vector<uint8_t> odd = {0x01, 0x02, 0x03};
  EXPECT_EQ(net::ChecksumFinish(net::ChecksumAdd(0, odd)), static_cast<uint16_t>(~0x0402));
}

TEST(MmdsStackNetHeadersTest, MssOptionParsingIsBoundsChecked) {
  bool valid = false;
  const std::vector<uint8_t> good = {1, 1, 2, 4, 0x05, 0xb4, 0};
  EXPECT_EQ(net::FindMssOption(good, valid), 1460);
  EXPECT_TRUE(valid);
  const std::vector<uint8_t> none = {1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(net::FindMssOption(none, valid), std::nullopt);
  EXPECT_TRUE(valid);
  for (const std::vector<uint8_t>& bad : std::vector<std::vector<uint8_t>>{
           {2}, {2, 4, 0x05}, {3, 0}, {3, 1, 0, 0}, {8, 40, 0, 0}, {2, 3, 0x05, 0xb4}}) {
    (void)net::FindMssOption(bad, valid);
    EXPECT_FALSE(valid);
  }
}

TEST_F(MmdsStackTest, ArpRequestForMmdsIsAnsweredWithTheMmdsMac) {
  EXPECT_TRUE(stack_.HandleGuestFrame(ArpFrame(1, kMmdsIp), now_));
  ASSERT_TRUE(stack_.HasFrameForGuest(now_));
  std::vector<std::vector<uint8_t>> frames = DrainRaw();
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<uint8_t>& f = frames[0];
  ASSERT_EQ(f.size(), 42u);
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), f.begin()));
  EXPECT_TRUE(std::equal(MmdsStack::kMac.begin(), MmdsStack::kMac.end(), f.begin() + 6));
  EXPECT_EQ(Get16(f, 12), 0x0806);
  EXPECT_EQ(Get16(f, 14), 1);       // Ethernet
  EXPECT_EQ(Get16(f, 16), 0x0800);  // IPv4
  EXPECT_EQ(f[18], 6);
  EXPECT_EQ(f[19], 4);
  EXPECT_EQ(Get16(f, 20), 2);  // reply
  EXPECT_TRUE(std::equal(MmdsStack::kMac.begin(), MmdsStack::kMac.end(), f.begin() + 22));
  EXPECT_EQ(Get32(f, 28), kMmdsIp);
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), f.begin() + 32));
  EXPECT_EQ(Get32(f, 38), kGuestIp);
  EXPECT_EQ(stack_.counters().rx_accepted.Read(), 1u);
}

TEST_F(MmdsStackTest, OtherArpGoesToTheTapAndArpRepliesToMmdsAreConsumedSilently) {
  EXPECT_FALSE(stack_.HandleGuestFrame(ArpFrame(1, net::Ipv4Address(169, 254, 0, 1)), now_));
  EXPECT_TRUE(stack_.HandleGuestFrame(ArpFrame(2, kMmdsIp), now_));
  std::vector<uint8_t> bad_hardware = ArpFrame(1, kMmdsIp);
  bad_hardware[15] = 6;  // hardware type 6
  EXPECT_TRUE(stack_.HandleGuestFrame(bad_hardware, now_));
  EXPECT_FALSE(stack_.HasFrameForGuest(now_));
  EXPECT_EQ(stack_.counters().rx_unusual.Read(), 1u);
  EXPECT_EQ(stack_.counters().rx_malformed.Read(), 1u);
}

TEST_F(MmdsStackTest, FramesNotForMmdsGoToTheTap) {
  GuestSegment elsewhere{.seq = 1, .flags = kSyn, .destination_ip = net::Ipv4Address(10, 0, 0, 1)};
  EXPECT_FALSE(Send(elsewhere));
  std::vector<uint8_t> ipv6 = Frame({.seq = 1, .flags = kSyn});
  Put16(ipv6, 12, 0x86dd);
  EXPECT_FALSE(stack_.HandleGuestFrame(ipv6, now_));
  // A VLAN tag in front of the IPv4 ethertype: not handled, so not MMDS.
  std::vector<uint8_t> tagged = Frame({.seq = 1, .flags = kSyn});
  tagged.insert(tagged.begin() + 12, {0x81, 0x00, 0x00, 0x05});
  EXPECT_FALSE(stack_.HandleGuestFrame(tagged, now_));
  EXPECT_FALSE(stack_.HandleGuestFrame({}, now_));
  EXPECT_EQ(stack_.connection_count(), 0u);
  EXPECT_FALSE(stack_.HasFrameForGuest(now_));
  EXPECT_EQ(stack_.counters().rx_accepted.Read(), 0u);
}

TEST_F(MmdsStackTest, FullExchangeFromSynToFin) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .window = 64000, .mss = 1460}));
  EXPECT_EQ(stack_.connection_count(), 1u);
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  const Sent& synack = sent[0];
  EXPECT_EQ(synack.destination_mac, kGuestMac);
  EXPECT_EQ(synack.source_mac, MmdsStack::kMac);
  EXPECT_EQ(synack.ttl, 64);
  EXPECT_EQ(synack.source_ip, kMmdsIp);
  EXPECT_EQ(synack.destination_ip, kGuestIp);
  EXPECT_EQ(synack.source_port, 80);
  EXPECT_EQ(synack.destination_port, kGuestPort);
  EXPECT_EQ(synack.flags, kSyn | kAck);
  EXPECT_EQ(synack.ack, 1001u);
  EXPECT_EQ(synack.mss, 1460);
  EXPECT_EQ(synack.window, MmdsStack::kReceiveBufferBytes);
  EXPECT_TRUE(synack.payload.empty());
  const uint32_t isn = synack.seq;

  // The handshake's ACK: nothing to answer.
  EXPECT_TRUE(Send({.seq = 1001, .ack = isn + 1, .flags = kAck}));
  EXPECT_TRUE(Drain().empty());

  const std::string request = kRequest;
  EXPECT_TRUE(Send({.seq = 1001, .ack = isn + 1, .flags = kAck | kPsh, .payload = request}));
  ASSERT_EQ(log_.requests.size(), 1u);
  EXPECT_EQ(log_.requests[0], request);
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, isn + 1);
  EXPECT_EQ(sent[0].ack, 1001 + request.size());
  EXPECT_EQ(sent[0].flags, kAck | kPsh);
  EXPECT_EQ(sent[0].payload, log_.answer);
  EXPECT_EQ(sent[0].window, MmdsStack::kReceiveBufferBytes);  // the request was consumed
  const uint32_t guest_next = 1001 + static_cast<uint32_t>(request.size());
  const uint32_t our_next = isn + 1 + static_cast<uint32_t>(log_.answer.size());
  ASSERT_TRUE(stack_.NextTimeout().has_value());  // the answer is unacknowledged

  // The guest acknowledges and closes; the stack answers with its FIN.
  EXPECT_TRUE(Send({.seq = guest_next, .ack = our_next, .flags = kAck}));
  EXPECT_FALSE(stack_.NextTimeout().has_value());
  EXPECT_TRUE(Send({.seq = guest_next, .ack = our_next, .flags = kAck | kFin}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kAck | kFin);
  EXPECT_EQ(sent[0].seq, our_next);
  EXPECT_EQ(sent[0].ack, guest_next + 1);
  EXPECT_EQ(stack_.connection_count(), 1u);
  EXPECT_TRUE(Send({.seq = guest_next + 1, .ack = our_next + 1, .flags = kAck}));
  EXPECT_EQ(stack_.connection_count(), 0u);
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(stack_.counters().connections_created.Read(), 1u);
  EXPECT_EQ(stack_.counters().connections_destroyed.Read(), 1u);
}

TEST_F(MmdsStackTest, ResponseIsCutIntoMssSegmentsWithinTheGuestWindow) {
  log_.answer.assign(3000, 'x');
  for (size_t i = 0; i < log_.answer.size(); ++i) log_.answer[i] = static_cast<char>('a' + i % 26);
  // No MSS option: 536. The guest's window is 1000 bytes.
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .window = 1000}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].mss, MmdsStack::kDefaultMss);
  const uint32_t first = sent[0].seq + 1;
  EXPECT_TRUE(Send({.seq = 1001, .ack = first, .flags = kAck, .window = 1000}));
  const std::string request = kRequest;
  const uint32_t guest_next = 1001 + static_cast<uint32_t>(request.size());
  EXPECT_TRUE(Send({.seq = 1001, .ack = first, .flags = kAck, .window = 1000, .payload = request}));

  std::string received;
  uint32_t acked = first;
  for (int round = 0; round < 10 && received.size() < log_.answer.size(); ++round) {
    sent = Drain();
    ASSERT_FALSE(sent.empty());
    size_t in_round = 0;
    for (const Sent& s : sent) {
      EXPECT_LE(s.payload.size(), MmdsStack::kDefaultMss);
      EXPECT_EQ(s.seq, first + received.size());
      received += s.payload;
      in_round += s.payload.size();
    }
    EXPECT_LE(in_round, 1000u);  // never past the window
    acked = first + static_cast<uint32_t>(received.size());
    EXPECT_TRUE(Send({.seq = guest_next, .ack = acked, .flags = kAck, .window = 1000}));
  }
  EXPECT_EQ(received, log_.answer);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(MmdsStackTest, CloseAfterTheResponsePutsTheFinOnTheLastSegment) {
  log_.close = true;
  const uint32_t first = Connect();
  const std::string request = kRequest;
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = request}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kAck | kPsh | kFin);
  const uint32_t fin = first + static_cast<uint32_t>(log_.answer.size());
  const uint32_t guest_next = guest_seq_ + static_cast<uint32_t>(request.size());
  // More requests after the close are acknowledged but not served.
  EXPECT_TRUE(Send({.seq = guest_next, .ack = fin + 1, .flags = kAck, .payload = request}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].ack, guest_next + request.size());
  EXPECT_EQ(sent[0].flags, kAck);
  EXPECT_EQ(log_.requests.size(), 1u);
  const uint32_t guest_fin = guest_next + static_cast<uint32_t>(request.size());
  EXPECT_TRUE(Send({.seq = guest_fin, .ack = fin + 1, .flags = kAck | kFin}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kAck);
  EXPECT_EQ(sent[0].ack, guest_fin + 1);
  EXPECT_EQ(sent[0].seq, fin + 1);
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, ResentSynGetsTheSameSynAck) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .mss = 1400}));
  std::vector<Sent> first = Drain();
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .mss = 1400}));
  std::vector<Sent> again = Drain();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq, first[0].seq);
  EXPECT_EQ(again[0].ack, 1001u);
  EXPECT_EQ(again[0].flags, kSyn | kAck);
  EXPECT_EQ(stack_.connection_count(), 1u);
  EXPECT_EQ(log_.responders, 1);
}

TEST_F(MmdsStackTest, ResentAndOutOfOrderDataIsReacknowledgedNotDeliveredTwice) {
  const uint32_t first = Connect();
  const std::string head = "GET / HTTP/1.1\r\n";
  const std::string tail = "Host: x\r\n\r\n";
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = head}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  const uint32_t after_head = guest_seq_ + static_cast<uint32_t>(head.size());
  EXPECT_EQ(sent[0].ack, after_head);
  // The same bytes again, then bytes after a gap: both only re-ACKed.
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = head}));
  EXPECT_TRUE(Send({.seq = after_head + 5, .ack = first, .flags = kAck, .payload = tail}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].ack, after_head);
  EXPECT_TRUE(log_.requests.empty());
  // A resend that overlaps what arrived: only the new part is taken.
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = head + tail}));
  ASSERT_EQ(log_.requests.size(), 1u);
  EXPECT_EQ(log_.requests[0], head + tail);
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].ack, after_head + tail.size());
  EXPECT_EQ(sent[0].payload, log_.answer);
}

TEST_F(MmdsStackTest, BadChecksumsAreConsumedAndDropped) {
  std::vector<uint8_t> bad_ip = Frame({.seq = 1000, .flags = kSyn});
  bad_ip[24] ^= 0x01;
  EXPECT_TRUE(stack_.HandleGuestFrame(bad_ip, now_));
  std::vector<uint8_t> bad_tcp = Frame({.seq = 1000, .flags = kSyn});
  bad_tcp[34 + 16] ^= 0x40;
  EXPECT_TRUE(stack_.HandleGuestFrame(bad_tcp, now_));
  EXPECT_EQ(stack_.counters().rx_bad_checksum.Read(), 2u);
  EXPECT_EQ(stack_.connection_count(), 0u);
  EXPECT_FALSE(stack_.HasFrameForGuest(now_));
  // With checksum offload (NEEDS_CSUM) the TCP checksum is partial: not checked.
  EXPECT_TRUE(stack_.HandleGuestFrame(bad_tcp, now_, /*tcp_checksum_partial=*/true));
  EXPECT_EQ(stack_.connection_count(), 1u);
}

TEST_F(MmdsStackTest, ConnectionLimitRefusesThenEvictsIdleConnections) {
  std::vector<uint32_t> firsts;
  for (uint16_t i = 0; i < MmdsStack::kMaxConnections; ++i) {
    firsts.push_back(Connect(1460, 64000, static_cast<uint16_t>(5000 + i)));
  }
  EXPECT_EQ(stack_.connection_count(), MmdsStack::kMaxConnections);
  // None has been idle long: one more is refused with a RST.
  EXPECT_TRUE(Send({.seq = 77, .flags = kSyn, .source_port = 6000}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].destination_port, 6000);
  EXPECT_EQ(sent[0].flags, kRst | kAck);
  EXPECT_EQ(sent[0].seq, 0u);
  EXPECT_EQ(sent[0].ack, 78u);
  EXPECT_EQ(stack_.counters().connections_refused.Read(), 1u);
  EXPECT_EQ(stack_.connection_count(), MmdsStack::kMaxConnections);

  // All but port 5003 hear from the guest 11 s later; 5003, silent for
  // more than 10 s, makes room.
  now_ += seconds(11);
  for (uint16_t i = 0; i < MmdsStack::kMaxConnections; ++i) {
    if (i == 3) continue;
    EXPECT_TRUE(Send({.seq = guest_seq_,
                      .ack = firsts[i],
                      .flags = kAck,
                      .source_port = static_cast<uint16_t>(5000 + i)}));
  }
  EXPECT_TRUE(Drain().empty());
  EXPECT_TRUE(Send({.seq = 77, .flags = kSyn, .source_port = 6000}));
  EXPECT_EQ(stack_.connection_count(), MmdsStack::kMaxConnections);
  sent = Drain();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].destination_port, 5003);  // RSTs go first
  EXPECT_EQ(sent[0].flags, kRst | kAck);
  EXPECT_EQ(sent[0].seq, firsts[3]);
  EXPECT_EQ(sent[1].destination_port, 6000);
  EXPECT_EQ(sent[1].flags, kSyn | kAck);
  EXPECT_EQ(sent[1].ack, 78u);
}

TEST_F(MmdsStackTest, SegmentsForNoConnectionGetARstButRstsDoNot) {
  EXPECT_TRUE(Send({.seq = 500, .ack = 12345, .flags = kAck}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst);
  EXPECT_EQ(sent[0].seq, 12345u);
  EXPECT_TRUE(Send({.seq = 500, .flags = kFin, .payload = "abc"}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst | kAck);
  EXPECT_EQ(sent[0].ack, 504u);  // three bytes and the FIN
  EXPECT_TRUE(Send({.seq = 500, .flags = kRst}));
  EXPECT_TRUE(Drain().empty());
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, RstQueueIsBounded) {
  for (int i = 0; i < 150; ++i) {
    EXPECT_TRUE(Send({.seq = 1, .ack = 1, .flags = kAck, .source_port = static_cast<uint16_t>(i)}));
  }
  EXPECT_EQ(stack_.counters().rst_dropped.Read(), 150u - MmdsStack::kMaxPendingResets);
  EXPECT_EQ(Drain().size(), MmdsStack::kMaxPendingResets);
}

TEST_F(MmdsStackTest, OtherPortsAndProtocolsAreConsumedAndDropped) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .destination_port = 443}));
  std::vector<uint8_t> icmp = Frame({.seq = 1000, .flags = kSyn});
  icmp[23] = 1;
  Put16(icmp, 24, 0);
  Put16(icmp, 24, InternetChecksum({&icmp[14], 20}));
  EXPECT_TRUE(stack_.HandleGuestFrame(icmp, now_));
  EXPECT_FALSE(stack_.HasFrameForGuest(now_));
  EXPECT_EQ(stack_.counters().rx_unusual.Read(), 2u);
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, FragmentsAndBadLengthsAreDropped) {
  std::vector<uint8_t> fragment = Frame({.seq = 1000, .flags = kSyn});
  Put16(fragment, 20, 0x2000);  // more fragments
  Put16(fragment, 24, 0);
  Put16(fragment, 24, InternetChecksum({&fragment[14], 20}));
  EXPECT_TRUE(stack_.HandleGuestFrame(fragment, now_));
  std::vector<uint8_t> long_total = Frame({.seq = 1000, .flags = kSyn});
  Put16(long_total, 16, static_cast<uint16_t>(long_total.size()));  // 14 bytes past the end
  Put16(long_total, 24, 0);
  Put16(long_total, 24, InternetChecksum({&long_total[14], 20}));
  EXPECT_TRUE(stack_.HandleGuestFrame(long_total, now_));
  EXPECT_EQ(stack_.counters().rx_malformed.Read(), 2u);
  EXPECT_EQ(stack_.connection_count(), 0u);
  // Ethernet padding after the IPv4 total length is ignored.
  std::vector<uint8_t> padded = Frame({.seq = 1000, .flags = kSyn});
  padded.resize(padded.size() + 6, 0xee);
  EXPECT_TRUE(stack_.HandleGuestFrame(padded, now_));
  EXPECT_EQ(stack_.connection_count(), 1u);
}

TEST_F(MmdsStackTest, TruncatedFramesOfEveryLengthAreHandled) {
  const uint32_t first = Connect();
  const std::vector<uint8_t> data =
      Frame({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = kRequest});
  const std::vector<uint8_t> syn = Frame({.seq = 1, .flags = kSyn, .mss = 1460, .source_port = 9});
  const std::vector<uint8_t> arp = ArpFrame(1, kMmdsIp);
  for (const std::vector<uint8_t>* whole : {&data, &syn, &arp}) {
    const size_t minimum = whole == &arp ? 42 : 34;  // enough to tell it is for MMDS
    for (size_t length = 0; length < whole->size(); ++length) {
      const std::vector<uint8_t> cut(whole->begin(), whole->begin() + length);
      EXPECT_EQ(stack_.HandleGuestFrame(cut, now_), length >= minimum) << length;
    }
  }
  EXPECT_TRUE(log_.requests.empty());
  EXPECT_EQ(stack_.connection_count(), 1u);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(MmdsStackTest, RequestThatFillsTheBufferUnansweredResets) {
  const uint32_t first = Connect();
  const std::string junk(MmdsStack::kReceiveBufferBytes + 100, 'a');  // no empty line
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = junk}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst | kAck);
  EXPECT_EQ(sent[0].seq, first);
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, DataPastTheWindowIsCut) {
  const uint32_t first = Connect();
  const std::string part(MmdsStack::kReceiveBufferBytes - 10, 'a');
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = part}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].window, 10);
  const uint32_t next = guest_seq_ + static_cast<uint32_t>(part.size());
  // 20 bytes and a FIN into a 10-byte window: 10 taken, the FIN is not.
  EXPECT_TRUE(
      Send({.seq = next, .ack = first, .flags = kAck | kFin, .payload = std::string(20, 'b')}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst | kAck);  // the buffer is full without a request
  EXPECT_EQ(sent[0].ack, next + 10);
}

TEST_F(MmdsStackTest, UnacknowledgedDataIsResentAfterTheTimeoutThenReset) {
  const uint32_t first = Connect();
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = kRequest}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(stack_.NextTimeout(), now_ + MmdsStack::kRetransmitTimeout);
  now_ += MmdsStack::kRetransmitTimeout - milliseconds(1);
  EXPECT_TRUE(Drain().empty());
  for (unsigned i = 0; i < MmdsStack::kMaxRetransmits; ++i) {
    now_ = *stack_.NextTimeout();
    sent = Drain();
    ASSERT_EQ(sent.size(), 1u) << i;
    EXPECT_EQ(sent[0].seq, first);
    EXPECT_EQ(sent[0].payload, log_.answer);
  }
  now_ = *stack_.NextTimeout();
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst | kAck);
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, UnacknowledgedSynAckIsResent) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn}));
  const std::vector<Sent> first = Drain();
  ASSERT_EQ(first.size(), 1u);
  now_ += MmdsStack::kRetransmitTimeout;
  const std::vector<Sent> again = Drain();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].flags, kSyn | kAck);
  EXPECT_EQ(again[0].seq, first[0].seq);
}

TEST_F(MmdsStackTest, DuplicateAckResendsAtOnce) {
  log_.answer.assign(2000, 'z');
  const uint32_t first = Connect(/*mss=*/1000);
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = kRequest}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 2u);
  const uint32_t guest_next = guest_seq_ + static_cast<uint32_t>(std::string(kRequest).size());
  // The first segment arrived, the second "was lost": the guest ACKs 1000 twice.
  EXPECT_TRUE(Send({.seq = guest_next, .ack = first + 1000, .flags = kAck}));
  EXPECT_TRUE(Drain().empty());
  EXPECT_TRUE(Send({.seq = guest_next, .ack = first + 1000, .flags = kAck}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, first + 1000);
  EXPECT_EQ(sent[0].payload.size(), 1000u);
}

TEST_F(MmdsStackTest, ShutWindowIsProbedAndReopened) {
  const uint32_t first = Connect(1460, /*window=*/0);
  EXPECT_TRUE(
      Send({.seq = guest_seq_, .ack = first, .flags = kAck, .window = 0, .payload = kRequest}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);  // only the ACK: no room for data
  EXPECT_TRUE(sent[0].payload.empty());
  ASSERT_TRUE(stack_.NextTimeout().has_value());
  now_ = *stack_.NextTimeout();
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, first - 1);  // outside the guest's window: it must answer
  EXPECT_TRUE(sent[0].payload.empty());
  const uint32_t guest_next = guest_seq_ + static_cast<uint32_t>(std::string(kRequest).size());
  EXPECT_TRUE(Send({.seq = guest_next, .ack = first, .flags = kAck, .window = 4096}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, log_.answer);
}

TEST_F(MmdsStackTest, PipelinedRequestsAreAnsweredInTurn) {
  const uint32_t first = Connect();
  const std::string two = std::string(kRequest) + kRequest;
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = two}));
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].payload, log_.answer);
  EXPECT_EQ(log_.requests.size(), 1u);
  const uint32_t guest_next = guest_seq_ + static_cast<uint32_t>(two.size());
  const uint32_t acked = first + static_cast<uint32_t>(log_.answer.size());
  EXPECT_TRUE(Send({.seq = guest_next, .ack = acked, .flags = kAck}));
  sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, acked);
  EXPECT_EQ(sent[0].payload, log_.answer);
  EXPECT_EQ(log_.requests.size(), 2u);
}

TEST_F(MmdsStackTest, GuestRstInWindowEndsTheConnection) {
  const uint32_t first = Connect();
  EXPECT_TRUE(Send({.seq = guest_seq_ + 100000, .flags = kRst}));  // outside: ignored
  EXPECT_EQ(stack_.connection_count(), 1u);
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kRst | kAck}));
  EXPECT_EQ(stack_.connection_count(), 0u);
  EXPECT_TRUE(Drain().empty());
}

TEST_F(MmdsStackTest, NewSynOnAnOpenConnectionReplacesIt) {
  (void)Connect();
  EXPECT_TRUE(Send({.seq = 90000, .flags = kSyn}));
  EXPECT_EQ(stack_.connection_count(), 1u);
  std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kSyn | kAck);
  EXPECT_EQ(sent[0].ack, 90001u);
  EXPECT_EQ(log_.responders, 2);
}

TEST_F(MmdsStackTest, BadHandshakeAckIsReset) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn}));
  const std::vector<Sent> synack = Drain();
  ASSERT_EQ(synack.size(), 1u);
  EXPECT_TRUE(Send({.seq = 1001, .ack = synack[0].seq + 7, .flags = kAck}));
  const std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].flags, kRst);
  EXPECT_EQ(sent[0].seq, synack[0].seq + 7);
  EXPECT_EQ(stack_.connection_count(), 0u);
}

TEST_F(MmdsStackTest, SynWithBadOptionsIsDropped) {
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .mss = 50}));  // below 100
  std::vector<uint8_t> overrun = Frame({.seq = 1000, .flags = kSyn, .mss = 1460});
  overrun[34 + 21] = 9;  // option length past the header
  Put16(overrun, 34 + 16, 0);
  Put16(overrun, 34 + 16,
        InternetChecksum({&overrun[34], 24}, PseudoHeader(kGuestIp, kMmdsIp, 24)));
  EXPECT_TRUE(stack_.HandleGuestFrame(overrun, now_));
  EXPECT_EQ(stack_.connection_count(), 0u);
  EXPECT_EQ(stack_.counters().rx_malformed.Read(), 2u);
  EXPECT_FALSE(stack_.HasFrameForGuest(now_));
}

TEST_F(MmdsStackTest, SmallBuffersShrinkDataAndDropWhatCannotFit) {
  log_.answer.assign(300, 'q');
  const uint32_t first = Connect();
  EXPECT_TRUE(Send({.seq = guest_seq_, .ack = first, .flags = kAck, .payload = kRequest}));
  // 20 bytes hold no frame: dropped and counted; the timer resends it.
  std::vector<uint8_t> tiny(20);
  EXPECT_EQ(stack_.WriteNextFrame(tiny, now_), 0u);
  EXPECT_EQ(stack_.counters().tx_dropped.Read(), 1u);
  now_ += MmdsStack::kRetransmitTimeout;
  // 154 bytes: 54 of headers and 100 of data per frame.
  std::vector<Sent> sent = Drain(154);
  ASSERT_EQ(sent.size(), 3u);
  std::string all;
  for (const Sent& s : sent) {
    EXPECT_EQ(s.payload.size(), 100u);
    all += s.payload;
  }
  EXPECT_EQ(all, log_.answer);
  EXPECT_EQ(sent[2].flags, kAck | kPsh);
}

TEST_F(MmdsStackTest, IsnSeedMakesSequenceNumbersReproducible) {
  auto first_isn = [&](uint64_t seed) {
    MmdsStack stack(
        kMmdsIp, [] { return std::make_unique<FakeResponder>(nullptr); }, seed);
    EXPECT_TRUE(stack.HandleGuestFrame(Frame({.seq = 1000, .flags = kSyn}), now_));
    std::vector<uint8_t> buffer(100);
    const size_t n = stack.WriteNextFrame(buffer, now_);
    return Decode({buffer.data(), n}).seq;
  };
  // tests/fuzz/corpus/fuzz_mmds_stack was written for this ISN (seed 1).
  EXPECT_EQ(first_isn(1), 0x910a2decu);
  EXPECT_NE(first_isn(2), first_isn(1));
  // Connections of one stack get different ISNs.
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .source_port = 1}));
  EXPECT_TRUE(Send({.seq = 1000, .flags = kSyn, .source_port = 2}));
  const std::vector<Sent> sent = Drain();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0].seq, sent[1].seq);
}

TEST_F(MmdsStackTest, ConfiguredAddressIsTheOneServed) {
  const uint32_t address = net::Ipv4Address(10, 0, 0, 254);
  MmdsStack stack(
      address, [] { return nullptr; }, 1);
  EXPECT_FALSE(stack.HandleGuestFrame(ArpFrame(1, kMmdsIp), now_));
  EXPECT_TRUE(stack.HandleGuestFrame(ArpFrame(1, address), now_));
  // A factory without a responder: the SYN is refused with a RST.
  EXPECT_TRUE(
      stack.HandleGuestFrame(Frame({.seq = 5, .flags = kSyn, .destination_ip = address}), now_));
  std::vector<uint8_t> buffer(100);
  EXPECT_EQ(stack.WriteNextFrame(buffer, now_), 42u);  // the ARP reply
  const size_t n = stack.WriteNextFrame(buffer, now_);
  ASSERT_EQ(n, 54u);
  const Sent rst = Decode({buffer.data(), n});
  EXPECT_EQ(rst.flags, kRst | kAck);
  EXPECT_EQ(rst.source_ip, address);
  EXPECT_EQ(stack.connection_count(), 0u);
}

}  // namespace
}  // namespace ember
