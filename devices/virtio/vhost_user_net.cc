#include "devices/virtio/vhost_user_net.h"

#include <cstring>

namespace ember {
namespace {

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// Feature bits of the virtio-net spec (linux/virtio_net.h does not compile
// as C++: it has a member named `class`).
enum NetFeature : unsigned {
  VIRTIO_NET_F_CSUM = 0,
  VIRTIO_NET_F_GUEST_CSUM = 1,
  VIRTIO_NET_F_MTU = 3,
  VIRTIO_NET_F_MAC = 5,
  VIRTIO_NET_F_GUEST_TSO4 = 7,
  VIRTIO_NET_F_GUEST_TSO6 = 8,
  VIRTIO_NET_F_GUEST_ECN = 9,
  VIRTIO_NET_F_GUEST_UFO = 10,
  VIRTIO_NET_F_HOST_TSO4 = 11,
  VIRTIO_NET_F_HOST_TSO6 = 12,
  VIRTIO_NET_F_HOST_ECN = 13,
  VIRTIO_NET_F_HOST_UFO = 14,
  VIRTIO_NET_F_MRG_RXBUF = 15,
  VIRTIO_NET_F_STATUS = 16,
};
constexpr uint16_t kLinkUp = 1;

#pragma pack(push, 1)
struct NetConfigLayout {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
};
#pragma pack(pop)
static_assert(sizeof(NetConfigLayout) == 12);

// Data-path features the backend implements and ember passes on.
constexpr uint64_t kForwardedFeatures =
    kVirtioFeatureVersion1 | kVirtioFeatureRingIndirectDesc | kVirtioFeatureRingEventIdx |
    Bit(VIRTIO_NET_F_CSUM) | Bit(VIRTIO_NET_F_GUEST_CSUM) | Bit(VIRTIO_NET_F_GUEST_TSO4) |
    Bit(VIRTIO_NET_F_GUEST_TSO6) | Bit(VIRTIO_NET_F_GUEST_ECN) | Bit(VIRTIO_NET_F_GUEST_UFO) |
    Bit(VIRTIO_NET_F_HOST_TSO4) | Bit(VIRTIO_NET_F_HOST_TSO6) | Bit(VIRTIO_NET_F_HOST_ECN) |
    Bit(VIRTIO_NET_F_HOST_UFO) | Bit(VIRTIO_NET_F_MRG_RXBUF);

// Config-space features ember answers itself (not sent to the backend).
constexpr uint64_t kEmulatedFeatures = Bit(VIRTIO_NET_F_MAC) | Bit(VIRTIO_NET_F_STATUS);

// struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu.
std::vector<uint8_t> NetConfigSpace(const NetConfig& config) {
  NetConfigLayout space{};
  std::memcpy(space.mac, config.guest_mac.data(), 6);
  space.status = kLinkUp;
  space.max_virtqueue_pairs = 1;
  space.mtu = config.mtu.value_or(0);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&space);
  return std::vector<uint8_t>(bytes, bytes + sizeof(space));
}

}  // namespace

Result<std::shared_ptr<VhostUserNetDevice>> VhostUserNetDevice::Connect(
    const NetConfig& config, VhostUserConnection connection) {
  EMBER_ASSIGN_OR_RETURN(std::unique_ptr<VhostUserFrontend> frontend,
                         VhostUserFrontend::Negotiate(std::move(connection)));
  EMBER_ASSIGN_OR_RETURN(uint64_t features, OfferedFeatures(*frontend, kForwardedFeatures));
  features |= kEmulatedFeatures | (config.mtu ? Bit(VIRTIO_NET_F_MTU) : 0);
  return std::shared_ptr<VhostUserNetDevice>(
      new VhostUserNetDevice(config, std::move(frontend), features));
}

VhostUserNetDevice::VhostUserNetDevice(const NetConfig& config,
                                       std::unique_ptr<VhostUserFrontend> frontend,
                                       uint64_t features)
    : VhostUserDevice(std::move(frontend), features, NetConfigSpace(config)),
      queue_size_(static_cast<uint16_t>(config.queue_size)) {}

}  // namespace ember
