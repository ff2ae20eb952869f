#include "base/instance_id.h"

#include <cstdio>
#include <string>

namespace ember {

Status ValidateInstanceId(std::string_view id) {
  constexpr size_t kMaxBytes = 64;
  if (id.empty() || id.size() > kMaxBytes) {
    return Status::Error("Invalid len (" + std::to_string(id.size()) +
                         ");  the length must be between 1 and 64");
  }
  for (size_t at = 0; at < id.size(); ++at) {
    const unsigned char c = static_cast<unsigned char>(id[at]);
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || c == '-') continue;
    std::string shown(1, static_cast<char>(c));
    if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      shown = hex;
    }
    return Status::Error("Invalid char (" + shown + ") at position " + std::to_string(at));
  }
  return Status::Ok();
}

}  // namespace ember
