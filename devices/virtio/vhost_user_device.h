// What every vhost-user virtio device shares: the frontend connection, the
// features offered to the driver, a config space ember answers, starting
// and stopping the backend's rings on DRIVER_OK and reset, and picking up
// again on a new connection after the backend restarted. The device types
// (fs, net, blk) only choose their identity, queues, features and config.
//
// Thread-safety: the transport calls Activate and Reset under its lock from
// vCPU threads; they only record the state the driver wants (a small lock)
// and post one job to the device-control thread, which holds the backend
// conversation and the frontend under their own lock. Activate returns at
// once; Reset waits (bounded) for the job, because a driver may free its
// rings as soon as the reset is done and the backend must have stopped
// writing into them by then. Disconnected and
// backend_socket come from the VMM thread and take no lock the
// conversation holds. Without a control thread (unit tests) the
// conversation runs on the caller's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/log_limiter.h"
#include "devices/vhost_user/vhost_user_frontend.h"
#include "devices/virtio/device_control.h"
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
  int backend_socket() const { return socket_fd_.load(); }

  // Where the backend conversations run from now on (the machine's one
  // device-control thread). Set before the guest runs.
  void UseControlThread(DeviceControl& control) { control_ = &control; }

  // The backend hung up: rings stop being served until Reconnect.
  void Disconnected() { connected_ = false; }
  // Negotiates again on a new connection, on the control thread, and calls
  // `done` there with the outcome. If the driver had started the device,
  // the new backend must offer every feature the driver acked; it gets the
  // memory table and each ring resumed from the guest's last used index,
  // and every queue is kicked so requests queued meanwhile are served.
  void Reconnect(VhostUserConnection connection, std::function<void(Status)> done);

 protected:
  VhostUserDevice(std::unique_ptr<VhostUserFrontend> frontend, uint64_t features,
                  std::vector<uint8_t> config_space)
      : name_(frontend->owner()),
        frontend_(std::move(frontend)),
        features_(features),
        config_space_(std::move(config_space)),
        socket_fd_(frontend_->socket_fd()) {}

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
  // Records what the driver wants (started, or reset: nullopt) and makes
  // sure one Apply will run; returns the number of the post that covers it.
  uint64_t Want(std::optional<Started> wanted);
  // A posted Apply ran, or was dropped by a stopping control thread.
  void PostFinished(uint64_t post);
  // Control thread: brings the backend to the latest wanted state.
  void Apply();
  Status ReconnectNow(VhostUserConnection connection);
  // The new backend negotiated and, if the driver had started the device,
  // its rings resumed; frontend_ is still the old one.
  Result<std::unique_ptr<VhostUserFrontend>> NegotiateAndResume(VhostUserConnection connection);
  void RunOnControl(std::function<void()> job);

  const std::string name_;
  DeviceControl* control_ = nullptr;

  // What the driver last asked for; vCPU threads write it.
  std::mutex wanted_mutex_;
  std::optional<Started> wanted_;
  uint64_t wanted_generation_ = 0;
  bool apply_posted_ = false;
  uint64_t posts_ = 0;           // Apply jobs posted so far
  uint64_t finished_posts_ = 0;  // the latest post that ran or was dropped
  std::condition_variable post_finished_;

  // The backend conversation's side (the control thread).
  std::mutex mutex_;
  LogLimiter log_limit_;  // a driver looping resets while the backend is away
  std::unique_ptr<VhostUserFrontend> frontend_;
  const uint64_t features_;
  const std::vector<uint8_t> config_space_;
  std::optional<Started> started_;
  uint64_t applied_generation_ = 0;
  std::atomic<bool> connected_ = true;
  std::atomic<int> socket_fd_;
};

}  // namespace ember
