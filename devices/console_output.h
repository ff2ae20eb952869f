// Guest console output on its way from the serial port to ember's stdout or
// serial_out_path. While the reader keeps up, a vCPU writes each byte
// straight to the fd (non-blocking: one syscall, no other thread woken).
// When the fd is full, bytes go into a bounded buffer instead and the VMM
// thread drains it as the reader catches up; a reader that stalls costs the
// oldest output (dropped and counted as uart.missed_write_count), never a
// vCPU. A stdout that is a socket always goes through the buffer: the VMM
// thread sends with MSG_DONTWAIT, which vCPU filters do not allow.
//
// Thread-safety: Push from vCPU threads; Drain from the VMM thread. One
// mutex covers the buffer and orders the writes; it is held only for
// non-blocking writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

class ConsoleOutput {
 public:
  static constexpr size_t kCapacity = 64 * 1024;

  // `fd` must not block (a pipe, FIFO or terminal opened O_NONBLOCK, a
  // regular file, or a socket: written with MSG_DONTWAIT); -1 discards.
  static Result<std::unique_ptr<ConsoleOutput>> Create(int fd);

  void Push(uint8_t byte);
  // Readable when output waits to be drained.
  int ready_fd() const { return ready_.get(); }
  int fd() const { return fd_; }
  // Writes what the fd takes now. False when output remains because the fd
  // is full: drain again when it is writable.
  bool Drain();
  // Drops what waits (counted as missed writes) when it cannot be drained
  // later; the next byte tries the fd again.
  void Discard();

 private:
  ConsoleOutput(int fd, bool socket, uint64_t file_room, UniqueFd ready)
      : fd_(fd),
        socket_(socket),
        ready_(std::move(ready)),
        buffer_(kCapacity),
        file_room_(file_room) {}

  const int fd_;
  const bool socket_;
  const UniqueFd ready_;  // eventfd

  std::mutex mutex_;
  std::vector<uint8_t> buffer_;  // a ring of kCapacity bytes
  size_t head_ = 0;              // oldest byte
  size_t size_ = 0;
  bool signalled_ = false;
  uint64_t file_room_;  // bytes a regular file may still take (UINT64_MAX: not a file)  // ready_
                        // was written since the last Drain emptied the ring
};

}  // namespace ember
