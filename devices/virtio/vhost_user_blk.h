// virtio-blk (device type 2) with its data path in a vhost-user backend
// (qemu-storage-daemon's vhost-user-blk export, SPDK): what Firecracker
// keeps in developer preview. One request queue. The config space
// (capacity, seg_max, blk_size, ...) is the backend's, read once with
// GET_CONFIG when ember connects; the driver sees the features both ember
// and the backend support.
#pragma once

#include <memory>

#include "devices/virtio/vhost_user_device.h"

namespace ember {

class VhostUserBlkDevice : public VhostUserDevice {
 public:
  static constexpr uint32_t kDeviceType = 2;

  // `honour_flush` (cache_type Writeback) forwards FLUSH.
  static Result<std::shared_ptr<VhostUserBlkDevice>> Connect(VhostUserConnection connection,
                                                             bool honour_flush);

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return 1; }
  uint16_t max_queue_size() const override { return 256; }

 private:
  VhostUserBlkDevice(std::unique_ptr<VhostUserFrontend> frontend, uint64_t features,
                     std::vector<uint8_t> config_space)
      : VhostUserDevice(std::move(frontend), features, std::move(config_space)) {}
};

}  // namespace ember
