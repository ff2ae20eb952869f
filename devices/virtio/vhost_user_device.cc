#include "devices/virtio/vhost_user_device.h"

#include <spdlog/spdlog.h>

namespace ember {

Result<uint64_t> VhostUserDevice::OfferedFeatures(const VhostUserFrontend& frontend,
                                                  uint64_t forwarded) {
  uint64_t features = frontend.backend_features() & forwarded;
  if (!(features & kVirtioFeatureVersion1)) {
    return Status::Error(frontend.owner() +
                         ": the backend does not offer VIRTIO_F_VERSION_1 (modern virtio)");
  }
  return features;
}

void VhostUserDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < config_space_.size() ? config_space_[offset + i] : 0;
  }
}

Status VhostUserDevice::Activate(const Activation& activation) {
  std::vector<VringSetup> rings;
  for (size_t i = 0; i < activation.queues.size(); ++i) {
    const VirtQueueState& queue = activation.queues[i];
    if (!queue.ready) continue;  // the driver may leave queues unused
    rings.push_back(VringSetup{static_cast<uint32_t>(i), queue.size, queue.descriptor_address,
                               queue.available_address, queue.used_address, 0,
                               activation.kick_fds[i], activation.interrupt_fd});
  }
  EMBER_RETURN_IF_ERROR(frontend_->Start(activation.acked_features, activation.memory, rings));
  spdlog::info("{}: started with {} queue(s)", name(), rings.size());
  return Status::Ok();
}

void VhostUserDevice::Reset() {
  if (Status stopped = frontend_->Stop(); !stopped.ok()) {
    spdlog::warn("{}: reset: {}", name(), stopped.message());
  }
}

}  // namespace ember
