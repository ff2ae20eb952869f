// Firecracker-compatible boot timer: when the guest writes the magic byte
// 123 to the first byte of the device, ember logs the time since the VM was
// asked to start (InstanceStart, or process start with --no-api).
//
// Thread-safety: Write runs on vCPU threads; the start time is immutable.
#pragma once

#include <chrono>
#include <functional>

#include "kvm/bus.h"

namespace ember {

class BootTimer : public BusDevice {
 public:
  static constexpr uint8_t kMagic = 123;

  // `report` receives the elapsed wall and process CPU microseconds.
  BootTimer(std::chrono::steady_clock::time_point start, uint64_t start_cpu_us,
            std::function<void(uint64_t wall_us, uint64_t cpu_us)> report)
      : start_(start), start_cpu_us_(start_cpu_us), report_(std::move(report)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const std::chrono::steady_clock::time_point start_;
  const uint64_t start_cpu_us_;
  const std::function<void(uint64_t, uint64_t)> report_;
};

}  // namespace ember
