#include "devices/virtio/vhost_user_fs.h"

#include <spdlog/spdlog.h>

#include <cstring>

namespace ember {
namespace {

// What ember lets through from the backend to the driver.
constexpr uint64_t kForwardedFeatures =
    kVirtioFeatureVersion1 | kVirtioFeatureRingIndirectDesc | kVirtioFeatureRingEventIdx;

}  // namespace

Result<std::shared_ptr<VhostUserFsDevice>> VhostUserFsDevice::Connect(const FsConfig& config) {
  const std::string owner = "fs device " + config.fs_id;
  EMBER_ASSIGN_OR_RETURN(std::unique_ptr<VhostUserFrontend> frontend,
                         VhostUserFrontend::Connect(config.socket, owner));
  uint64_t features = frontend->backend_features() & kForwardedFeatures;
  if (!(features & kVirtioFeatureVersion1)) {
    return Status::Error(owner + ": the backend does not offer VIRTIO_F_VERSION_1 (modern virtio)");
  }
  EMBER_ASSIGN_OR_RETURN(uint64_t backend_queues, frontend->BackendQueueCount());
  if (backend_queues != 0 && backend_queues < 1 + config.num_queues) {
    return Status::Error(owner + ": the backend supports " + std::to_string(backend_queues) +
                         " queues, num_queues " + std::to_string(config.num_queues) + " needs " +
                         std::to_string(1 + config.num_queues));
  }
  return std::shared_ptr<VhostUserFsDevice>(
      new VhostUserFsDevice(config, std::move(frontend), features));
}

VhostUserFsDevice::VhostUserFsDevice(FsConfig config, std::unique_ptr<VhostUserFrontend> frontend,
                                     uint64_t features)
    : config_(std::move(config)), frontend_(std::move(frontend)), features_(features) {
  // struct virtio_fs_config: tag[36] (NUL-padded), le32 num_request_queues.
  std::memcpy(config_space_.data(), config_.tag.data(), config_.tag.size());
  uint32_t queues = config_.num_queues;
  std::memcpy(config_space_.data() + kTagBytes, &queues, sizeof(queues));
}

void VhostUserFsDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < config_space_.size() ? config_space_[offset + i] : 0;
  }
}

Status VhostUserFsDevice::Activate(const Activation& activation) {
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

void VhostUserFsDevice::Reset() {
  if (Status stopped = frontend_->Stop(); !stopped.ok()) {
    spdlog::warn("{}: reset: {}", name(), stopped.message());
  }
}

}  // namespace ember
