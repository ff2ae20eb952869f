// virtio-mmio, version 2 (virtio 1.x "modern"): the register window the
// driver programs, feature negotiation, queue set-up, status and reset,
// config space, and the interrupt status. On DRIVER_OK the device is
// activated with the queues, one kick eventfd per queue (KVM ioeventfds on
// QueueNotify, so kicks never exit to ember) and the interrupt eventfd (a
// KVM irqfd on the device's line).
//
// Guest writes that make no sense (wrong access width, bad queue sizes or
// addresses, features the device did not offer, changes after DRIVER_OK)
// are ignored or refused as the spec says, logged once, never fatal.
//
// Thread-safety: Read/Write come from vCPU threads; one mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/log_limiter.h"
#include "base/unique_fd.h"
#include "devices/virtio/virtio_device.h"
#include "kvm/bus.h"
#include "kvm/guest_memory.h"

namespace ember {

class VirtioMmioTransport : public BusDevice {
 public:
  static constexpr uint64_t kWindowSize = 0x1000;
  static constexpr uint64_t kQueueNotifyOffset = 0x50;

  VirtioMmioTransport(std::string name, std::shared_ptr<VirtioDevice> device,
                      const GuestMemory& memory, std::vector<UniqueFd> kick_fds,
                      UniqueFd interrupt_fd);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t status();
  // The device's config space changed (e.g. a drive's new size): bumps the
  // generation and raises the config-change interrupt.
  void NotifyConfigChange();

 private:
  uint32_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint32_t value);
  void WriteStatus(uint32_t value);
  void ResetLocked();
  VirtQueueState* SelectedQueue();
  void Warn(const std::string& message);

  const std::string name_;
  const std::shared_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  const std::vector<UniqueFd> kick_fds_;
  const UniqueFd interrupt_fd_;

  std::mutex mutex_;
  uint32_t status_ = 0;
  uint32_t device_features_select_ = 0;
  uint32_t driver_features_select_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_select_ = 0;
  std::vector<VirtQueueState> queues_;
  uint32_t interrupt_status_ = 0;
  bool activated_ = false;
  bool activation_tried_ = false;  // DRIVER_OK reached Activate since the last reset
  uint32_t config_generation_ = 0;
  LogLimiter log_limit_;  // register misuse and failed activations are the guest's to repeat
  // Set from the device's own thread, which must never take mutex_ (reset
  // holds it while it waits for that thread).
  std::atomic<bool> needs_reset_{false};
  std::atomic<bool> config_interrupt_{false};
};

}  // namespace ember
