// Shared by the firmware tables ember writes (MP table, ACPI): appending
// packed structures and the 8-bit checksums that make a table sum to zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::x86 {

// The byte that makes `bytes` sum to zero (mod 256) when stored among them.
inline uint8_t TableChecksum(const uint8_t* bytes, size_t length) {
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return static_cast<uint8_t>(-sum);
}

template <typename T>
void AppendBytes(std::vector<uint8_t>& out, const T& value) {
  auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

}  // namespace ember::x86
