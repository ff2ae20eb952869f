#include "devices/mmds/mmds_stack.h"

#include <algorithm>
#include <random>

namespace ember {
namespace {

using net::kTcpAck;
using net::kTcpFin;
using net::kTcpPsh;
using net::kTcpRst;
using net::kTcpSyn;

// Sequence numbers compare modulo 2^32 (RFC 9293 3.4).
int32_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }
bool SeqLt(uint32_t a, uint32_t b) { return SeqDiff(a, b) < 0; }
bool SeqGt(uint32_t a, uint32_t b) { return SeqDiff(a, b) > 0; }

// Keeps sequence arithmetic far from 2^31; MMDS answers are kilobytes.
constexpr size_t kMaxResponseBytes = size_t{64} << 20;
// So that a segment fits in an IPv4 packet's 16-bit total length.
constexpr uint16_t kMaxMss = 0xffff - net::kIpv4HeaderBytes - net::kTcpHeaderBytes;
constexpr size_t kTcpFrameHeaders =
    net::kEthernetHeaderBytes + net::kIpv4HeaderBytes + net::kTcpHeaderBytes;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t RandomSeed() {
  std::random_device device;
  return uint64_t{device()} << 32 | device();
}

}  // namespace

// One guest connection to port 80. Sequence variables follow RFC 9293's
// names; `sending` holds the response bytes from snd_una on, and our FIN,
// once queued, follows them.
struct MmdsStack::Connection {
  net::MacAddress mac{};
  uint32_t ip = 0;
  uint16_t port = 0;
  std::unique_ptr<MmdsResponder> responder;
  uint16_t mss = kDefaultMss;
  uint32_t irs = 0;  // the guest's initial sequence number
  uint32_t iss = 0;
  uint32_t rcv_nxt = 0;
  uint32_t snd_una = 0;
  uint32_t snd_nxt = 0;   // rewinds to snd_una to resend (go-back-N)
  uint32_t snd_max = 0;   // the highest sent
  uint32_t snd_edge = 0;  // right edge of the guest's receive window
  std::string received;   // not yet consumed by the responder
  std::string sending;
  bool established = false;
  bool synack_due = true;
  bool ack_due = false;
  bool fin_queued = false;
  bool fin_acked = false;
  bool fin_received = false;
  bool input_closed = false;  // after an exchange with `close`: data is ACKed and dropped
  bool reset_due = false;     // the next segment is a RST, then the connection goes
  unsigned retransmits = 0;   // in a row, without an ACK in between
  std::optional<Clock::time_point> rto_deadline;
  Clock::time_point last_received;

  uint32_t data_end() const { return snd_una + static_cast<uint32_t>(sending.size()); }
  bool outstanding() const { return snd_una != snd_max; }
  bool unsent_data() const { return SeqLt(snd_nxt, data_end()); }
  bool window_closed() const { return !SeqLt(snd_nxt, snd_edge); }
  uint16_t window() const { return static_cast<uint16_t>(kReceiveBufferBytes - received.size()); }
};

// The next segment a connection sends; PlanNext decides, Commit records it.
struct MmdsStack::Plan {
  enum class Kind { kSynAck, kSegment, kProbe, kReset };
  Kind kind = Kind::kSegment;
  uint32_t seq = 0;
  size_t length = 0;  // payload bytes, from `sending` at `seq`
  bool fin = false;
  bool timeout = false;  // a retransmission the timer caused
};

MmdsStack::MmdsStack(uint32_t ipv4_address, ResponderFactory make_responder,
                     std::optional<uint64_t> isn_seed)
    : ipv4_address_(ipv4_address),
      make_responder_(std::move(make_responder)),
      isn_state_(isn_seed ? *isn_seed : RandomSeed()) {
  connections_.reserve(kMaxConnections);
}

MmdsStack::~MmdsStack() = default;

bool MmdsStack::HandleGuestFrame(std::span<const uint8_t> frame, Clock::time_point now,
                                 bool tcp_checksum_partial) {
  const std::optional<net::EthernetFrame> ethernet = net::ParseEthernet(frame);
  if (!ethernet) return false;
  if (ethernet->ethertype == net::kEtherTypeArp) {
    const std::optional<uint32_t> target = net::PeekArpTargetIp(ethernet->payload);
    if (target != ipv4_address_) return false;
    counters_.rx_accepted.Add();
    HandleArp(*ethernet);
    return true;
  }
  if (ethernet->ethertype == net::kEtherTypeIpv4) {
    const std::optional<uint32_t> destination = net::PeekIpv4Destination(ethernet->payload);
    if (destination != ipv4_address_) return false;
    counters_.rx_accepted.Add();
    HandleIpv4(*ethernet, now, tcp_checksum_partial);
    return true;
  }
  return false;
}

void MmdsStack::HandleArp(const net::EthernetFrame& frame) {
  const std::optional<net::ArpPacket> arp = net::ParseArp(frame.payload);
  if (!arp) {
    counters_.rx_malformed.Add();
    return;
  }
  if (arp->operation != net::kArpRequest) {
    counters_.rx_unusual.Add();
    return;
  }
  // One slot: the guest has one interface, and the latest question wins.
  arp_reply_.emplace(arp->sender_mac, arp->sender_ip);
}

void MmdsStack::HandleIpv4(const net::EthernetFrame& frame, Clock::time_point now,
                           bool checksum_partial) {
  const std::optional<net::Ipv4Packet> ip = net::ParseIpv4(frame.payload);
  if (!ip || ip->fragment) {
    counters_.rx_malformed.Add();
    return;
  }
  if (!ip->checksum_ok) {
    counters_.rx_bad_checksum.Add();
    return;
  }
  if (ip->protocol != net::kIpProtocolTcp) {
    counters_.rx_unusual.Add();
    return;
  }
  const std::optional<net::TcpSegment> segment = net::ParseTcp(ip->payload);
  if (!segment) {
    counters_.rx_malformed.Add();
    return;
  }
  if (!checksum_partial && !net::TcpChecksumOk(ip->payload, ip->source, ip->destination)) {
    counters_.rx_bad_checksum.Add();
    return;
  }
  // Firecracker drops other ports without a RST.
  if (segment->destination_port != kPort) {
    counters_.rx_unusual.Add();
    return;
  }

  const uint8_t flags = segment->flags;
  Connection* connection = Find(ip->source, segment->source_port);
  if (connection && (flags & kTcpSyn) && !(flags & kTcpRst)) {
    if (!(flags & kTcpAck) && !connection->established && segment->seq == connection->irs) {
      // The guest resent its SYN: the SYN-ACK goes again.
      connection->synack_due = true;
      connection->mac = frame.source;
      connection->last_received = now;
      return;
    }
    // A SYN on an open connection: the guest has given the old one up (a
    // reboot reuses ports), so a fresh SYN replaces it.
    Remove(*connection);
    if (flags & kTcpAck) {
      ReplyRst(frame.source, ip->source, *segment);
    } else {
      Open(frame.source, ip->source, *segment, now);
    }
    return;
  }
  if (connection) {
    connection->mac = frame.source;
    HandleSegment(*connection, *segment, now);
    return;
  }
  if ((flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) == kTcpSyn) {
    Open(frame.source, ip->source, *segment, now);
    return;
  }
  counters_.rx_unexpected.Add();
  if (!(flags & kTcpRst)) ReplyRst(frame.source, ip->source, *segment);
}

void MmdsStack::Open(const net::MacAddress& mac, uint32_t ip, const net::TcpSegment& syn,
                     Clock::time_point now) {
  bool options_valid = true;
  const std::optional<uint16_t> mss = net::FindMssOption(syn.options, options_valid);
  if (!options_valid || (mss && *mss < kMinMss)) {
    counters_.rx_malformed.Add();
    return;
  }
  if (connections_.size() >= kMaxConnections) {
    // Make room by evicting the connection idle the longest, if it has been
    // idle long enough; otherwise this SYN is refused.
    Connection* victim = nullptr;
    for (const std::unique_ptr<Connection>& candidate : connections_) {
      if (now - candidate->last_received <= kEvictableAfter) continue;
      if (!victim || candidate->last_received < victim->last_received) victim = candidate.get();
    }
    if (!victim) {
      counters_.connections_refused.Add();
      ReplyRst(mac, ip, syn);
      return;
    }
    QueueRst({victim->mac, victim->ip, victim->port, victim->snd_max, victim->rcv_nxt,
              static_cast<uint8_t>(kTcpRst | kTcpAck)});
    Remove(*victim);
  }
  std::unique_ptr<MmdsResponder> responder = make_responder_ ? make_responder_() : nullptr;
  if (!responder) {
    counters_.connections_refused.Add();
    ReplyRst(mac, ip, syn);
    return;
  }
  auto connection = std::make_unique<Connection>();
  connection->mac = mac;
  connection->ip = ip;
  connection->port = syn.source_port;
  connection->responder = std::move(responder);
  connection->mss = std::min(mss.value_or(kDefaultMss), kMaxMss);
  connection->irs = syn.seq;
  connection->rcv_nxt = syn.seq + 1;  // data on the SYN (fast open) is not taken
  connection->iss = NextIsn();
  connection->snd_una = connection->snd_nxt = connection->snd_max = connection->iss;
  connection->last_received = now;
  connections_.push_back(std::move(connection));
  counters_.connections_created.Add();
}

void MmdsStack::HandleSegment(Connection& connection, const net::TcpSegment& segment,
                              Clock::time_point now) {
  connection.last_received = now;
  if (connection.reset_due) return;
  if (segment.flags & kTcpRst) {
    // Only a RST at a sequence number in the window counts (RFC 9293 3.10.7.4).
    const uint32_t window = std::max<uint32_t>(connection.window(), 1);
    if (!SeqLt(segment.seq, connection.rcv_nxt) &&
        SeqLt(segment.seq, connection.rcv_nxt + window)) {
      Remove(connection);
    } else {
      counters_.rx_unusual.Add();
    }
    return;
  }
  if (!(segment.flags & kTcpAck)) {
    counters_.rx_unusual.Add();  // past the SYN, every segment carries an ACK
    return;
  }
  if (!connection.established) {
    // Only the ACK of our SYN-ACK, once it has gone out, opens the connection.
    if (connection.snd_max != connection.iss + 1 || segment.ack != connection.iss + 1) {
      ReplyRst(connection.mac, connection.ip, segment);
      Remove(connection);
      return;
    }
    connection.established = true;
    connection.synack_due = false;
    connection.snd_una = connection.snd_nxt = connection.iss + 1;
    connection.snd_edge = segment.ack + segment.window;
    connection.retransmits = 0;
    connection.rto_deadline.reset();
  } else if (!ProcessAck(connection, segment)) {
    return;
  }
  ReceiveData(connection, segment);
  Serve(connection);
  UpdateTimer(connection, now);
  if (Done(connection)) Remove(connection);
}

bool MmdsStack::ProcessAck(Connection& connection, const net::TcpSegment& segment) {
  const uint32_t ack = segment.ack;
  if (SeqGt(ack, connection.snd_max)) {
    // It acknowledges what was never sent: dropped, and our ACK says where we are.
    connection.ack_due = true;
    counters_.rx_unusual.Add();
    return false;
  }
  if (SeqLt(ack, connection.snd_una)) return true;  // an old ACK: its data may be new
  connection.retransmits = 0;
  const uint32_t edge = ack + segment.window;
  if (ack == connection.snd_una) {
    // A duplicate ACK (nothing else in it) while data is out: as Firecracker,
    // resend from the first unacknowledged byte at once.
    if (connection.outstanding() && segment.payload.empty() && !(segment.flags & kTcpFin) &&
        edge == connection.snd_edge) {
      connection.snd_nxt = connection.snd_una;
    }
  } else {
    const uint32_t acked = ack - connection.snd_una;
    const size_t data = std::min<size_t>(acked, connection.sending.size());
    connection.sending.erase(0, data);
    if (acked > data) connection.fin_acked = true;  // the FIN follows the data
    connection.snd_una = ack;
    if (SeqLt(connection.snd_nxt, ack)) connection.snd_nxt = ack;
    connection.rto_deadline.reset();  // restarted from now if more is out
  }
  connection.snd_edge = edge;
  return true;
}

void MmdsStack::ReceiveData(Connection& connection, const net::TcpSegment& segment) {
  if (!segment.payload.empty()) {
    connection.ack_due = true;            // every data segment is answered, in order or not
    if (connection.fin_received) return;  // nothing may follow the FIN
    const int32_t already = SeqDiff(connection.rcv_nxt, segment.seq);
    if (already < 0) return;  // a gap before it: dropped, the ACK asks again
    if (static_cast<size_t>(already) > segment.payload.size()) return;  // all old
    const std::span<const uint8_t> fresh = segment.payload.subspan(already);
    const size_t take = std::min(fresh.size(), kReceiveBufferBytes - connection.received.size());
    if (!connection.input_closed) connection.received.append(fresh.begin(), fresh.begin() + take);
    connection.rcv_nxt += static_cast<uint32_t>(take);
    if (take < fresh.size()) return;  // past the window; so is any FIN
  }
  if (segment.flags & kTcpFin) {
    const uint32_t fin_seq = segment.seq + static_cast<uint32_t>(segment.payload.size());
    if (!connection.fin_received && fin_seq == connection.rcv_nxt) {
      connection.fin_received = true;
      ++connection.rcv_nxt;
    }
    connection.ack_due = true;  // a new FIN, a resent one, or one out of order
  }
}

void MmdsStack::Serve(Connection& connection) {
  // One answer in flight at a time, as Firecracker: the next request is
  // looked at when the guest has acknowledged the previous answer.
  while (!connection.fin_queued && connection.sending.empty() && !connection.received.empty()) {
    std::optional<MmdsHttpExchange> exchange = connection.responder->Respond(connection.received);
    if (!exchange) {
      // A request that fills the whole buffer is over the limit.
      if (connection.received.size() >= kReceiveBufferBytes) connection.reset_due = true;
      return;
    }
    if (exchange->consumed == 0 || exchange->consumed > connection.received.size() ||
        exchange->response.size() > kMaxResponseBytes) {
      connection.reset_due = true;  // a responder bug must not spin or overflow
      return;
    }
    connection.received.erase(0, exchange->consumed);
    connection.ack_due = true;  // the window opened
    connection.sending = std::move(exchange->response);
    if (exchange->close) {
      connection.fin_queued = true;
      connection.input_closed = true;
      connection.received.clear();
    }
  }
  // The guest closed and every complete request is answered: close too.
  if (connection.fin_received && connection.sending.empty()) connection.fin_queued = true;
}

std::optional<MmdsStack::Plan> MmdsStack::PlanNext(const Connection& connection,
                                                   Clock::time_point now) const {
  using Kind = Plan::Kind;
  if (connection.reset_due) return Plan{Kind::kReset};
  const bool expired = connection.rto_deadline && now >= *connection.rto_deadline;
  if (expired && connection.retransmits >= kMaxRetransmits) return Plan{Kind::kReset};
  if (connection.synack_due) return Plan{Kind::kSynAck, connection.iss};
  if (!connection.established) {
    if (expired) return Plan{Kind::kSynAck, connection.iss, 0, false, true};
    return std::nullopt;
  }
  uint32_t next = connection.snd_nxt;
  bool timeout = false;
  if (expired) {
    if (connection.outstanding()) {
      next = connection.snd_una;
      timeout = true;
    } else if (connection.unsent_data()) {
      return Plan{Kind::kProbe, connection.snd_max - 1, 0, false, true};  // the window is shut
    }
  }
  const uint32_t end = connection.data_end();
  if (SeqLt(next, end)) {
    const uint32_t room = SeqLt(next, connection.snd_edge) ? connection.snd_edge - next : 0;
    const size_t length = std::min<size_t>({end - next, room, connection.mss});
    if (length > 0) {
      return Plan{Kind::kSegment, next, length, connection.fin_queued && next + length == end,
                  timeout};
    }
    if (timeout) return Plan{Kind::kProbe, connection.snd_max - 1, 0, false, true};
  } else if (connection.fin_queued && !connection.fin_acked && next == end) {
    return Plan{Kind::kSegment, end, 0, true, timeout};
  }
  if (connection.ack_due) return Plan{Kind::kSegment, connection.snd_max};
  return std::nullopt;
}

void MmdsStack::Commit(Connection& connection, const Plan& plan, size_t payload,
                       Clock::time_point now) {
  if (plan.timeout) {
    ++connection.retransmits;
    connection.rto_deadline = now + kRetransmitTimeout;
  }
  switch (plan.kind) {
    case Plan::Kind::kSynAck:
      connection.synack_due = false;
      connection.snd_nxt = connection.snd_max = connection.iss + 1;
      connection.rto_deadline = now + kRetransmitTimeout;
      break;
    case Plan::Kind::kSegment: {
      const bool fin = plan.fin && payload == plan.length;
      if (payload > 0 || fin) {
        const uint32_t after = plan.seq + static_cast<uint32_t>(payload) + (fin ? 1 : 0);
        connection.snd_nxt = after;
        if (SeqGt(after, connection.snd_max)) connection.snd_max = after;
      }
      break;
    }
    case Plan::Kind::kProbe:
    case Plan::Kind::kReset:
      break;
  }
  connection.ack_due = false;  // every segment carries the ACK
  UpdateTimer(connection, now);
}

void MmdsStack::UpdateTimer(Connection& connection, Clock::time_point now) const {
  if (!connection.established) {
    if (!connection.synack_due && !connection.rto_deadline) {
      connection.rto_deadline = now + kRetransmitTimeout;
    }
    return;
  }
  // Armed while something is unacknowledged, or data waits on a shut window
  // (then the timer sends window probes).
  if (connection.outstanding() || (connection.unsent_data() && connection.window_closed())) {
    if (!connection.rto_deadline) connection.rto_deadline = now + kRetransmitTimeout;
  } else {
    connection.rto_deadline.reset();
  }
}

bool MmdsStack::Done(const Connection& connection) const {
  return connection.established && connection.fin_received && connection.fin_acked &&
         !connection.ack_due;
}

bool MmdsStack::HasFrameForGuest(Clock::time_point now) const {
  if (arp_reply_ || !rsts_.empty()) return true;
  for (const std::unique_ptr<Connection>& connection : connections_) {
    if (PlanNext(*connection, now)) return true;
  }
  return false;
}

size_t MmdsStack::WriteNextFrame(std::span<uint8_t> buffer, Clock::time_point now) {
  // Each pass makes one frame; one that does not fit is dropped and the
  // next is tried. Every pass consumes something, so this ends.
  for (;;) {
    size_t written = 0;
    if (arp_reply_) {
      written =
          net::WriteArpReply(buffer, kMac, ipv4_address_, arp_reply_->first, arp_reply_->second);
      arp_reply_.reset();
    } else if (!rsts_.empty()) {
      const PendingRst rst = rsts_.front();
      rsts_.pop_front();
      net::TcpFrame frame;
      frame.source_mac = kMac;
      frame.destination_mac = rst.mac;
      frame.source_ip = ipv4_address_;
      frame.destination_ip = rst.ip;
      frame.ip_id = ip_id_++;
      frame.source_port = kPort;
      frame.destination_port = rst.port;
      frame.seq = rst.seq;
      frame.ack = rst.ack;
      frame.flags = rst.flags;
      written = net::WriteTcpFrame(buffer, frame);
    } else {
      Connection* writer = nullptr;
      std::optional<Plan> plan;
      for (size_t i = 0; i < connections_.size() && !writer; ++i) {
        const size_t index = (next_writer_ + i) % connections_.size();
        plan = PlanNext(*connections_[index], now);
        if (plan) {
          writer = connections_[index].get();
          next_writer_ = index + 1;
        }
      }
      if (!writer) return 0;
      written = WriteSegment(buffer, *writer, *plan, now);
    }
    if (written > 0) {
      counters_.tx_frames.Add();
      counters_.tx_bytes.Add(written);
      return written;
    }
    counters_.tx_dropped.Add();
  }
}

size_t MmdsStack::WriteSegment(std::span<uint8_t> buffer, Connection& connection, const Plan& plan,
                               Clock::time_point now) {
  net::TcpFrame frame;
  frame.source_mac = kMac;
  frame.destination_mac = connection.mac;
  frame.source_ip = ipv4_address_;
  frame.destination_ip = connection.ip;
  frame.ip_id = ip_id_++;
  frame.source_port = kPort;
  frame.destination_port = connection.port;
  frame.ack = connection.rcv_nxt;
  frame.window = connection.window();
  size_t payload = 0;
  switch (plan.kind) {
    case Plan::Kind::kReset: {
      frame.seq = connection.snd_max;
      frame.flags = kTcpRst | kTcpAck;
      frame.window = 0;
      const size_t written = net::WriteTcpFrame(buffer, frame);
      Remove(connection);
      return written;
    }
    case Plan::Kind::kSynAck:
      frame.seq = connection.iss;
      frame.flags = kTcpSyn | kTcpAck;
      frame.mss = connection.mss;
      break;
    case Plan::Kind::kProbe:
      frame.seq = plan.seq;
      frame.flags = kTcpAck;
      break;
    case Plan::Kind::kSegment: {
      // Shrink data to the buffer; with no room at all it is dropped whole.
      const size_t room = buffer.size() > kTcpFrameHeaders ? buffer.size() - kTcpFrameHeaders : 0;
      payload = room > 0 ? std::min(plan.length, room) : plan.length;
      frame.seq = plan.seq;
      frame.flags = kTcpAck;
      if (plan.fin && payload == plan.length) frame.flags |= kTcpFin;
      if (payload > 0) {
        // PlanNext keeps data within `sending`: snd_una <= seq < data_end.
        const size_t offset = plan.seq - connection.snd_una;
        frame.payload = std::span<const uint8_t>(
            reinterpret_cast<const uint8_t*>(connection.sending.data()) + offset, payload);
        if (offset + payload == connection.sending.size()) frame.flags |= kTcpPsh;
      }
      break;
    }
  }
  const size_t written = net::WriteTcpFrame(buffer, frame);
  Commit(connection, plan, payload, now);
  if (Done(connection)) Remove(connection);
  return written;
}

std::optional<MmdsStack::Clock::time_point> MmdsStack::NextTimeout() const {
  std::optional<Clock::time_point> next;
  for (const std::unique_ptr<Connection>& connection : connections_) {
    if (connection->rto_deadline && (!next || *connection->rto_deadline < *next)) {
      next = connection->rto_deadline;
    }
  }
  return next;
}

void MmdsStack::ReplyRst(const net::MacAddress& mac, uint32_t ip, const net::TcpSegment& segment) {
  PendingRst rst{mac, ip, segment.source_port, 0, 0, kTcpRst};
  if (segment.flags & kTcpAck) {
    rst.seq = segment.ack;
  } else {
    rst.ack = segment.seq + static_cast<uint32_t>(segment.payload.size()) +
              ((segment.flags & kTcpSyn) ? 1 : 0) + ((segment.flags & kTcpFin) ? 1 : 0);
    rst.flags |= kTcpAck;
  }
  QueueRst(rst);
}

void MmdsStack::QueueRst(const PendingRst& rst) {
  if (rsts_.size() >= kMaxPendingResets) {
    counters_.rst_dropped.Add();
    return;
  }
  rsts_.push_back(rst);
}

void MmdsStack::Remove(const Connection& connection) {
  const auto found =
      std::find_if(connections_.begin(), connections_.end(),
                   [&](const std::unique_ptr<Connection>& c) { return c.get() == &connection; });
  if (found == connections_.end()) return;
  connections_.erase(found);
  counters_.connections_destroyed.Add();
}

MmdsStack::Connection* MmdsStack::Find(uint32_t ip, uint16_t port) {
  for (const std::unique_ptr<Connection>& connection : connections_) {
    if (connection->ip == ip && connection->port == port) return connection.get();
  }
  return nullptr;
}

uint32_t MmdsStack::NextIsn() { return static_cast<uint32_t>(SplitMix64(isn_state_) >> 32); }

}  // namespace ember
