// The Async io_engine of drives: reads, writes and flushes submitted to an
// io_uring (Debian's liburing), whose completions raise an eventfd that the
// drive's worker polls with its kicks. The ring is set up when the drive is
// built (before any seccomp filter); the worker then needs io_uring_enter
// only.
//
// Thread-safety: one thread at a time (the drive's worker).
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

class BlockAsyncIo {
 public:
  // A ring with room for `depth` requests at once. Fails, saying what to
  // use instead, where io_uring is not available (old kernel, a container
  // or sysctl that forbids it).
  static Result<std::unique_ptr<BlockAsyncIo>> Create(unsigned depth);
  ~BlockAsyncIo();
  BlockAsyncIo(const BlockAsyncIo&) = delete;
  BlockAsyncIo& operator=(const BlockAsyncIo&) = delete;

  int completion_fd() const { return completions_.get(); }

  // Queue one request (sent by Submit). `iov` must stay valid until its
  // completion is reaped. False when the ring is full.
  bool QueueTransfer(bool write, int fd, const std::vector<iovec>& iov, uint64_t offset,
                     uint64_t token);
  bool QueueFlush(int fd, uint64_t token);
  void Submit();

  // Hands each finished request's token and result (bytes, or -errno) to
  // `done`; with `wait`, blocks until at least one has finished.
  template <typename Done>
  void Reap(bool wait, Done done) {
    io_uring_cqe* cqe = nullptr;
    if (wait && io_uring_wait_cqe(&ring_, &cqe) != 0) return;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      done(static_cast<uint64_t>(cqe->user_data), cqe->res);
      io_uring_cqe_seen(&ring_, cqe);
    }
  }

 private:
  BlockAsyncIo() = default;

  io_uring ring_{};
  bool ring_ready_ = false;
  UniqueFd completions_;
};

}  // namespace ember
