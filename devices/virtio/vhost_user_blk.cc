#include "devices/virtio/vhost_user_blk.h"

#include <linux/virtio_blk.h>

namespace ember {
namespace {

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// What the backend implements and ember passes on. Not MQ: one queue.
constexpr uint64_t kForwardedFeatures = kVirtioFeatureVersion1 | kVirtioFeatureRingIndirectDesc |
                                        kVirtioFeatureRingEventIdx | Bit(VIRTIO_BLK_F_SIZE_MAX) |
                                        Bit(VIRTIO_BLK_F_SEG_MAX) | Bit(VIRTIO_BLK_F_RO) |
                                        Bit(VIRTIO_BLK_F_BLK_SIZE) | Bit(VIRTIO_BLK_F_TOPOLOGY) |
                                        Bit(VIRTIO_BLK_F_DISCARD) | Bit(VIRTIO_BLK_F_WRITE_ZEROES);

// struct virtio_blk_config up to write_zeroes_may_unmap and its padding:
// what backends built on QEMU 7.2's headers answer (later kernels' headers
// add zoned fields that those backends refuse to read).
constexpr uint32_t kConfigBytes = 60;
static_assert(sizeof(virtio_blk_config) >= kConfigBytes);

}  // namespace

Result<std::shared_ptr<VhostUserBlkDevice>> VhostUserBlkDevice::Connect(
    VhostUserConnection connection, bool honour_flush) {
  EMBER_ASSIGN_OR_RETURN(
      std::unique_ptr<VhostUserFrontend> frontend,
      VhostUserFrontend::Negotiate(std::move(connection), vhost_user::kProtocolConfig));
  const uint64_t forwarded = kForwardedFeatures | (honour_flush ? Bit(VIRTIO_BLK_F_FLUSH) : 0);
  EMBER_ASSIGN_OR_RETURN(uint64_t features, OfferedFeatures(*frontend, forwarded));
  EMBER_ASSIGN_OR_RETURN(std::vector<uint8_t> config, frontend->BackendConfig(kConfigBytes));
  return std::shared_ptr<VhostUserBlkDevice>(
      new VhostUserBlkDevice(std::move(frontend), features, std::move(config)));
}

}  // namespace ember
