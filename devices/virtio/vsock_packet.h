// virtio-vsock's wire format (virtio 1.2, 5.10): the 44-byte little-endian
// header every packet starts with, its operations and flags. Plain values;
// linux/virtio_vsock.h describes the same layout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember::vsock {

constexpr uint64_t kHostCid = 2;
constexpr uint16_t kTypeStream = 1;

enum class Op : uint16_t {
  kInvalid = 0,
  kRequest = 1,
  kResponse = 2,
  kRst = 3,
  kShutdown = 4,
  kRw = 5,
  kCreditUpdate = 6,
  kCreditRequest = 7,
};

// SHUTDOWN flags: the sender will receive (kShutdownRcv) or send
// (kShutdownSend) no more.
constexpr uint32_t kShutdownRcv = 1;
constexpr uint32_t kShutdownSend = 2;
constexpr uint32_t kShutdownBoth = kShutdownRcv | kShutdownSend;

#pragma pack(push, 1)
struct PacketHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;  // payload bytes after the header
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;  // the sender's receive buffer for this stream
  uint32_t fwd_cnt;    // bytes the sender has consumed from it so far
};
#pragma pack(pop)
static_assert(sizeof(PacketHeader) == 44);
constexpr size_t kHeaderBytes = sizeof(PacketHeader);

}  // namespace ember::vsock
