// pread until `length` bytes are read or the file ends; returns how many
// bytes were read (fewer than asked only at end of file).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "base/sys_error.h"

namespace ember {

inline Result<uint64_t> PreadFull(int fd, void* out, uint64_t length, uint64_t offset,
                                  const std::string& what) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, static_cast<uint8_t*>(out) + done, length - done,
                      static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading " + what);
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return done;
}

}  // namespace ember
