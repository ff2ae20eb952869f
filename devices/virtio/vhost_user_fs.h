// virtio-fs (device type 26) with its data plane in a vhost-user backend
// such as virtiofsd. ember builds the config space (tag, number of request
// queues) and sets the rings up in the backend; requests never pass
// through ember.
//
// Thread-safety: called by its transport under the transport's lock.
#pragma once

#include <array>
#include <memory>

#include "devices/vhost_user/vhost_user_frontend.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/vm_config.h"

namespace ember {

class VhostUserFsDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 26;
  static constexpr size_t kTagBytes = 36;

  // Connects to the backend and negotiates; errors name the device.
  static Result<std::shared_ptr<VhostUserFsDevice>> Connect(const FsConfig& config);

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return static_cast<uint16_t>(1 + config_.num_queues); }
  uint16_t max_queue_size() const override { return static_cast<uint16_t>(config_.queue_size); }
  uint64_t device_features() const override { return features_; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}  // read-only
  Status Activate(const Activation& activation) override;
  void Reset() override;

  int backend_socket() const { return frontend_->socket_fd(); }
  const std::string& name() const { return frontend_->owner(); }

 private:
  VhostUserFsDevice(FsConfig config, std::unique_ptr<VhostUserFrontend> frontend,
                    uint64_t features);

  const FsConfig config_;
  std::unique_ptr<VhostUserFrontend> frontend_;
  const uint64_t features_;
  std::array<uint8_t, kTagBytes + 4> config_space_{};
};

}  // namespace ember
