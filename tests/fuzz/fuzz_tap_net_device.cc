// Fuzz target: a hostile virtio-net driver on a TAP, and whatever frames
// the TAP hands over. Input: byte 0 the queue size, byte 1 the acked
// offloads and EVENT_IDX (bits 0-4) and whether the interface carries MMDS
// (bit 5: then frames for 169.254.169.254 reach the MMDS stack, whose
// connections live on from input to input), bytes 2-3 how many of the following bytes are
// guest memory (receive rings at 0/0x1000/0x2000, transmit rings at
// 0x4000/0x5000/0x6000, buffers anywhere in the first 64 KiB); the rest
// are frames (2-byte length, then the bytes) written to the "TAP", a
// SEQPACKET socket pair. The device serves one kick of each queue.
#include <sys/socket.h>
#include <unistd.h>

#include "devices/mmds/mmds_store.h"
#include "devices/virtio/tap_net_device.h"
#include "tests/fuzz/fuzz_queues.h"

namespace ember {
namespace {

struct Rig {
  FuzzQueues queues;
  std::shared_ptr<TapNetDevice> device;
  UniqueFd host;
};

Rig* MakeRig(bool mmds) {
  auto* rig = new Rig{FuzzQueues::Create(2), {}, {}};
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0)
    std::abort();
  rig->host.reset(pair[0]);
  TapNetOptions options;
  options.iface_id = "fuzz";
  options.tap_name = "fuzz";
  if (mmds) {
    Result<std::shared_ptr<MmdsStore>> store = MmdsStore::Create();
    if (!store.ok()) std::abort();
    if (!(*store)
             ->Put(nlohmann::json::parse(R"({"latest":{"meta-data":{"ami-id":"ami-123"}}})"))
             .ok()) {
      std::abort();
    }
    options.mmds = *store;
  }
  Result<std::shared_ptr<TapNetDevice>> device =
      TapNetDevice::Create(std::move(options), UniqueFd(pair[1]));
  if (!device.ok()) std::abort();
  rig->device = *device;
  return rig;
}

}  // namespace
}  // namespace ember

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static Rig* plain = MakeRig(false);
  static Rig* with_mmds = MakeRig(true);
  if (size < 4) return 0;
  Rig* rig = (data[1] >> 5) & 1 ? with_mmds : plain;
  const uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));
  // What the driver "acked": EVENT_IDX and the receive offloads (GUEST_CSUM
  // bit 1, GUEST_TSO4 7, GUEST_TSO6 8, GUEST_UFO 10), one input bit each.
  auto acked = [&](unsigned input_bit, uint64_t feature) {
    return (data[1] >> input_bit) & 1 ? feature : 0;
  };
  const uint64_t features = kVirtioFeatureVersion1 | acked(0, kVirtioFeatureRingEventIdx) |
                            acked(1, 1ull << 1) | acked(2, 1ull << 7) | acked(3, 1ull << 8) |
                            acked(4, 1ull << 10);
  const size_t memory_bytes = std::min<size_t>(data[2] | data[3] << 8, size - 4);
  rig->queues.LoadWindow(data + 4, memory_bytes);
  if (!rig->queues.SetUpQueues(queue_size)) return 0;
  TapNetDevice& device = *rig->device;
  if (!device.Activate(rig->queues.MakeActivation(features)).ok()) return 0;
  // The frames, as the TAP would hand them over.
  for (size_t at = 4 + memory_bytes; at + 2 <= size;) {
    const size_t length = std::min<size_t>(data[at] | data[at + 1] << 8, size - at - 2);
    (void)!write(rig->host.get(), data + at + 2, length);
    at += 2 + length;
  }
  rig->queues.KickAll();
  device.Sync();
  device.Reset();
  // What the guest sent, and frames it never took: gone before the next input.
  uint8_t sink[70000];
  while (read(rig->host.get(), sink, sizeof(sink)) > 0) {
  }
  return 0;
}
