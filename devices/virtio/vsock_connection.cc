#include "devices/virtio/vsock_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ember {

void VsockConnection::UpdatePeerCredit(uint32_t buf_alloc, uint32_t fwd_cnt) {
  peer_buf_alloc_ = buf_alloc;
  peer_fwd_cnt_ = fwd_cnt;
}

uint32_t VsockConnection::PeerCredit() const {
  // Wrapping counters: what the guest holds unread is tx_cnt - fwd_cnt. A
  // guest that claims to have consumed more than it got gets no more credit
  // than its buffer.
  const uint32_t in_flight = tx_cnt_ - peer_fwd_cnt_;
  if (in_flight > peer_buf_alloc_) return 0;
  return peer_buf_alloc_ - in_flight;
}

vsock::PacketHeader VsockConnection::ResetHeader(uint64_t guest_cid, uint32_t host_port,
                                                 uint32_t guest_port) {
  vsock::PacketHeader header{};
  header.src_cid = vsock::kHostCid;
  header.dst_cid = guest_cid;
  header.src_port = host_port;
  header.dst_port = guest_port;
  header.type = vsock::kTypeStream;
  header.op = static_cast<uint16_t>(vsock::Op::kRst);
  return header;
}

vsock::PacketHeader VsockConnection::Header(uint64_t guest_cid, vsock::Op op, uint32_t len,
                                            uint32_t flags) {
  vsock::PacketHeader header = ResetHeader(guest_cid, local_port_, peer_port_);
  header.len = len;
  header.op = static_cast<uint16_t>(op);
  header.flags = flags;
  header.buf_alloc = kBufferBytes;
  header.fwd_cnt = fwd_cnt_;
  last_fwd_cnt_sent_ = fwd_cnt_;
  return header;
}

bool VsockConnection::WithinCredit(uint32_t bytes) const {
  return static_cast<uint64_t>(rx_cnt_ - fwd_cnt_) + bytes <= kBufferBytes;
}

void VsockConnection::Forwarded(size_t bytes) { fwd_cnt_ += static_cast<uint32_t>(bytes); }

bool VsockConnection::SendToHost(std::span<const iovec> data) {
  size_t total = 0;
  for (const iovec& part : data) total += part.iov_len;
  rx_cnt_ += static_cast<uint32_t>(total);
  size_t written = 0;
  if (to_host_.empty() && total > 0) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(data.data());
    message.msg_iovlen = data.size();
    ssize_t n = sendmsg(socket_.get(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    written = n > 0 ? static_cast<size_t>(n) : 0;
    Forwarded(written);
  }
  // Keep what the socket did not take (within the credit: at most kBufferBytes).
  size_t skip = written;
  for (const iovec& part : data) {
    const auto* bytes = static_cast<const uint8_t*>(part.iov_base);
    if (skip >= part.iov_len) {
      skip -= part.iov_len;
      continue;
    }
    to_host_.insert(to_host_.end(), bytes + skip, bytes + part.iov_len);
    skip = 0;
  }
  return true;
}

bool VsockConnection::FlushToHost() {
  while (!to_host_.empty()) {
    ssize_t n = send(socket_.get(), to_host_.data(), to_host_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    to_host_.erase(to_host_.begin(), to_host_.begin() + n);
    Forwarded(static_cast<size_t>(n));
  }
  return true;
}

bool VsockConnection::CreditUpdateDue() const {
  // The guest thinks ember has kBufferBytes - (rx_cnt - last_fwd_cnt_sent)
  // free; below a quarter of the buffer it tells what it has freed since.
  const uint32_t guest_view_used = rx_cnt_ - last_fwd_cnt_sent_;
  return fwd_cnt_ != last_fwd_cnt_sent_ && guest_view_used > kBufferBytes - kBufferBytes / 4;
}

}  // namespace ember
