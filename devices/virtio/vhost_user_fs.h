// virtio-fs (device type 26) with its data plane in a vhost-user backend
// such as virtiofsd. ember builds the config space (tag, number of request
// queues); requests never pass through ember.
#pragma once

#include <memory>

#include "config/vm_config.h"
#include "devices/virtio/vhost_user_device.h"

namespace ember {

class VhostUserFsDevice : public VhostUserDevice {
 public:
  static constexpr uint32_t kDeviceType = 26;
  static constexpr size_t kTagBytes = 36;

  // Negotiates with the backend on `connection`; errors name the device.
  static Result<std::shared_ptr<VhostUserFsDevice>> Connect(const FsConfig& config,
                                                            VhostUserConnection connection);

  uint32_t device_type() const override { return kDeviceType; }
  // The hiprio queue, then the request queues.
  uint16_t queue_count() const override { return static_cast<uint16_t>(1 + num_queues_); }
  uint16_t max_queue_size() const override { return queue_size_; }

 private:
  VhostUserFsDevice(const FsConfig& config, std::unique_ptr<VhostUserFrontend> frontend,
                    uint64_t features);

  const uint32_t num_queues_;
  const uint16_t queue_size_;
};

}  // namespace ember
