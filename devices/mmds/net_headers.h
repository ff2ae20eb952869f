// Ethernet, ARP, IPv4 and TCP as the MMDS stack needs them: parsers that
// bounds-check every byte a guest sent, builders for the frames the stack
// sends back, and the Internet checksum. Addresses are host-order integers;
// the wire is big-endian. Pure functions: thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace ember::net {

using MacAddress = std::array<uint8_t, 6>;

inline constexpr size_t kEthernetHeaderBytes = 14;
inline constexpr size_t kArpIpv4Bytes = 28;     // ARP for Ethernet/IPv4
inline constexpr size_t kIpv4HeaderBytes = 20;  // without options
inline constexpr size_t kTcpHeaderBytes = 20;   // without options
inline constexpr size_t kTcpMssOptionBytes = 4;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;
inline constexpr uint8_t kIpProtocolTcp = 6;
inline constexpr uint8_t kOutgoingTtl = 64;

// TCP header flags.
enum TcpFlag : uint8_t {
  kTcpFin = 0x01,
  kTcpSyn = 0x02,
  kTcpRst = 0x04,
  kTcpPsh = 0x08,
  kTcpAck = 0x10,
};

constexpr uint32_t Ipv4Address(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

// Big-endian loads and stores; the caller has checked the bounds.
inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Store32(uint8_t* p, uint32_t v) {
  Store16(p, static_cast<uint16_t>(v >> 16));
  Store16(p + 2, static_cast<uint16_t>(v));
}

// The Internet checksum (RFC 1071): add spans with ChecksumAdd (only the
// last may have an odd length), then ChecksumFinish. A received header or
// segment whose checksum field is included checks out when Finish gives 0.
uint64_t ChecksumAdd(uint64_t sum, std::span<const uint8_t> bytes);
uint16_t ChecksumFinish(uint64_t sum);
// The TCP pseudo-header's contribution (RFC 9293 3.1).
uint64_t TcpPseudoHeaderSum(uint32_t source, uint32_t destination, size_t tcp_length);

struct EthernetFrame {
  MacAddress destination{};
  MacAddress source{};
  uint16_t ethertype = 0;
  std::span<const uint8_t> payload;
};
// Untagged frames only: a VLAN tag reads as ethertype 0x8100.
std::optional<EthernetFrame> ParseEthernet(std::span<const uint8_t> frame);

struct ArpPacket {
  uint16_t operation = 0;
  MacAddress sender_mac{};
  uint32_t sender_ip = 0;
  MacAddress target_mac{};
  uint32_t target_ip = 0;
};
// Ethernet/IPv4 ARP (hardware type 1, 6-byte addresses, protocol 0x0800,
// 4-byte addresses); anything else is nullopt.
std::optional<ArpPacket> ParseArp(std::span<const uint8_t> payload);
// The target protocol address at its Ethernet/IPv4 offset, whatever the
// other fields say: whether an ARP frame is about the MMDS address is
// decided before it is validated.
std::optional<uint32_t> PeekArpTargetIp(std::span<const uint8_t> payload);

struct Ipv4Packet {
  uint32_t source = 0;
  uint32_t destination = 0;
  uint8_t protocol = 0;
  bool fragment = false;             // more-fragments set or a non-zero offset
  bool checksum_ok = false;          // the header checksum
  std::span<const uint8_t> payload;  // up to the total length: Ethernet padding cut
};
// Version 4, a header length of at least 20 within the bytes, a total
// length between the header length and the bytes; options are skipped.
std::optional<Ipv4Packet> ParseIpv4(std::span<const uint8_t> bytes);
// The destination address if there are bytes for one.
std::optional<uint32_t> PeekIpv4Destination(std::span<const uint8_t> bytes);

struct TcpSegment {
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::span<const uint8_t> options;
  std::span<const uint8_t> payload;
};
// A header length (data offset) of at least 20 within the bytes. The
// checksum is checked apart (TcpChecksumOk): an offloaded one is partial.
std::optional<TcpSegment> ParseTcp(std::span<const uint8_t> bytes);
bool TcpChecksumOk(std::span<const uint8_t> segment, uint32_t source, uint32_t destination);

// The MSS option's value; nullopt when there is none. `valid` turns false
// for an option list that runs past its end or has a length below 2, or an
// MSS option whose length is not 4.
std::optional<uint16_t> FindMssOption(std::span<const uint8_t> options, bool& valid);

// Each builder returns the bytes written, or 0 when `out` is too small.
// An ARP reply frame: from `our_mac`/`our_ip` to `their_mac`/`their_ip`.
size_t WriteArpReply(std::span<uint8_t> out, const MacAddress& our_mac, uint32_t our_ip,
                     const MacAddress& their_mac, uint32_t their_ip);

struct TcpFrame {
  MacAddress source_mac{};
  MacAddress destination_mac{};
  uint32_t source_ip = 0;
  uint32_t destination_ip = 0;
  uint16_t ip_id = 0;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<uint16_t> mss;  // written as an option (SYN segments)
  std::span<const uint8_t> payload;
};
size_t TcpFrameBytes(const TcpFrame& frame);
// Ethernet + IPv4 (DF, TTL 64, no options) + TCP, both checksums computed.
size_t WriteTcpFrame(std::span<uint8_t> out, const TcpFrame& frame);

}  // namespace ember::net
