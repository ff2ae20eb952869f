// virtio-net (device type 1) with its data path in a vhost-user backend
// (DPDK, OVS-DPDK, a platform's switch). One queue pair: receive queue 0,
// transmit queue 1. ember answers the config space (MAC, link status,
// MTU); the driver sees the data-path features the backend supports.
#pragma once

#include <memory>

#include "config/vm_config.h"
#include "devices/virtio/vhost_user_device.h"

namespace ember {

class VhostUserNetDevice : public VhostUserDevice {
 public:
  static constexpr uint32_t kDeviceType = 1;

  static Result<std::shared_ptr<VhostUserNetDevice>> Connect(const NetConfig& config,
                                                             VhostUserConnection connection);

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return 2; }
  uint16_t max_queue_size() const override { return queue_size_; }

 private:
  VhostUserNetDevice(const NetConfig& config, std::unique_ptr<VhostUserFrontend> frontend,
                     uint64_t features);

  const uint16_t queue_size_;
};

}  // namespace ember
