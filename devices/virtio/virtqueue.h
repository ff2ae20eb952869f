// The device side of a split virtqueue, for devices whose data plane is in
// ember (virtio-blk): takes descriptor chains the driver made available and
// returns them through the used ring. Everything it reads is guest memory
// and hostile: chains are checked (in guest memory, no loops, no more
// descriptors than the queue holds, no indirect tables, which ember does
// not offer) before a device sees them.
//
// Thread-safety: one thread at a time (the device's worker).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/virtio/virtio_device.h"
#include "vmm/guest_memory.h"

namespace ember {

struct Descriptor {
  uint8_t* host;  // the buffer in ember's mapping of guest memory
  uint32_t length;
  bool device_writable;
};

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Descriptor> descriptors;
};

class VirtQueue {
 public:
  enum class Pop {
    kEmpty,       // nothing available
    kChain,       // `chain` holds a checked chain
    kBadChain,    // `chain.head` is set; the chain itself is malformed
    kBrokenRing,  // the available ring makes no sense: the device must stop
  };

  VirtQueue(const GuestMemory& memory, const VirtQueueState& state);

  // Takes the next available chain. On kBadChain and kBrokenRing, `problem`
  // says what is wrong.
  Pop Next(DescriptorChain& chain, std::string& problem);
  // Gives back the chain Next just returned, untouched: it is returned by
  // the next Next (a receive queue whose frame did not fit yet).
  void GoBack() { --next_available_; }
  // Returns a chain to the driver with `written` bytes written into it.
  void Complete(uint16_t head, uint32_t written);
  // Whether the driver wants an interrupt for what was completed (it can
  // suppress them with VRING_AVAIL_F_NO_INTERRUPT; EVENT_IDX is not offered).
  bool DriverWantsInterrupt() const;

 private:
  uint16_t AvailableIndex() const;

  const GuestMemory& memory_;
  const uint16_t size_;
  const uint8_t* descriptors_;  // struct vring_desc[size_]
  const uint8_t* available_;    // struct vring_avail
  uint8_t* used_;               // struct vring_used
  uint16_t next_available_ = 0;
  uint16_t next_used_ = 0;
};

}  // namespace ember
