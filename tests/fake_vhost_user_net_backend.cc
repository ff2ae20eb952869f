// A minimal vhost-user net backend for the Linux tests that run where DPDK
// testpmd cannot (it busy-polls a core, and the nested harness's outer VM
// has one): it listens on a socket, offers VIRTIO_F_VERSION_1 only (no
// protocol features, so no request needs an answer but GET_FEATURES), and
// takes every other message as it comes. It moves no packets: enough for a
// guest to find and start the device.
//
//   fake_vhost_user_net_backend SOCKET
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

constexpr uint32_t kGetFeatures = 1;
constexpr uint64_t kVersion1 = 1ull << 32;

bool ReadAll(int fd, void* data, size_t size) {
  auto* bytes = static_cast<uint8_t*>(data);
  while (size > 0) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    iovec iov{bytes, size};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &message, 0);
    if (n <= 0) return false;
    // Keep nothing: close the fds that came with the message.
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fake_vhost_user_net_backend SOCKET\n");
    return 2;
  }
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, argv[1], sizeof(address.sun_path) - 1);
  unlink(argv[1]);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, 1) != 0) {
    std::perror(argv[1]);
    return 1;
  }
  int frontend = accept(listener, nullptr, nullptr);
  uint32_t header[3];
  while (ReadAll(frontend, header, sizeof(header))) {
    uint8_t payload[512];
    if (header[2] > sizeof(payload) || !ReadAll(frontend, payload, header[2])) break;
    std::printf("request %u\n", header[0]);
    if (header[0] == kGetFeatures) {
      uint32_t reply[3] = {kGetFeatures, 0x1 | 0x4, 8};
      if (write(frontend, reply, sizeof(reply)) < 0 || write(frontend, &kVersion1, 8) < 0) break;
    }
  }
  return 0;
}
