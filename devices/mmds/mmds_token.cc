#include "devices/mmds/mmds_token.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ember {
namespace {

constexpr size_t kPayloadBytes = 16;  // expiry | serial
constexpr size_t kTagBytes = 16;
constexpr size_t kTokenBytes = kPayloadBytes + kTagBytes;
constexpr char kHexDigits[] = "0123456789abcdef";

uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

uint64_t LoadLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

void StoreLe(uint64_t v, uint8_t* p) {
  for (size_t i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Absorb(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
  uint64_t Squeeze(uint8_t marker) {
    v2 ^= marker;
    for (int i = 0; i < 4; ++i) Round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not what we issue: refused, one spelling per token
}

}  // namespace

std::array<uint8_t, 16> SipHash128(const std::array<uint8_t, 16>& key, std::string_view data) {
  const uint64_t k0 = LoadLe(key.data(), 8), k1 = LoadLe(key.data() + 8, 8);
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
             k1 ^ 0x7465646279746573ULL};
  s.v1 ^= 0xee;  // the 128-bit variant
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  const size_t whole = data.size() / 8 * 8;
  for (size_t i = 0; i < whole; i += 8) s.Absorb(LoadLe(bytes + i, 8));
  s.Absorb(LoadLe(bytes + whole, data.size() - whole) | (uint64_t{data.size() & 0xff} << 56));
  std::array<uint8_t, 16> out;
  StoreLe(s.Squeeze(0xee), out.data());
  s.v1 ^= 0xdd;
  StoreLe(s.Squeeze(0), out.data() + 8);
  return out;
}

Result<MmdsTokenAuthority> MmdsTokenAuthority::Create(Now now) {
  Key key;
  size_t filled = 0;
  while (filled < key.size()) {
    const ssize_t n = getrandom(key.data() + filled, key.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::Error(std::string("Failed to generate a key: getrandom: ") +
                           std::strerror(errno));
    }
    filled += static_cast<size_t>(n);
  }
  return MmdsTokenAuthority(key, std::move(now));
}

MmdsTokenAuthority::MmdsTokenAuthority(const Key& key, Now now) : key_(key), now_(std::move(now)) {}

Result<std::string> MmdsTokenAuthority::Generate(uint32_t ttl_seconds) {
  if (ttl_seconds < kMinTtlSeconds || ttl_seconds > kMaxTtlSeconds) {
    return Status::Error(
        "Invalid time to live value provided for token: " + std::to_string(ttl_seconds) +
        ". Please provide a value between " + std::to_string(kMinTtlSeconds) + " and " +
        std::to_string(kMaxTtlSeconds) + ".");
  }
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now_().time_since_epoch()).count();
  const uint64_t expiry = static_cast<uint64_t>(now_ms) + uint64_t{ttl_seconds} * 1000;
  uint8_t raw[kTokenBytes];
  StoreLe(expiry, raw);
  StoreLe(serial_++, raw + 8);
  const std::array<uint8_t, 16> tag =
      SipHash128(key_, std::string_view(reinterpret_cast<const char*>(raw), kPayloadBytes));
  std::memcpy(raw + kPayloadBytes, tag.data(), kTagBytes);
  std::string token;
  token.reserve(2 * kTokenBytes);
  for (uint8_t b : raw) {
    token.push_back(kHexDigits[b >> 4]);
    token.push_back(kHexDigits[b & 0xf]);
  }
  return token;
}

bool MmdsTokenAuthority::IsValid(std::string_view token) const {
  if (token.size() > kMaxTokenLength || token.size() != 2 * kTokenBytes) return false;
  uint8_t raw[kTokenBytes];
  for (size_t i = 0; i < kTokenBytes; ++i) {
    const int hi = HexValue(token[2 * i]), lo = HexValue(token[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  const std::array<uint8_t, 16> tag =
      SipHash128(key_, std::string_view(reinterpret_cast<const char*>(raw), kPayloadBytes));
  // Compared in full, so the time taken says nothing about how much matched.
  uint8_t diff = 0;
  for (size_t i = 0; i < kTagBytes; ++i) diff |= tag[i] ^ raw[kPayloadBytes + i];
  if (diff != 0) return false;
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now_().time_since_epoch()).count();
  return LoadLe(raw, 8) > static_cast<uint64_t>(now_ms);
}

}  // namespace ember
