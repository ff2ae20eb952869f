#include "devices/mmds/net_headers.h"

#include <algorithm>
#include <cstring>

namespace ember::net {
namespace {

constexpr uint16_t kArpHardwareEthernet = 1;
constexpr uint16_t kIpv4DontFragment = 0x4000;
constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4OffsetMask = 0x1fff;
constexpr uint8_t kTcpOptionEnd = 0;
constexpr uint8_t kTcpOptionNop = 1;
constexpr uint8_t kTcpOptionMss = 2;

MacAddress LoadMac(const uint8_t* p) {
  MacAddress mac;
  std::memcpy(mac.data(), p, mac.size());
  return mac;
}

void StoreMac(uint8_t* p, const MacAddress& mac) { std::memcpy(p, mac.data(), mac.size()); }

void WriteEthernetHeader(uint8_t* p, const MacAddress& destination, const MacAddress& source,
                         uint16_t ethertype) {
  StoreMac(p, destination);
  StoreMac(p + 6, source);
  Store16(p + 12, ethertype);
}

}  // namespace

uint64_t ChecksumAdd(uint64_t sum, std::span<const uint8_t> bytes) {
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += Load16(&bytes[i]);
  if (i < bytes.size()) sum += uint64_t{bytes[i]} << 8;  // odd tail: padded with a zero
  return sum;
}

uint16_t ChecksumFinish(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint64_t TcpPseudoHeaderSum(uint32_t source, uint32_t destination, size_t tcp_length) {
  return (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) +
         kIpProtocolTcp + tcp_length;
}

std::optional<EthernetFrame> ParseEthernet(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderBytes) return std::nullopt;
  EthernetFrame parsed;
  parsed.destination = LoadMac(&frame[0]);
  parsed.source = LoadMac(&frame[6]);
  parsed.ethertype = Load16(&frame[12]);
  parsed.payload = frame.subspan(kEthernetHeaderBytes);
  return parsed;
}

std::optional<ArpPacket> ParseArp(std::span<const uint8_t> payload) {
  if (payload.size() < kArpIpv4Bytes) return std::nullopt;
  const uint8_t* p = payload.data();
  if (Load16(p) != kArpHardwareEthernet || Load16(p + 2) != kEtherTypeIpv4 || p[4] != 6 ||
      p[5] != 4) {
    return std::nullopt;
  }
  ArpPacket arp;
  arp.operation = Load16(p + 6);
  arp.sender_mac = LoadMac(p + 8);
  arp.sender_ip = Load32(p + 14);
  arp.target_mac = LoadMac(p + 18);
  arp.target_ip = Load32(p + 24);
  return arp;
}

std::optional<uint32_t> PeekArpTargetIp(std::span<const uint8_t> payload) {
  if (payload.size() < kArpIpv4Bytes) return std::nullopt;
  return Load32(&payload[24]);
}

std::optional<Ipv4Packet> ParseIpv4(std::span<const uint8_t> bytes) {
  if (bytes.size() < kIpv4HeaderBytes) return std::nullopt;
  const uint8_t* p = bytes.data();
  const size_t header_length = size_t{p[0] & 0x0fu} * 4;
  const size_t total_length = Load16(p + 2);
  if (p[0] >> 4 != 4 || header_length < kIpv4HeaderBytes || header_length > bytes.size() ||
      total_length < header_length || total_length > bytes.size()) {
    return std::nullopt;
  }
  Ipv4Packet packet;
  const uint16_t fragment_field = Load16(p + 6);
  packet.fragment = (fragment_field & kIpv4MoreFragments) || (fragment_field & kIpv4OffsetMask);
  packet.protocol = p[9];
  packet.source = Load32(p + 12);
  packet.destination = Load32(p + 16);
  packet.checksum_ok = ChecksumFinish(ChecksumAdd(0, bytes.first(header_length))) == 0;
  packet.payload = bytes.subspan(header_length, total_length - header_length);
  return packet;
}

std::optional<uint32_t> PeekIpv4Destination(std::span<const uint8_t> bytes) {
  if (bytes.size() < kIpv4HeaderBytes) return std::nullopt;
  return Load32(&bytes[16]);
}

std::optional<TcpSegment> ParseTcp(std::span<const uint8_t> bytes) {
  if (bytes.size() < kTcpHeaderBytes) return std::nullopt;
  const uint8_t* p = bytes.data();
  const size_t header_length = static_cast<size_t>(p[12] >> 4) * 4;
  if (header_length < kTcpHeaderBytes || header_length > bytes.size()) return std::nullopt;
  TcpSegment segment;
  segment.source_port = Load16(p);
  segment.destination_port = Load16(p + 2);
  segment.seq = Load32(p + 4);
  segment.ack = Load32(p + 8);
  segment.flags = p[13];
  segment.window = Load16(p + 14);
  segment.options = bytes.subspan(kTcpHeaderBytes, header_length - kTcpHeaderBytes);
  segment.payload = bytes.subspan(header_length);
  return segment;
}

bool TcpChecksumOk(std::span<const uint8_t> segment, uint32_t source, uint32_t destination) {
  const uint64_t sum =
      ChecksumAdd(TcpPseudoHeaderSum(source, destination, segment.size()), segment);
  return ChecksumFinish(sum) == 0;
}

std::optional<uint16_t> FindMssOption(std::span<const uint8_t> options, bool& valid) {
  valid = true;
  std::optional<uint16_t> mss;
  size_t i = 0;
  while (i < options.size()) {
    const uint8_t kind = options[i];
    if (kind == kTcpOptionEnd) break;
    if (kind == kTcpOptionNop) {
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) {
      valid = false;
      break;
    }
    const size_t length = options[i + 1];
    if (length < 2 || i + length > options.size()) {
      valid = false;
      break;
    }
    if (kind == kTcpOptionMss) {
      if (length != kTcpMssOptionBytes) {
        valid = false;
        break;
      }
      if (!mss) mss = Load16(&options[i + 2]);  // the first one counts
    }
    i += length;
  }
  return mss;
}

size_t WriteArpReply(std::span<uint8_t> out, const MacAddress& our_mac, uint32_t our_ip,
                     const MacAddress& their_mac, uint32_t their_ip) {
  constexpr size_t kBytes = kEthernetHeaderBytes + kArpIpv4Bytes;
  if (out.size() < kBytes) return 0;
  uint8_t* p = out.data();
  WriteEthernetHeader(p, their_mac, our_mac, kEtherTypeArp);
  uint8_t* arp = p + kEthernetHeaderBytes;
  Store16(arp, kArpHardwareEthernet);
  Store16(arp + 2, kEtherTypeIpv4);
  arp[4] = 6;
  arp[5] = 4;
  Store16(arp + 6, kArpReply);
  StoreMac(arp + 8, our_mac);
  Store32(arp + 14, our_ip);
  StoreMac(arp + 18, their_mac);
  Store32(arp + 24, their_ip);
  return kBytes;
}

size_t TcpFrameBytes(const TcpFrame& frame) {
  return kEthernetHeaderBytes + kIpv4HeaderBytes + kTcpHeaderBytes +
         (frame.mss ? kTcpMssOptionBytes : 0) + frame.payload.size();
}

size_t WriteTcpFrame(std::span<uint8_t> out, const TcpFrame& frame) {
  const size_t bytes = TcpFrameBytes(frame);
  const size_t ip_length = bytes - kEthernetHeaderBytes;
  if (out.size() < bytes || ip_length > 0xffff) return 0;
  const size_t tcp_header = kTcpHeaderBytes + (frame.mss ? kTcpMssOptionBytes : 0);
  const size_t tcp_length = tcp_header + frame.payload.size();
  uint8_t* p = out.data();
  WriteEthernetHeader(p, frame.destination_mac, frame.source_mac, kEtherTypeIpv4);

  uint8_t* ip = p + kEthernetHeaderBytes;
  ip[0] = 0x45;
  ip[1] = 0;
  Store16(ip + 2, static_cast<uint16_t>(ip_length));
  Store16(ip + 4, frame.ip_id);
  Store16(ip + 6, kIpv4DontFragment);
  ip[8] = kOutgoingTtl;
  ip[9] = kIpProtocolTcp;
  Store16(ip + 10, 0);
  Store32(ip + 12, frame.source_ip);
  Store32(ip + 16, frame.destination_ip);
  Store16(ip + 10, ChecksumFinish(ChecksumAdd(0, {ip, kIpv4HeaderBytes})));

  uint8_t* tcp = ip + kIpv4HeaderBytes;
  Store16(tcp, frame.source_port);
  Store16(tcp + 2, frame.destination_port);
  Store32(tcp + 4, frame.seq);
  Store32(tcp + 8, frame.ack);
  tcp[12] = static_cast<uint8_t>(tcp_header / 4 << 4);
  tcp[13] = frame.flags;
  Store16(tcp + 14, frame.window);
  Store16(tcp + 16, 0);
  Store16(tcp + 18, 0);  // urgent pointer
  if (frame.mss) {
    tcp[20] = kTcpOptionMss;
    tcp[21] = kTcpMssOptionBytes;
    Store16(tcp + 22, *frame.mss);
  }
  if (!frame.payload.empty()) {
    std::memcpy(tcp + tcp_header, frame.payload.data(), frame.payload.size());
  }
  const uint64_t sum = ChecksumAdd(
      TcpPseudoHeaderSum(frame.source_ip, frame.destination_ip, tcp_length), {tcp, tcp_length});
  Store16(tcp + 16, ChecksumFinish(sum));
  return bytes;
}

}  // namespace ember::net
