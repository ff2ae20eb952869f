// The guest's side of MMDS on a virtio-net interface: a minimal network
// stack in Firecracker's "dumbo" style. The device hands it every Ethernet
// frame the guest transmits (without the virtio-net header); it keeps those
// for the MMDS address (ARP requests for it, IPv4 to it) and lets the rest
// go to the TAP. It answers ARP with the MMDS MAC and serves HTTP over a
// passive-open TCP on port 80, one MmdsResponder per connection. What it
// sends the guest is made when the device asks for it (WriteNextFrame), so
// nothing but one ARP reply and a bounded RST queue waits in the stack.
//
// Firecracker's numbers: 30 connections (when full, one idle for 10 s is
// evicted with a RST, else the SYN gets a RST), 100 pending RSTs, a 2500-byte
// receive buffer per connection (the advertised window; a request that
// fills it unanswered resets the connection), the guest's MSS (536 without
// the option) mirrored in the SYN-ACK, retransmission after 300 ms or on a
// duplicate ACK, reset after 15 retransmissions in a row. TCP is kept
// simple because the link is virtio: in-order data only (else re-ACK), no
// window scaling, SACK or timestamps, no congestion control; what the
// guest resends (SYN, data, FIN) is answered idempotently.
//
// Everything the guest sends is hostile: any bytes are handled within
// bounds and bounded memory, and what is wrong is dropped and counted.
//
// Thread-safety: none; one thread (the net device's worker) makes every
// call. The counters may be read from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/metrics.h"
#include "devices/mmds/mmds_responder.h"
#include "devices/mmds/net_headers.h"

namespace ember {

struct MmdsStackCounters {
  Counter rx_accepted;      // frames the stack kept (not for the TAP)
  Counter rx_malformed;     // kept but unparsable: lengths, fragments, TCP options
  Counter rx_bad_checksum;  // IPv4 header or TCP checksum wrong
  Counter rx_unusual;       // valid but unserved: not TCP, not port 80, not an ARP request
  Counter rx_unexpected;    // TCP for no connection, answered with a RST
  Counter tx_frames;        // frames written for the guest
  Counter tx_bytes;
  Counter tx_dropped;   // a frame bigger than the guest's buffer
  Counter rst_dropped;  // the RST queue was full
  Counter connections_created;
  Counter connections_destroyed;
  Counter connections_refused;  // a SYN while all connections were busy
};

class MmdsStack {
 public:
  using Clock = std::chrono::steady_clock;
  using ResponderFactory = std::function<std::unique_ptr<MmdsResponder>()>;

  static constexpr uint32_t kDefaultIpv4 = net::Ipv4Address(169, 254, 169, 254);
  static constexpr net::MacAddress kMac = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};
  static constexpr uint16_t kPort = 80;
  static constexpr size_t kMaxConnections = 30;
  static constexpr size_t kMaxPendingResets = 100;
  static constexpr size_t kReceiveBufferBytes = 2500;
  static constexpr uint16_t kDefaultMss = 536;  // no MSS option in the SYN
  static constexpr uint16_t kMinMss = 100;      // a SYN with less is dropped
  static constexpr Clock::duration kRetransmitTimeout = std::chrono::milliseconds(300);
  static constexpr unsigned kMaxRetransmits = 15;
  static constexpr Clock::duration kEvictableAfter = std::chrono::seconds(10);

  // `ipv4_address` in host order. `make_responder` is called once per new
  // connection. `isn_seed` makes initial sequence numbers reproducible
  // (tests, fuzzing); without it they come from std::random_device, read
  // only here: construct the stack before the worker's seccomp filter.
  MmdsStack(uint32_t ipv4_address, ResponderFactory make_responder,
            std::optional<uint64_t> isn_seed = std::nullopt);
  ~MmdsStack();
  MmdsStack(const MmdsStack&) = delete;
  MmdsStack& operator=(const MmdsStack&) = delete;

  // True when the frame was for MMDS and is consumed, valid or not; false
  // when it goes to the TAP. `tcp_checksum_partial`: the virtio-net header
  // had NEEDS_CSUM (checksum offload), so the TCP checksum holds only the
  // pseudo-header's sum and is not checked.
  bool HandleGuestFrame(std::span<const uint8_t> frame, Clock::time_point now = Clock::now(),
                        bool tcp_checksum_partial = false);

  // Whether WriteNextFrame would write a frame now.
  bool HasFrameForGuest(Clock::time_point now = Clock::now()) const;
  // Writes the next frame for the guest into `buffer` (where the frame
  // starts, after the virtio-net header) and returns its length; 0 when
  // there is none. Data segments shrink to fit the buffer; a frame that
  // still does not fit is dropped and counted, as if lost on the link.
  size_t WriteNextFrame(std::span<uint8_t> buffer, Clock::time_point now = Clock::now());
  // When the next retransmission falls due, if one is pending: the device
  // asks HasFrameForGuest again then.
  std::optional<Clock::time_point> NextTimeout() const;

  size_t connection_count() const { return connections_.size(); }
  uint32_t ipv4_address() const { return ipv4_address_; }
  const MmdsStackCounters& counters() const { return counters_; }

 private:
  struct Connection;
  struct Plan;
  struct PendingRst {
    net::MacAddress mac;
    uint32_t ip;
    uint16_t port;
    uint32_t seq;
    uint32_t ack;
    uint8_t flags;
  };

  void HandleArp(const net::EthernetFrame& frame);
  void HandleIpv4(const net::EthernetFrame& frame, Clock::time_point now, bool checksum_partial);
  void HandleSegment(Connection& connection, const net::TcpSegment& segment, Clock::time_point now);
  void Open(const net::MacAddress& mac, uint32_t ip, const net::TcpSegment& syn,
            Clock::time_point now);
  // Hands received bytes to the responder while nothing is being sent.
  void Serve(Connection& connection);
  // False when the segment is to be dropped.
  bool ProcessAck(Connection& connection, const net::TcpSegment& segment);
  void ReceiveData(Connection& connection, const net::TcpSegment& segment);
  std::optional<Plan> PlanNext(const Connection& connection, Clock::time_point now) const;
  void Commit(Connection& connection, const Plan& plan, size_t payload, Clock::time_point now);
  void UpdateTimer(Connection& connection, Clock::time_point now) const;
  size_t WriteSegment(std::span<uint8_t> buffer, Connection& connection, const Plan& plan,
                      Clock::time_point now);
  // Queues the RST that answers `segment` (RFC 9293's reset generation).
  void ReplyRst(const net::MacAddress& mac, uint32_t ip, const net::TcpSegment& segment);
  void QueueRst(const PendingRst& rst);
  void Remove(const Connection& connection);
  Connection* Find(uint32_t ip, uint16_t port);
  bool Done(const Connection& connection) const;
  uint32_t NextIsn();

  const uint32_t ipv4_address_;
  const ResponderFactory make_responder_;
  uint64_t isn_state_;
  uint16_t ip_id_ = 0;

  std::optional<std::pair<net::MacAddress, uint32_t>> arp_reply_;  // the requester's MAC and IP
  std::deque<PendingRst> rsts_;
  std::vector<std::unique_ptr<Connection>> connections_;
  size_t next_writer_ = 0;  // round robin over connections
  MmdsStackCounters counters_;
};

}  // namespace ember
