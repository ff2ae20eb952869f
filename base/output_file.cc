#include "base/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys_error.h"

namespace ember {

Result<UniqueFd> OpenOutputFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::Error(IoErrorText());
  return fd;
}

bool WriteWhole(int fd, const void* data, size_t size) {
  ssize_t written;
  do {
    written = write(fd, data, size);
  } while (written < 0 && errno == EINTR);
  if (written >= 0 && written != static_cast<ssize_t>(size)) errno = EAGAIN;
  return written == static_cast<ssize_t>(size);
}

}  // namespace ember
