// A virtio device type (fs, net) as the virtio-mmio transport sees it:
// identity, queues, features, config space, and activation once the driver
// has set DRIVER_OK. The transport owns registers and negotiation.
//
// Thread-safety: called by the transport, which serialises calls under its
// own lock (they come from vCPU threads).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/status.h"
#include "kvm/guest_memory.h"

namespace ember {

constexpr uint64_t kVirtioFeatureVersion1 = 1ull << 32;
constexpr uint64_t kVirtioFeatureRingIndirectDesc = 1ull << 28;
constexpr uint64_t kVirtioFeatureRingEventIdx = 1ull << 29;

struct VirtQueueState {
  uint16_t size = 0;
  bool ready = false;
  uint64_t descriptor_address = 0;
  uint64_t available_address = 0;  // the "driver area"
  uint64_t used_address = 0;       // the "device area"
};

struct Activation {
  uint64_t acked_features;
  const GuestMemory& memory;
  std::span<const VirtQueueState> queues;
  std::span<const int> kick_fds;  // one per queue
  int interrupt_fd;               // raises the device's interrupt line
  // Callable from any thread: the device found the driver's rings broken
  // and stopped; the driver sees DEVICE_NEEDS_RESET.
  std::function<void()> needs_reset;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_type() const = 0;
  virtual uint16_t queue_count() const = 0;
  virtual uint16_t max_queue_size() const = 0;
  // Offered to the driver; includes kVirtioFeatureVersion1.
  virtual uint64_t device_features() const = 0;
  virtual void ReadConfig(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void WriteConfig(uint64_t offset, std::span<const uint8_t> data) = 0;
  // DRIVER_OK: features and queues are final. An error puts the device in
  // DEVICE_NEEDS_RESET.
  virtual Status Activate(const Activation& activation) = 0;
  // The driver reset the device (status 0).
  virtual void Reset() = 0;
};

// Checks a queue the driver made ready: size, alignment, and that its three
// areas lie in guest memory. The message names the queue and the problem.
Status ValidateQueue(const GuestMemory& memory, uint16_t index, const VirtQueueState& queue,
                     uint16_t max_size);

}  // namespace ember
