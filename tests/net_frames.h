// Ethernet frames as a guest sends them to MMDS and as MMDS answers, built
// and decoded here byte by byte (not with devices/mmds/net_headers.h, so the
// stack's own code is checked, not reused). For the MMDS stack's tests and
// the virtio-net device's.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/mmds/mmds_stack.h"

namespace ember::testing {

constexpr uint32_t kMmdsIp = MmdsStack::kDefaultIpv4;
constexpr uint32_t kGuestIp = net::Ipv4Address(169, 254, 0, 2);
constexpr uint16_t kGuestPort = 40000;
constexpr net::MacAddress kGuestMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

inline void Put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
inline void Put32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  Put16(b, at, static_cast<uint16_t>(v >> 16));
  Put16(b, at + 2, static_cast<uint16_t>(v));
}
inline uint16_t Get16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
inline uint32_t Get32(std::span<const uint8_t> b, size_t at) {
  return uint32_t{Get16(b, at)} << 16 | Get16(b, at + 2);
}

// RFC 1071, written out again so the stack's version is checked, not reused.
inline uint16_t InternetChecksum(std::span<const uint8_t> bytes, uint32_t sum = 0) {
  for (size_t i = 0; i < bytes.size(); i += 2) {
    sum += uint32_t{bytes[i]} << 8 | (i + 1 < bytes.size() ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}
inline uint32_t PseudoHeader(uint32_t source, uint32_t destination, size_t length) {
  return (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) + 6 +
         static_cast<uint32_t>(length);
}

struct GuestSegment {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 64000;
  std::string payload;
  std::optional<uint16_t> mss;
  uint16_t source_port = kGuestPort;
  uint16_t destination_port = 80;
  uint32_t source_ip = kGuestIp;
  uint32_t destination_ip = kMmdsIp;
};

// Ethernet + IPv4 + TCP from the guest, checksums right.
inline std::vector<uint8_t> Frame(const GuestSegment& s) {
  const size_t tcp_header = s.mss ? 24 : 20;
  const size_t tcp_length = tcp_header + s.payload.size();
  std::vector<uint8_t> b(14 + 20 + tcp_length, 0);
  std::copy(MmdsStack::kMac.begin(), MmdsStack::kMac.end(), b.begin());
  std::copy(kGuestMac.begin(), kGuestMac.end(), b.begin() + 6);
  Put16(b, 12, 0x0800);
  b[14] = 0x45;
  Put16(b, 16, static_cast<uint16_t>(20 + tcp_length));
  Put16(b, 20, 0x4000);
  b[22] = 64;
  b[23] = 6;
  Put32(b, 26, s.source_ip);
  Put32(b, 30, s.destination_ip);
  Put16(b, 24, InternetChecksum({&b[14], 20}));
  const size_t t = 34;
  Put16(b, t, s.source_port);
  Put16(b, t + 2, s.destination_port);
  Put32(b, t + 4, s.seq);
  Put32(b, t + 8, s.ack);
  b[t + 12] = static_cast<uint8_t>(tcp_header / 4 << 4);
  b[t + 13] = s.flags;
  Put16(b, t + 14, s.window);
  if (s.mss) {
    b[t + 20] = 2;
    b[t + 21] = 4;
    Put16(b, t + 22, *s.mss);
  }
  std::copy(s.payload.begin(), s.payload.end(), b.begin() + t + tcp_header);
  Put16(b, t + 16,
        InternetChecksum({&b[t], tcp_length},
                         PseudoHeader(s.source_ip, s.destination_ip, tcp_length)));
  return b;
}

inline std::vector<uint8_t> ArpFrame(uint16_t operation, uint32_t target_ip) {
  std::vector<uint8_t> b(42, 0);
  std::fill(b.begin(), b.begin() + 6, 0xff);
  std::copy(kGuestMac.begin(), kGuestMac.end(), b.begin() + 6);
  Put16(b, 12, 0x0806);
  Put16(b, 14, 1);
  Put16(b, 16, 0x0800);
  b[18] = 6;
  b[19] = 4;
  Put16(b, 20, operation);
  std::copy(kGuestMac.begin(), kGuestMac.end(), b.begin() + 22);
  Put32(b, 28, kGuestIp);
  Put32(b, 38, target_ip);
  return b;
}

// A TCP frame from the stack, decoded here; the checksums are recomputed.
struct Sent {
  net::MacAddress destination_mac{}, source_mac{};
  uint8_t ttl = 0;
  uint32_t source_ip = 0, destination_ip = 0;
  uint16_t source_port = 0, destination_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<uint16_t> mss;
  std::string payload;
  bool ip_checksum_ok = false, tcp_checksum_ok = false;
};

inline Sent Decode(std::span<const uint8_t> f) {
  Sent s;
  EXPECT_GE(f.size(), 54u);
  if (f.size() < 54) return s;
  std::copy(f.begin(), f.begin() + 6, s.destination_mac.begin());
  std::copy(f.begin() + 6, f.begin() + 12, s.source_mac.begin());
  EXPECT_EQ(Get16(f, 12), 0x0800);
  EXPECT_EQ(f[14], 0x45);
  EXPECT_EQ(Get16(f, 16), f.size() - 14);
  EXPECT_EQ(f[23], 6);
  s.ttl = f[22];
  s.ip_checksum_ok = InternetChecksum(f.subspan(14, 20)) == 0;
  s.source_ip = Get32(f, 26);
  s.destination_ip = Get32(f, 30);
  const std::span<const uint8_t> tcp = f.subspan(34);
  s.tcp_checksum_ok =
      InternetChecksum(tcp, PseudoHeader(s.source_ip, s.destination_ip, tcp.size())) == 0;
  s.source_port = Get16(tcp, 0);
  s.destination_port = Get16(tcp, 2);
  s.seq = Get32(tcp, 4);
  s.ack = Get32(tcp, 8);
  const size_t header = static_cast<size_t>(tcp[12] >> 4) * 4;
  s.flags = tcp[13];
  s.window = Get16(tcp, 14);
  if (header >= 24 && tcp[20] == 2 && tcp[21] == 4) s.mss = Get16(tcp, 22);
  s.payload.assign(tcp.begin() + header, tcp.end());
  return s;
}

}  // namespace ember::testing
