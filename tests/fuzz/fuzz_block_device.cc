// Fuzz target: a hostile virtio-blk driver. The input is the guest's
// memory where the rings and buffers live (descriptor table at 0, available
// ring at 0x1000, used ring at 0x2000, buffers anywhere in the first
// 64 KiB); byte 0 picks the queue size, byte 1 the engine (Sync, Async)
// and EVENT_IDX. The device serves one kick on its own thread. Nothing the
// bytes say may crash ember or touch memory outside guest RAM and the file.
#include <sys/mman.h>
#include <unistd.h>

#include "devices/virtio/block_device.h"
#include "tests/fuzz/fuzz_queues.h"

namespace ember {
namespace {

struct Rig {
  FuzzQueues queues;
  std::shared_ptr<BlockDevice> device[2];  // Sync, Async
};

Rig* MakeRig() {
  auto* rig = new Rig{FuzzQueues::Create(1), {}};
  for (int async = 0; async < 2; ++async) {
    UniqueFd file(memfd_create("fuzz-drive", MFD_CLOEXEC));
    if (!file.valid() || ftruncate(file.get(), 64 * 1024) != 0) std::abort();
    BlockDeviceOptions options{"fuzz", false, true, 256, {}, async == 1};
    Result<std::shared_ptr<BlockDevice>> device = BlockDevice::Create(options, std::move(file));
    if (!device.ok()) std::abort();
    rig->device[async] = *device;
  }
  return rig;
}

}  // namespace
}  // namespace ember

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static Rig* rig = MakeRig();
  if (size < 2) return 0;
  const uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));  // 1 to 256
  const bool async = data[1] & 1;
  const bool event_idx = data[1] & 2;
  rig->queues.LoadWindow(data + 2, size - 2);
  if (!rig->queues.SetUpQueues(queue_size)) return 0;  // the transport refuses
  const uint64_t features = kVirtioFeatureVersion1 | (event_idx ? kVirtioFeatureRingEventIdx : 0);
  BlockDevice& device = *rig->device[async];
  if (!device.Activate(rig->queues.MakeActivation(features)).ok()) return 0;
  rig->queues.KickAll();
  device.Sync();
  device.Reset();
  return 0;
}
