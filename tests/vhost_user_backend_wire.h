#pragma once
// The backend's side of the vhost-user wire for the test backends
// (fake_vhost_user_net_backend, hostile_vhost_user_backend). Kept apart
// from ember's devices/vhost_user code on purpose: a misreading of the
// protocol there must not be copied into the backends that test it.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace ember::testing::wire {

constexpr uint32_t kGetFeatures = 1;
constexpr uint32_t kSetOwner = 3;
constexpr uint32_t kSetMemTable = 5;
constexpr uint32_t kGetVringBase = 11;
constexpr uint32_t kGetProtocolFeatures = 15;
constexpr uint32_t kGetQueueNum = 17;
constexpr uint32_t kGetMaxMemSlots = 36;
constexpr uint64_t kVersion1 = 1ull << 32;
constexpr uint64_t kProtocolFeatures = 1ull << 30;
constexpr uint64_t kProtocolReplyAck = 1ull << 3;
constexpr uint32_t kFlagNeedReply = 1u << 3;
constexpr uint32_t kReplyFlags = 0x1 | 0x4;  // version 1, a reply

// Reads exactly `size` bytes, closing every fd that comes with them (the
// test backends keep none).
inline bool ReadAll(int fd, void* data, size_t size) {
  auto* bytes = static_cast<uint8_t*>(data);
  while (size > 0) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    iovec iov{bytes, size};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        close(received);
      }
    }
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A listening socket at `path` (replacing what is there), or -1 after
// saying why on stderr.
inline int Listen(const char* path, int backlog) {
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
  unlink(path);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, backlog) != 0) {
    std::perror(path);
    close(listener);
    return -1;
  }
  return listener;
}

}  // namespace ember::testing::wire
