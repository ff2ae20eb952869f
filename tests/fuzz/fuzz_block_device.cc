// Fuzz target: a hostile virtio-blk driver. The input is the guest's
// memory where the rings and buffers live (descriptor table at 0, available
// ring at 0x1000, used ring at 0x2000, buffers anywhere in the first
// 64 KiB); byte 0 picks the queue size, byte 1 the engine (Sync, Async)
// and EVENT_IDX. The device serves one kick on its own thread. Nothing the
// bytes say may crash ember or touch memory outside guest RAM and the file.
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "devices/virtio/block_device.h"
#include "jail/seccomp.h"

namespace ember {
namespace {

constexpr uint64_t kMemory = 1 << 20;
constexpr uint64_t kWindow = 64 * 1024;  // where the input lands

struct Rig {
  GuestMemory memory;
  std::shared_ptr<BlockDevice> device[2];  // Sync, Async
  UniqueFd kick, interrupt;
};

Rig* MakeRig() {
  SetSeccompEnabled(false);  // the sanitizers make calls no filter lists
  spdlog::set_level(spdlog::level::off);
  Result<GuestMemory> memory = GuestMemory::Create(kMemory);
  if (!memory.ok()) std::abort();
  auto* rig = new Rig{std::move(*memory), {}, {}, {}};
  for (int async = 0; async < 2; ++async) {
    UniqueFd file(memfd_create("fuzz-drive", MFD_CLOEXEC));
    if (!file.valid() || ftruncate(file.get(), 64 * 1024) != 0) std::abort();
    BlockDeviceOptions options{"fuzz", false, true, 256, {}, async == 1};
    Result<std::shared_ptr<BlockDevice>> device = BlockDevice::Create(options, std::move(file));
    if (!device.ok()) std::abort();
    rig->device[async] = *device;
  }
  rig->kick.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  rig->interrupt.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
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
  std::vector<uint8_t> window(kWindow, 0);
  std::memcpy(window.data(), data + 2, std::min<size_t>(size - 2, kWindow));
  if (!rig->memory.Write(0, window).ok()) std::abort();
  const VirtQueueState queue{queue_size, true, 0, 0x1000, 0x2000};
  if (!ValidateQueue(rig->memory, 0, queue, 256).ok()) return 0;  // the transport refuses
  const int kicks[] = {rig->kick.get()};
  const uint64_t features = kVirtioFeatureVersion1 | (event_idx ? kVirtioFeatureRingEventIdx : 0);
  BlockDevice& device = *rig->device[async];
  if (!device
           .Activate(
               Activation{features, rig->memory, {&queue, 1}, kicks, rig->interrupt.get(), [] {}})
           .ok()) {
    return 0;
  }
  uint64_t one = 1;
  (void)!write(rig->kick.get(), &one, sizeof(one));
  device.Sync();
  device.Reset();
  return 0;
}
