// The device side of a split virtqueue, for devices whose data plane is in
// ember (virtio-blk): takes descriptor chains the driver made available and
// returns them through the used ring. Everything it reads is guest memory
// and hostile: chains are checked (in guest memory, no loops, no more
// descriptors than the queue holds, no indirect tables, which ember does
// not offer) before a device sees them. With EVENT_IDX the device asks
// for kicks and decides on interrupts as the spec's vring_need_event does.
//
// Thread-safety: one thread at a time (the device's worker).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/virtio/virtio_device.h"
#include "kvm/guest_memory.h"

namespace ember {

struct Descriptor {
  uint8_t* host;  // the buffer in ember's mapping of guest memory
  uint32_t length;
  bool device_writable;
};

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Descriptor> descriptors;
  size_t length = 0;  // all its buffers together
};

// Which buffers a queue's chains may hold: a receive queue only ones the
// device writes, a transmit queue only ones the driver wrote; a request
// queue (virtio-blk) both.
enum class ChainBuffers { kAny, kDriverWritten, kDeviceWritable };

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
  // says what is wrong (a buffer of the wrong direction for `buffers` makes
  // the chain bad too).
  Pop Next(DescriptorChain& chain, std::string& problem, ChainBuffers buffers = ChainBuffers::kAny);
  // Gives back the chain Next just returned, untouched: it is returned by
  // the next Next (a receive queue whose frame did not fit yet).
  void GoBack() { --next_available_; }
  // Returns a chain to the driver with `written` bytes written into it.
  void Complete(uint16_t head, uint32_t written);
  // VIRTIO_F_EVENT_IDX negotiated: used_event/avail_event instead of flags.
  void SetEventIdx(bool on) { event_idx_ = on; }
  // Whether the driver wants an interrupt for what was completed since the
  // last call (VRING_AVAIL_F_NO_INTERRUPT, or its used_event with EVENT_IDX).
  bool DriverWantsInterrupt();
  // The ring ran empty: with EVENT_IDX, asks for a kick at the next entry
  // (avail_event). True when entries arrived meanwhile: take them now, no
  // kick will come for them.
  bool ArmNotification();

 private:
  uint16_t AvailableIndex() const;

  const GuestMemory& memory_;
  const uint16_t size_;
  const uint8_t* descriptors_;  // struct vring_desc[size_]
  const uint8_t* available_;    // struct vring_avail
  uint8_t* used_;               // struct vring_used
  uint16_t next_available_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // next_used_ when the driver was last asked
  bool event_idx_ = false;
};

}  // namespace ember
