// What the device fuzz targets share: guest memory, the kicks and the
// interrupt of an activation, the input's 64 KiB memory window at guest
// address 0, and queue i's rings at i * 0x4000 (descriptor table, available
// ring 0x1000 after it, used ring 0x2000 after it).
#pragma once

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "arch/x86_64/e820.h"
#include "base/unique_fd.h"
#include "devices/virtio/virtio_device.h"
#include "jail/seccomp.h"
#include "kvm/guest_memory.h"

namespace ember {

class FuzzQueues {
 public:
  static constexpr uint64_t kMemory = 1 << 20;
  static constexpr uint64_t kWindow = 64 * 1024;

  // Aborts when the machine cannot give it memory or eventfds.
  static FuzzQueues Create(size_t queues) {
    SetSeccompEnabled(false);  // the sanitizers make calls no filter lists
    spdlog::set_level(spdlog::level::off);
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(kMemory));
    if (!memory.ok()) std::abort();
    FuzzQueues rig(std::move(*memory));
    for (size_t i = 0; i < queues; ++i) {
      rig.kicks_.emplace_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      rig.kick_fds_.push_back(rig.kicks_.back().get());
    }
    rig.interrupt_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    return rig;
  }

  GuestMemory& memory() { return memory_; }

  // Guest memory from 0 holds `bytes` (at most kWindow), zeros after them.
  void LoadWindow(const uint8_t* bytes, size_t size) {
    std::vector<uint8_t> window(kWindow, 0);
    std::memcpy(window.data(), bytes, std::min<size_t>(size, kWindow));
    if (!memory_.Write(0, window).ok()) std::abort();
  }
  // Every queue ready with `size` entries; false when the transport would
  // refuse one (the input is then of no interest).
  bool SetUpQueues(uint16_t size) {
    states_.clear();
    for (size_t i = 0; i < kicks_.size(); ++i) {
      const uint64_t ring = i * 0x4000;
      states_.push_back({size, true, ring, ring + 0x1000, ring + 0x2000});
      if (!ValidateQueue(memory_, static_cast<uint16_t>(i), states_.back(), 256).ok()) return false;
    }
    return true;
  }
  Activation MakeActivation(uint64_t features) {
    return Activation{features, memory_, states_, kick_fds_, interrupt_.get(), [] {}};
  }
  void KickAll() {
    uint64_t one = 1;
    for (int fd : kick_fds_) (void)!write(fd, &one, sizeof(one));
  }

 private:
  explicit FuzzQueues(GuestMemory memory) : memory_(std::move(memory)) {}

  GuestMemory memory_;
  std::vector<UniqueFd> kicks_;
  std::vector<int> kick_fds_;
  std::vector<VirtQueueState> states_;
  UniqueFd interrupt_;
};

}  // namespace ember
