#include "vmm/device_manager.h"

#include "arch/x86_64/layout.h"
#include "base/hex.h"

namespace ember {

DeviceManager::DeviceManager() : slots_(x86::VirtioMmioSlots(layout::kMaxVirtioDevices)) {}

Result<x86::AcpiVirtioMmioDevice> DeviceManager::PlaceVirtioDevice(const std::string& name) {
  if (placed_.size() >= slots_.size()) {
    return Status::Error(name + ": no virtio-mmio slot left (at most " +
                         std::to_string(slots_.size()) + " devices)");
  }
  placed_.push_back(slots_[placed_.size()]);
  return placed_.back();
}

std::string DeviceManager::VirtioCommandLine() const {
  std::string line;
  for (const x86::AcpiVirtioMmioDevice& device : placed_) {
    line += " virtio_mmio.device=" + std::to_string(device.size / 1024) + "K@" + Hex(device.base) +
            ":" + std::to_string(device.irq);
  }
  return line;
}

}  // namespace ember
