// What every vhost-user virtio device shares: the frontend connection, the
// features offered to the driver, a config space ember answers, and
// starting/stopping the backend's rings on DRIVER_OK and reset. The device
// types (fs, net) only choose their identity, queues, features and config.
//
// Thread-safety: called by its transport under the transport's lock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "devices/vhost_user/vhost_user_frontend.h"
#include "devices/virtio/virtio_device.h"

namespace ember {

class VhostUserDevice : public VirtioDevice {
 public:
  uint64_t device_features() const override { return features_; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}  // read-only
  Status Activate(const Activation& activation) override;
  void Reset() override;

  int backend_socket() const { return frontend_->socket_fd(); }
  const std::string& name() const { return frontend_->owner(); }

 protected:
  VhostUserDevice(std::unique_ptr<VhostUserFrontend> frontend, uint64_t features,
                  std::vector<uint8_t> config_space)
      : frontend_(std::move(frontend)),
        features_(features),
        config_space_(std::move(config_space)) {}

  // The backend's features limited to `forwarded`; fails without VERSION_1.
  static Result<uint64_t> OfferedFeatures(const VhostUserFrontend& frontend, uint64_t forwarded);

 private:
  std::unique_ptr<VhostUserFrontend> frontend_;
  const uint64_t features_;
  const std::vector<uint8_t> config_space_;
};

}  // namespace ember
