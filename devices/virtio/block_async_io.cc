#include "devices/virtio/block_async_io.h"

#include <sys/eventfd.h>

#include <cstring>

namespace ember {

Result<std::unique_ptr<BlockAsyncIo>> BlockAsyncIo::Create(unsigned depth) {
  std::unique_ptr<BlockAsyncIo> io(new BlockAsyncIo());
  int rc = io_uring_queue_init(depth, &io->ring_, 0);
  if (rc < 0) {
    return Status::Error(std::string("io_engine Async: io_uring is not available here (") +
                         std::strerror(-rc) + "); use \"Sync\"");
  }
  io->ring_ready_ = true;
  io->completions_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!io->completions_.valid()) {
    return Status::Error(std::string("io_engine Async: eventfd: ") + std::strerror(errno));
  }
  rc = io_uring_register_eventfd(&io->ring_, io->completions_.get());
  if (rc < 0) {
    return Status::Error(std::string("io_engine Async: io_uring_register_eventfd: ") +
                         std::strerror(-rc));
  }
  return io;
}

BlockAsyncIo::~BlockAsyncIo() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

bool BlockAsyncIo::QueueTransfer(bool write, int fd, const std::vector<iovec>& iov, uint64_t offset,
                                 uint64_t token) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) return false;
  if (write) {
    io_uring_prep_writev(sqe, fd, iov.data(), static_cast<unsigned>(iov.size()), offset);
  } else {
    io_uring_prep_readv(sqe, fd, iov.data(), static_cast<unsigned>(iov.size()), offset);
  }
  io_uring_sqe_set_data64(sqe, token);
  return true;
}

bool BlockAsyncIo::QueueFlush(int fd, uint64_t token) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) return false;
  io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  io_uring_sqe_set_data64(sqe, token);
  return true;
}

void BlockAsyncIo::Submit() { io_uring_submit(&ring_); }

}  // namespace ember
