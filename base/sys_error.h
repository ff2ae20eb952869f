// Builds a Status from errno for a failed system call.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "base/status.h"

namespace ember {

// errno as Firecracker shows an I/O error: "No such file or directory (os
// error 2)". Its tooling matches on that text.
inline std::string IoErrorText(int err = errno) {
  return std::string(std::strerror(err)) + " (os error " + std::to_string(err) + ")";
}

inline Status ErrnoStatus(const std::string& what, int err = errno) {
  return Status::Error(what + ": " + std::strerror(err));
}

}  // namespace ember
