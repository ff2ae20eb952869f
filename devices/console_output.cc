#include "devices/console_output.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/metrics.h"
#include "base/output_file.h"
#include "base/sys_error.h"

namespace ember {

Result<std::unique_ptr<ConsoleOutput>> ConsoleOutput::Create(int fd) {
  UniqueFd ready(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!ready.valid()) return ErrnoStatus("serial console: eventfd");
  struct stat info {};
  const bool known = fd >= 0 && fstat(fd, &info) == 0;
  const bool socket = known && S_ISSOCK(info.st_mode);
  // A regular file (serial_out_path) is the disk's to fill: it may grow by
  // OutputFileLimit() bytes, later output is dropped and counted.
  const uint64_t room = known && S_ISREG(info.st_mode) ? OutputFileLimit() : UINT64_MAX;
  return std::unique_ptr<ConsoleOutput>(new ConsoleOutput(fd, socket, room, std::move(ready)));
}

void ConsoleOutput::Push(uint8_t byte) {
  if (fd_ < 0) return;
  std::lock_guard lock(mutex_);
  if (file_room_ == 0) {
    GlobalMetrics().uart_missed_writes.Add();
    return;
  }
  if (size_ == 0 && !socket_) {
    ssize_t written;
    do {
      written = write(fd_, &byte, 1);
    } while (written < 0 && errno == EINTR);
    if (written == 1) {
      if (file_room_ != UINT64_MAX) --file_room_;
      return;
    }
    if (written == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      GlobalMetrics().uart_missed_writes.Add();  // the reader is gone
      return;
    }
    // Full: this byte and the next wait in the buffer.
  }
  if (size_ == kCapacity) {
    // The reader is behind by a whole buffer: the oldest byte goes.
    head_ = (head_ + 1) % kCapacity;
    --size_;
    GlobalMetrics().uart_missed_writes.Add();
  }
  buffer_[(head_ + size_) % kCapacity] = byte;
  ++size_;
  if (!signalled_) {
    signalled_ = true;
    uint64_t one = 1;
    (void)!write(ready_.get(), &one, sizeof(one));
  }
}

bool ConsoleOutput::Drain() {
  uint64_t count;
  (void)!read(ready_.get(), &count, sizeof(count));
  std::lock_guard lock(mutex_);
  while (size_ > 0) {
    const size_t chunk = std::min(size_, kCapacity - head_);
    ssize_t n = socket_ ? send(fd_, &buffer_[head_], chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(fd_, &buffer_[head_], chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) {
      // The reader is gone (or the fd broke): what is left is lost.
      GlobalMetrics().uart_missed_writes.Add(size_);
      head_ = size_ = 0;
      break;
    }
    head_ = (head_ + static_cast<size_t>(n)) % kCapacity;
    size_ -= static_cast<size_t>(n);
  }
  head_ = 0;
  signalled_ = false;
  return true;
}

void ConsoleOutput::Discard() {
  std::lock_guard lock(mutex_);
  GlobalMetrics().uart_missed_writes.Add(size_);
  head_ = size_ = 0;
  signalled_ = false;
}

}  // namespace ember
