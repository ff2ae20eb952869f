// "0x1f" formatting for addresses in messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ember {

inline std::string Hex(uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof(buffer), "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

}  // namespace ember
