// What every vhost-user virtio device shares: the frontend connection, the
// features offered to the driver, a config space ember answers, starting
// and stopping the backend's rings on DRIVER_OK and reset, and picking up
// again on a new connection after the backend restarted. The device types
// (fs, net) only choose their identity, queues, features and config.
//
// Thread-safety: the transport calls in under its lock from vCPU threads;
// Disconnected/Reconnect come from the VMM thread. One mutex covers the
// frontend and the activation it remembers.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
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

  const std::string& name() const { return name_; }
  int backend_socket();

  // The backend hung up: rings stop being served until Reconnect.
  void Disconnected();
  // Negotiates again on a new connection. If the driver had started the
  // device, the new backend must offer every feature the driver acked; it
  // gets the memory table and each ring resumed from the guest's last used
  // index, and every queue is kicked so requests queued meanwhile are
  // served.
  Status Reconnect(VhostUserConnection connection);

 protected:
  VhostUserDevice(std::unique_ptr<VhostUserFrontend> frontend, uint64_t features,
                  std::vector<uint8_t> config_space)
      : name_(frontend->owner()),
        frontend_(std::move(frontend)),
        features_(features),
        config_space_(std::move(config_space)) {}

  // The backend's features limited to `forwarded`; fails without VERSION_1.
  static Result<uint64_t> OfferedFeatures(const VhostUserFrontend& frontend, uint64_t forwarded);

 private:
  // What DRIVER_OK set up, kept for a reconnect.
  struct Started {
    uint64_t acked_features;
    const GuestMemory* memory;
    std::vector<VirtQueueState> queues;
    std::vector<int> kick_fds;
    int interrupt_fd;
  };
  std::vector<VringSetup> Rings(const Started& started, bool from_used_index) const;

  const std::string name_;
  std::mutex mutex_;
  std::unique_ptr<VhostUserFrontend> frontend_;
  const uint64_t features_;
  const std::vector<uint8_t> config_space_;
  std::optional<Started> started_;
  bool connected_ = true;
};

}  // namespace ember
