// Split virtqueues written by hand into real guest memory, as a hostile or
// careful driver would: descriptors, the available ring, kicks, and the
// used ring read back. For device-level tests of emulated devices.
#pragma once

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/virtio_device.h"
#include "kvm/guest_memory.h"
#include "tests/test_util.h"

namespace ember::testing {

constexpr uint16_t kDescNext = 1, kDescWrite = 2;

struct Desc {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};

class HandRings {
 public:
  // Queue q's descriptor table at base + q * 0x10000, its available ring
  // 0x1000 after it and its used ring 0x2000 after it.
  HandRings(GuestMemory& memory, size_t queues, uint16_t size, uint64_t base = 0x10000)
      : memory_(memory), size_(size), base_(base), avail_(queues), used_(queues) {
    for (size_t q = 0; q < queues; ++q) {
      kicks_.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      kick_fds_.push_back(kicks_.back().get());
      const uint64_t ring = Ring(q);
      states_.push_back({size, true, ring, ring + 0x1000, ring + 0x2000});
    }
    interrupt_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  Activation MakeActivation(
      uint64_t features, std::function<void()> needs_reset = [] {}) {
    return Activation{features,  memory_,          states_,
                      kick_fds_, interrupt_.get(), std::move(needs_reset)};
  }
  uint64_t Ring(size_t q) const { return base_ + q * 0x10000; }
  void PutDesc(size_t q, uint16_t index, Desc desc) {
    ASSERT_TRUE(memory_.WriteObject(Ring(q) + 16 * index, desc).ok());
  }
  template <typename T>
  T Get(uint64_t address) {
    T value{};
    EXPECT_TRUE(memory_.Read(address, {reinterpret_cast<uint8_t*>(&value), sizeof(T)}).ok());
    return value;
  }
  // Makes descriptor `head` of queue q available and kicks.
  void Publish(size_t q, uint16_t head) {
    EXPECT_TRUE(
        memory_.WriteObject<uint16_t>(Ring(q) + 0x1000 + 4 + 2 * (avail_[q] % size_), head).ok());
    SetAvailIndex(q, ++avail_[q]);
  }
  // Writes the available index (a hostile driver may write anything) and kicks.
  void SetAvailIndex(size_t q, uint16_t index) {
    EXPECT_TRUE(memory_.WriteObject<uint16_t>(Ring(q) + 0x1000 + 2, index).ok());
    uint64_t one = 1;
    EXPECT_EQ(write(kick_fds_[q], &one, sizeof(one)), 8);
  }
  // Waits for queue q's next used entry: its {id, length}, or {-1, -1}.
  std::pair<int64_t, int64_t> WaitUsedEntry(size_t q, int seconds = 5) {
    if (!WaitUntil([&] { return Get<uint16_t>(Ring(q) + 0x2002) != used_[q]; }, seconds)) {
      return {-1, -1};
    }
    const uint64_t entry = Ring(q) + 0x2000 + 4 + 8 * (used_[q] % size_);
    ++used_[q];
    return {Get<uint32_t>(entry), Get<uint32_t>(entry + 4)};
  }
  int64_t WaitUsed(size_t q, int seconds = 5) { return WaitUsedEntry(q, seconds).second; }
  uint16_t used_index(size_t q) { return Get<uint16_t>(Ring(q) + 0x2002); }

 private:
  GuestMemory& memory_;
  const uint16_t size_;
  const uint64_t base_;
  std::vector<UniqueFd> kicks_;
  std::vector<int> kick_fds_;
  std::vector<VirtQueueState> states_;
  UniqueFd interrupt_;
  std::vector<uint16_t> avail_;
  std::vector<uint16_t> used_;
};

}  // namespace ember::testing
