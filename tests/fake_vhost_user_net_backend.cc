// A minimal vhost-user net backend for the Linux tests that run where DPDK
// testpmd cannot (it busy-polls a core, and the nested harness's outer VM
// has one): it listens on a socket, offers VIRTIO_F_VERSION_1 only (no
// protocol features, so no request needs an answer but GET_FEATURES), and
// takes every other message as it comes. It moves no packets: enough for a
// guest to find and start the device.
//
//   fake_vhost_user_net_backend SOCKET [--slow-mem-table MS]
//
// With --slow-mem-table it also offers PROTOCOL_FEATURES with REPLY_ACK, so
// ember waits for an answer to every request, and answers the first
// SET_MEM_TABLE (the start of a device's activation) only after MS
// milliseconds: a backend that stalls in the middle of a negotiation.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "vhost_user_backend_wire.h"

namespace {

using namespace ember::testing::wire;

bool Reply(int fd, uint32_t request, uint64_t value) {
  uint32_t header[3] = {request, kReplyFlags, 8};
  return write(fd, header, sizeof(header)) == sizeof(header) && write(fd, &value, 8) == 8;
}

}  // namespace

int main(int argc, char** argv) {
  long slow_mem_table_ms = -1;
  if (argc == 4 && std::strcmp(argv[2], "--slow-mem-table") == 0) {
    slow_mem_table_ms = std::atol(argv[3]);
  } else if (argc != 2) {
    std::fprintf(stderr, "usage: fake_vhost_user_net_backend SOCKET [--slow-mem-table MS]\n");
    return 2;
  }
  const bool acks = slow_mem_table_ms >= 0;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int listener = Listen(argv[1], 1);
  if (listener < 0) return 1;
  int frontend = accept(listener, nullptr, nullptr);
  uint32_t header[3];
  while (ReadAll(frontend, header, sizeof(header))) {
    uint8_t payload[512];
    if (header[2] > sizeof(payload) || !ReadAll(frontend, payload, header[2])) break;
    std::printf("request %u\n", header[0]);
    const uint32_t request = header[0];
    bool answered = true;
    if (request == kGetFeatures) {
      answered = Reply(frontend, request, acks ? kVersion1 | kProtocolFeatures : kVersion1);
    } else if (request == kGetProtocolFeatures) {
      answered = Reply(frontend, request, kProtocolReplyAck);
    } else if (request == kGetVringBase) {
      uint32_t index = 0;
      if (header[2] >= 4) std::memcpy(&index, payload, 4);
      answered = Reply(frontend, request, index);  // the ring's index, then 0 as its base
    } else if (header[1] & kFlagNeedReply) {
      if (request == kSetMemTable && slow_mem_table_ms > 0) {
        std::printf("stalling %ld ms\n", slow_mem_table_ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(slow_mem_table_ms));
        std::printf("answering\n");
        slow_mem_table_ms = 0;
      }
      answered = Reply(frontend, request, 0);  // REPLY_ACK: success
    }
    if (!answered) break;
  }
  return 0;
}
