#include "devices/virtio/virtqueue.h"

#include <atomic>
#include <cstring>

#include "base/hex.h"

namespace ember {
namespace {

template <typename T>
T Load(const uint8_t* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <typename T>
void Store(uint8_t* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}

// The driver publishes ring indexes last; reading one with acquire makes
// the entries it covers visible, and release on ours publishes the entries.
uint16_t LoadAcquire(const uint8_t* at) {
  return std::atomic_ref<const uint16_t>(*reinterpret_cast<const uint16_t*>(at))
      .load(std::memory_order_acquire);
}

void StoreRelease(uint8_t* at, uint16_t value) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(at))
      .store(value, std::memory_order_release);
}

// linux/virtio_ring.h's flags (the header itself is not valid C++).
constexpr uint16_t VRING_DESC_F_NEXT = 1;
constexpr uint16_t VRING_DESC_F_WRITE = 2;
constexpr uint16_t VRING_DESC_F_INDIRECT = 4;
constexpr uint16_t VRING_AVAIL_F_NO_INTERRUPT = 1;

constexpr uint64_t kAvailRingOffset = 4;  // flags, idx
constexpr uint64_t kUsedRingOffset = 4;

}  // namespace

// ValidateQueue has checked that the three areas lie in guest memory.
VirtQueue::VirtQueue(const GuestMemory& memory, const VirtQueueState& state)
    : memory_(memory),
      size_(state.size),
      descriptors_(memory.HostAddress(state.descriptor_address, 16ull * state.size)),
      available_(memory.HostAddress(state.available_address, 6 + 2ull * state.size)),
      used_(memory.HostAddress(state.used_address, 6 + 8ull * state.size)) {
  // The rings may hold entries from before a reset of ember's side only if
  // the driver kept them; a fresh activation starts where the rings are.
  next_used_ = LoadAcquire(used_ + 2);
  next_available_ = next_used_;
  signalled_used_ = next_used_;
}

uint16_t VirtQueue::AvailableIndex() const { return LoadAcquire(available_ + 2); }

VirtQueue::Pop VirtQueue::Next(DescriptorChain& chain, std::string& problem, ChainBuffers buffers) {
  const uint16_t available = AvailableIndex();
  if (available == next_available_) return Pop::kEmpty;
  if (static_cast<uint16_t>(available - next_available_) > size_) {
    problem = "available index " + std::to_string(available) + " is more than " +
              std::to_string(size_) + " ahead of " + std::to_string(next_available_);
    return Pop::kBrokenRing;
  }
  const uint16_t slot = next_available_ % size_;
  const uint16_t head = Load<uint16_t>(available_ + kAvailRingOffset + 2ull * slot);
  if (head >= size_) {
    problem =
        "available ring names descriptor " + std::to_string(head) + " of " + std::to_string(size_);
    return Pop::kBrokenRing;
  }
  ++next_available_;
  chain.head = head;
  chain.descriptors.clear();
  chain.length = 0;
  uint16_t index = head;
  for (;;) {
    // More descriptors than the table holds can only be a loop.
    if (chain.descriptors.size() == size_) {
      problem = "descriptor chain from " + std::to_string(head) + " loops";
      return Pop::kBadChain;
    }
    const uint8_t* entry = descriptors_ + 16ull * index;
    const uint64_t address = Load<uint64_t>(entry);
    const uint32_t length = Load<uint32_t>(entry + 8);
    const uint16_t flags = Load<uint16_t>(entry + 12);
    const uint16_t next = Load<uint16_t>(entry + 14);
    if (flags & VRING_DESC_F_INDIRECT) {
      problem = "descriptor " + std::to_string(index) + " is indirect, which was not offered";
      return Pop::kBadChain;
    }
    uint8_t* host = memory_.HostAddress(address, length);
    if (host == nullptr && length != 0) {
      problem = "descriptor " + std::to_string(index) + " (" + Hex(address) + ", " +
                std::to_string(length) + " bytes) is outside guest memory";
      return Pop::kBadChain;
    }
    const bool writable = (flags & VRING_DESC_F_WRITE) != 0;
    if ((buffers == ChainBuffers::kDeviceWritable && !writable) ||
        (buffers == ChainBuffers::kDriverWritten && writable)) {
      problem = writable ? "a buffer the device may write, in a transmit chain"
                         : "a buffer the device may not write, in a receive chain";
      return Pop::kBadChain;
    }
    chain.descriptors.push_back({host, length, writable});
    chain.length += length;
    if (!(flags & VRING_DESC_F_NEXT)) return Pop::kChain;
    if (next >= size_) {
      problem = "descriptor " + std::to_string(index) + " links to " + std::to_string(next) +
                " of " + std::to_string(size_);
      return Pop::kBadChain;
    }
    index = next;
  }
}

void VirtQueue::Complete(uint16_t head, uint32_t written) {
  uint8_t* element = used_ + kUsedRingOffset + 8ull * (next_used_ % size_);
  Store<uint32_t>(element, head);
  Store<uint32_t>(element + 4, written);
  ++next_used_;
  StoreRelease(used_ + 2, next_used_);
}

bool VirtQueue::DriverWantsInterrupt() {
  // Our used index must be visible before the driver's flags are read, or
  // a driver re-enabling interrupts meanwhile could miss this one.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = signalled_used_;
  signalled_used_ = next_used_;
  if (!event_idx_) return !(LoadAcquire(available_) & VRING_AVAIL_F_NO_INTERRUPT);
  // used_event follows the available ring; interrupt when it lies in
  // (old, next_used_].
  const uint16_t event = LoadAcquire(available_ + kAvailRingOffset + 2ull * size_);
  return static_cast<uint16_t>(next_used_ - event - 1) < static_cast<uint16_t>(next_used_ - old);
}

bool VirtQueue::ArmNotification() {
  if (event_idx_) {
    // avail_event follows the used ring.
    StoreRelease(used_ + kUsedRingOffset + 8ull * size_, next_available_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  return AvailableIndex() != next_available_;
}

}  // namespace ember
