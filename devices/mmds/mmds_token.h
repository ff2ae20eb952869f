// MMDS V2 session tokens (PUT /latest/api/token). A token carries its own
// expiry and a keyed tag over it, so the authority keeps no table: memory
// stays constant however many tokens a guest asks for. The key is 128 random
// bits drawn once; a forged or altered token fails the tag, an old one its
// expiry. Tokens do not survive the authority (a new key invalidates them),
// as Firecracker's do not survive a restore.
//
// Token: hex of expiry (ms on the authority's clock, 8 bytes LE) | serial
// (8 bytes LE, unique per token) | SipHash-2-4-128(key, expiry | serial).
//
// Thread-safety: none; MmdsStore serialises every call under its mutex.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ember {

// SipHash-2-4 with a 128-bit output (Aumasson and Bernstein), the keyed
// pseudo-random function that tags tokens.
std::array<uint8_t, 16> SipHash128(const std::array<uint8_t, 16>& key, std::string_view data);

class MmdsTokenAuthority {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Key = std::array<uint8_t, 16>;

  // Firecracker's bounds on X-metadata-token-ttl-seconds.
  static constexpr uint32_t kMinTtlSeconds = 1;
  static constexpr uint32_t kMaxTtlSeconds = 21600;
  // Longer strings are refused unread (Firecracker's limit too).
  static constexpr size_t kMaxTokenLength = 70;

  // A key from getrandom. `now` is the time source (tests move it).
  static Result<MmdsTokenAuthority> Create(Now now = Clock::now);
  MmdsTokenAuthority(const Key& key, Now now);

  // A token valid for `ttl_seconds`, or Firecracker's error for a TTL out of
  // [kMinTtlSeconds, kMaxTtlSeconds].
  Result<std::string> Generate(uint32_t ttl_seconds);
  // True for a token this authority issued whose expiry is still ahead.
  bool IsValid(std::string_view token) const;

 private:
  Key key_;
  Now now_;
  uint64_t serial_ = 0;
};

}  // namespace ember
