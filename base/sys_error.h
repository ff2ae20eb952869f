// Builds a Status from errno for a failed system call.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "base/status.h"

namespace ember {

inline Status ErrnoStatus(const std::string& what, int err = errno) {
  return Status::Error(what + ": " + std::strerror(err));
}

}  // namespace ember
