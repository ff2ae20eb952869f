#include "devices/virtio/vhost_user_fs.h"

#include <cstring>

namespace ember {
namespace {

// What ember lets through from the backend to the driver.
constexpr uint64_t kForwardedFeatures =
    kVirtioFeatureVersion1 | kVirtioFeatureRingIndirectDesc | kVirtioFeatureRingEventIdx;

// struct virtio_fs_config: tag[36] (NUL-padded), le32 num_request_queues.
std::vector<uint8_t> FsConfigSpace(const FsConfig& config) {
  std::vector<uint8_t> space(VhostUserFsDevice::kTagBytes + 4, 0);
  std::memcpy(space.data(), config.tag.data(), config.tag.size());
  std::memcpy(space.data() + VhostUserFsDevice::kTagBytes, &config.num_queues, 4);
  return space;
}

}  // namespace

Result<std::shared_ptr<VhostUserFsDevice>> VhostUserFsDevice::Connect(
    const FsConfig& config, VhostUserConnection connection) {
  const std::string owner = connection.owner();
  EMBER_ASSIGN_OR_RETURN(std::unique_ptr<VhostUserFrontend> frontend,
                         VhostUserFrontend::Negotiate(std::move(connection)));
  EMBER_ASSIGN_OR_RETURN(uint64_t features, OfferedFeatures(*frontend, kForwardedFeatures));
  EMBER_ASSIGN_OR_RETURN(uint64_t backend_queues, frontend->BackendQueueCount());
  if (backend_queues != 0 && backend_queues < 1 + config.num_queues) {
    return Status::Error(owner + ": the backend supports " + std::to_string(backend_queues) +
                         " queues, num_queues " + std::to_string(config.num_queues) + " needs " +
                         std::to_string(1 + config.num_queues));
  }
  return std::shared_ptr<VhostUserFsDevice>(
      new VhostUserFsDevice(config, std::move(frontend), features));
}

VhostUserFsDevice::VhostUserFsDevice(const FsConfig& config,
                                     std::unique_ptr<VhostUserFrontend> frontend, uint64_t features)
    : VhostUserDevice(std::move(frontend), features, FsConfigSpace(config)),
      num_queues_(config.num_queues),
      queue_size_(static_cast<uint16_t>(config.queue_size)) {}

}  // namespace ember
