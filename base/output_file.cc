#include "base/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "base/sys_error.h"

namespace ember {
namespace {

std::atomic<uint64_t> g_output_file_limit{uint64_t{1} << 30};

}  // namespace

void SetOutputFileLimit(uint64_t bytes) { g_output_file_limit = bytes; }
uint64_t OutputFileLimit() { return g_output_file_limit.load(); }

Result<UniqueFd> OpenOutputFile(const std::string& path) {
  UniqueFd fd(
      open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0600));
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
