// Fuzz target: a guest's register accesses to a virtio-mmio transport (any
// order, any width, any value: a driver that skips steps, re-negotiates,
// readies queues outside RAM, resets in the middle), with ember's
// virtio-blk behind it and the rings in guest memory. Input: bytes 0-1 how
// many of the following bytes are guest memory (64 KiB window at 0), the
// rest accesses of 7 bytes each: kind (bit 0 write, bits 1-2 width 1/2/4/8),
// offset (2 bytes, within the 4 KiB window), value (4 bytes). Ends with a
// reset, as a guest that reboots does.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "devices/virtio/block_device.h"
#include "devices/virtio/mmio_transport.h"
#include "tests/fuzz/fuzz_queues.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static FuzzQueues* queues = new FuzzQueues(FuzzQueues::Create(1));
  static std::shared_ptr<BlockDevice> device = [] {
    UniqueFd file(memfd_create("fuzz-drive", MFD_CLOEXEC));
    if (!file.valid() || ftruncate(file.get(), 64 * 1024) != 0) std::abort();
    Result<std::shared_ptr<BlockDevice>> created =
        BlockDevice::Create({"fuzz", false, true, 256, {}, false}, std::move(file));
    if (!created.ok()) std::abort();
    return *created;
  }();
  if (size < 2) return 0;
  const size_t memory_bytes = std::min<size_t>(data[0] | data[1] << 8, size - 2);
  queues->LoadWindow(data + 2, memory_bytes);
  std::vector<UniqueFd> kicks;
  kicks.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  VirtioMmioTransport transport("fuzz", device, queues->memory(), std::move(kicks),
                                UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));
  for (size_t at = 2 + memory_bytes; at + 7 <= size; at += 7) {
    const bool is_write = data[at] & 1;
    const size_t width = size_t{1} << ((data[at] >> 1) & 3);
    const uint64_t offset = (data[at + 1] | data[at + 2] << 8) % VirtioMmioTransport::kWindowSize;
    uint8_t value[8] = {};
    std::memcpy(value, data + at + 3, 4);
    if (is_write) {
      transport.Write(offset, {value, width});
    } else {
      transport.Read(offset, {value, width});
    }
  }
  const uint8_t zero[4] = {};
  transport.Write(0x70, zero);  // STATUS = 0: reset, the worker stops
  return 0;
}
