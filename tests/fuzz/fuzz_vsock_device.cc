// Fuzz target: a hostile virtio-vsock driver, and host clients that send
// what they like on uds_path. Input: byte 0 the queue size, bytes 1-2 how
// many of the following bytes are guest memory (receive rings at
// 0/0x1000/0x2000, transmit rings at 0x4000/0x5000/0x6000, packets and
// buffers anywhere in the first 64 KiB); the rest are host clients (1-byte
// length, then what the client writes, e.g. "CONNECT 1024\n" and data).
// A listener on uds_path_5000 takes guest-initiated streams. The device
// serves the kicks and the clients, then is reset.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "devices/virtio/vsock_device.h"
#include "tests/fuzz/fuzz_queues.h"

namespace ember {
namespace {

struct Rig {
  FuzzQueues queues;
  std::string dir;
  std::shared_ptr<VsockDevice> device;
  UniqueFd listener;
};

int UnixSocket(const std::string& path, bool listen_on_it) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const auto* raw = reinterpret_cast<const sockaddr*>(&address);
  const bool ok = listen_on_it ? bind(fd, raw, sizeof(address)) == 0 && listen(fd, 64) == 0
                               : connect(fd, raw, sizeof(address)) == 0;
  if (!ok) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string* rig_dir = nullptr;  // removed at exit

void RemoveRigDir() {
  if (rig_dir == nullptr) return;
  for (const char* name : {"/v.sock", "/v.sock_5000"}) unlink((*rig_dir + name).c_str());
  rmdir(rig_dir->c_str());
}

Rig* MakeRig() {
  char dir[] = "/tmp/ember-fuzz-vsock-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  auto* rig = new Rig{FuzzQueues::Create(3), dir, {}, {}};
  rig_dir = &rig->dir;
  std::atexit(RemoveRigDir);
  Result<std::shared_ptr<VsockDevice>> device = VsockDevice::Create({3, rig->dir + "/v.sock", 256});
  if (!device.ok()) std::abort();
  rig->device = *device;
  rig->listener.reset(UnixSocket(rig->dir + "/v.sock_5000", true));
  return rig;
}

}  // namespace
}  // namespace ember

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static Rig* rig = MakeRig();
  if (size < 3) return 0;
  const uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));
  const size_t memory_bytes = std::min<size_t>(data[1] | data[2] << 8, size - 3);
  rig->queues.LoadWindow(data + 3, memory_bytes);
  if (!rig->queues.SetUpQueues(queue_size)) return 0;
  VsockDevice& device = *rig->device;
  const uint64_t features =
      kVirtioFeatureVersion1 | (data[0] & 0x80 ? kVirtioFeatureRingEventIdx : 0);
  if (!device.Activate(rig->queues.MakeActivation(features)).ok()) return 0;
  std::vector<UniqueFd> clients;
  for (size_t at = 3 + memory_bytes; at + 1 <= size && clients.size() < 16;) {
    const size_t length = std::min<size_t>(data[at], size - at - 1);
    UniqueFd client(UnixSocket(rig->dir + "/v.sock", false));
    if (client.valid()) (void)!send(client.get(), data + at + 1, length, MSG_NOSIGNAL);
    clients.push_back(std::move(client));
    at += 1 + length;
  }
  for (int round = 0; round < 2; ++round) {
    rig->queues.KickAll();
    device.Sync();
  }
  device.Reset();
  // Guest-initiated streams the listener took: gone before the next input.
  while (true) {
    int accepted = accept4(rig->listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (accepted < 0) break;
    close(accepted);
  }
  return 0;
}
