// The frontend side of vhost-user, shared by every vhost-user device (fs,
// net): the spec's message sequence in QEMU's order.
//   Connect: GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER.
//   Start (driver OK): SET_FEATURES, the memory table (ADD_MEM_REG per
//     region with CONFIGURE_MEM_SLOTS, else SET_MEM_TABLE), and per ring
//     SET_VRING_NUM/BASE/ADDR/KICK/CALL, then SET_VRING_ENABLE.
//   Stop (device reset): GET_VRING_BASE per started ring.
//
// Thread-safety: owned by one device, which serialises calls (they come
// from a vCPU thread while the driver programs the device, or from the
// VMM thread while the machine is built).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "devices/vhost_user/vhost_user_connection.h"
#include "kvm/guest_memory.h"

namespace ember {

struct VringSetup {
  uint32_t index;
  uint16_t size;
  uint64_t descriptor_address;  // guest-physical
  uint64_t available_address;
  uint64_t used_address;
  uint16_t base;  // first available index the backend processes
  int kick_fd;    // the guest's notifications (a KVM ioeventfd)
  int call_fd;    // the backend's interrupts (a KVM irqfd)
};

class VhostUserFrontend {
 public:
  // Protocol features ember asks for when the backend offers them.
  static constexpr uint64_t kWantedProtocolFeatures = vhost_user::kProtocolReplyAck |
                                                      vhost_user::kProtocolConfigureMemSlots |
                                                      vhost_user::kProtocolMq;

  static Result<std::unique_ptr<VhostUserFrontend>> Connect(const std::string& socket_path,
                                                            const std::string& owner);
  // The negotiation on an established connection; a device type may ask
  // for more protocol features (blk: CONFIG, to read the capacity).
  static Result<std::unique_ptr<VhostUserFrontend>> Negotiate(VhostUserConnection connection,
                                                              uint64_t extra_protocol_features = 0);

  const std::string& owner() const { return connection_.owner(); }
  uint64_t backend_features() const { return backend_features_; }
  uint64_t protocol_features() const { return protocol_features_; }
  // What the device type asked for beyond kWantedProtocolFeatures (kept
  // for a reconnect's negotiation).
  uint64_t extra_protocol_features() const { return extra_protocol_features_; }
  int socket_fd() const { return connection_.fd(); }
  // Queues the backend supports (GET_QUEUE_NUM), or 0 without the MQ feature.
  Result<uint64_t> BackendQueueCount();
  // The device's config space from the backend (GET_CONFIG); fails when the
  // backend does not offer the CONFIG protocol feature.
  Result<std::vector<uint8_t>> BackendConfig(uint32_t size);

  Status Start(uint64_t acked_features, const GuestMemory& memory,
               std::span<const VringSetup> rings);
  Status Stop();

 private:
  explicit VhostUserFrontend(VhostUserConnection connection) : connection_(std::move(connection)) {}
  Status SendMemoryTable(const GuestMemory& memory);
  Status StartRing(const GuestMemory& memory, const VringSetup& ring);

  VhostUserConnection connection_;
  uint64_t backend_features_ = 0;
  uint64_t protocol_features_ = 0;
  uint64_t extra_protocol_features_ = 0;
  std::vector<uint32_t> started_rings_;
  bool memory_table_sent_ = false;  // once per connection
};

}  // namespace ember
