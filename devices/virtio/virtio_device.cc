#include "devices/virtio/virtio_device.h"

#include <string>

#include "base/hex.h"

namespace ember {

Status ValidateQueue(const GuestMemory& memory, uint16_t index, const VirtQueueState& queue,
                     uint16_t max_size) {
  const std::string name = "queue " + std::to_string(index);
  const uint64_t n = queue.size;
  if (n == 0 || n > max_size || (n & (n - 1)) != 0) {
    return Status::Error(name + ": size " + std::to_string(n) + " is not a power of two up to " +
                         std::to_string(max_size));
  }
  struct Area {
    const char* what;
    uint64_t address;
    uint64_t bytes;
    uint64_t alignment;
  } areas[] = {{"descriptor table", queue.descriptor_address, 16 * n, 16},
               {"available ring", queue.available_address, 6 + 2 * n, 2},
               {"used ring", queue.used_address, 6 + 8 * n, 4}};
  for (const Area& area : areas) {
    if (area.address % area.alignment != 0) {
      return Status::Error(name + ": " + area.what + " at " + Hex(area.address) + " is not " +
                           std::to_string(area.alignment) + "-byte aligned");
    }
    if (!memory.Contains(area.address, area.bytes)) {
      return Status::Error(name + ": " + area.what + " at " + Hex(area.address) +
                           " is outside guest memory");
    }
  }
  return Status::Ok();
}

}  // namespace ember
