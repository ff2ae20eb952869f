#include "devices/vhost_user/vhost_user_frontend.h"

#include <spdlog/spdlog.h>

#include <cstddef>

#include "base/hex.h"

namespace ember {

using namespace vhost_user;

Result<std::unique_ptr<VhostUserFrontend>> VhostUserFrontend::Connect(
    const std::string& socket_path, const std::string& owner) {
  EMBER_ASSIGN_OR_RETURN(VhostUserConnection connection,
                         VhostUserConnection::Connect(socket_path, owner));
  return Negotiate(std::move(connection));
}

Result<std::unique_ptr<VhostUserFrontend>> VhostUserFrontend::Negotiate(
    VhostUserConnection connection, uint64_t extra_protocol_features) {
  std::unique_ptr<VhostUserFrontend> frontend(new VhostUserFrontend(std::move(connection)));
  VhostUserConnection& conn = frontend->connection_;
  frontend->extra_protocol_features_ = extra_protocol_features;
  EMBER_ASSIGN_OR_RETURN(frontend->backend_features_, conn.GetU64(kGetFeatures));
  if (frontend->backend_features_ & kFeatureProtocolFeatures) {
    EMBER_ASSIGN_OR_RETURN(uint64_t offered, conn.GetU64(kGetProtocolFeatures));
    frontend->protocol_features_ = offered & (kWantedProtocolFeatures | extra_protocol_features);
    EMBER_RETURN_IF_ERROR(conn.SendValue(kSetProtocolFeatures, frontend->protocol_features_));
    conn.set_reply_ack((frontend->protocol_features_ & kProtocolReplyAck) != 0);
  }
  EMBER_RETURN_IF_ERROR(conn.Send(kSetOwner));
  SPDLOG_DEBUG("{}: backend features {:#x}, protocol features {:#x}", frontend->owner(),
               frontend->backend_features_, frontend->protocol_features_);
  return frontend;
}

Result<uint64_t> VhostUserFrontend::BackendQueueCount() {
  if (!(protocol_features_ & kProtocolMq)) return uint64_t{0};
  return connection_.GetU64(kGetQueueNum);
}

Result<std::vector<uint8_t>> VhostUserFrontend::BackendConfig(uint32_t size) {
  if (!(protocol_features_ & kProtocolConfig)) {
    return Status::Error(owner() +
                         ": the backend does not offer VHOST_USER_PROTOCOL_F_CONFIG, so its "
                         "device configuration (capacity) cannot be read");
  }
  return connection_.GetConfig(size);
}

Status VhostUserFrontend::SendMemoryTable(const GuestMemory& memory) {
  const auto& regions = memory.regions();
  auto describe = [](const GuestRegion& region) {
    return MemoryRegion{region.guest_address, region.size, reinterpret_cast<uint64_t>(region.host),
                        region.file_offset};
  };
  if (protocol_features_ & kProtocolConfigureMemSlots) {
    EMBER_ASSIGN_OR_RETURN(uint64_t slots, connection_.GetU64(kGetMaxMemSlots));
    if (slots < regions.size()) {
      return Status::Error(owner() + ": the backend has " + std::to_string(slots) +
                           " memory slots, guest memory needs " + std::to_string(regions.size()));
    }
    for (const GuestRegion& region : regions) {
      int fd = memory.memfd();
      EMBER_RETURN_IF_ERROR(
          connection_.SendValue(kAddMemReg, SingleMemoryRegion{0, describe(region)}, {&fd, 1}));
    }
    return Status::Ok();
  }
  MemTable table{};
  std::vector<int> fds;
  for (const GuestRegion& region : regions) {
    table.regions[table.count++] = describe(region);
    fds.push_back(memory.memfd());
  }
  size_t size = offsetof(MemTable, regions) + table.count * sizeof(MemoryRegion);
  return connection_.Send(kSetMemTable, {reinterpret_cast<const uint8_t*>(&table), size}, fds);
}

Status VhostUserFrontend::StartRing(const GuestMemory& memory, const VringSetup& ring) {
  // The backend sees the rings at ember's addresses for the same pages.
  const uint64_t descriptor_bytes = 16ull * ring.size;
  const uint64_t available_bytes = 6 + 2ull * ring.size;
  const uint64_t used_bytes = 6 + 8ull * ring.size;
  uint8_t* descriptor = memory.HostAddress(ring.descriptor_address, descriptor_bytes);
  uint8_t* available = memory.HostAddress(ring.available_address, available_bytes);
  uint8_t* used = memory.HostAddress(ring.used_address, used_bytes);
  if (descriptor == nullptr || available == nullptr || used == nullptr) {
    return Status::Error(owner() + ": ring " + std::to_string(ring.index) +
                         " lies outside guest memory");
  }
  EMBER_RETURN_IF_ERROR(connection_.SendValue(kSetVringNum, VringState{ring.index, ring.size}));
  EMBER_RETURN_IF_ERROR(connection_.SendValue(kSetVringBase, VringState{ring.index, ring.base}));
  VringAddr address{ring.index,
                    0,
                    reinterpret_cast<uint64_t>(descriptor),
                    reinterpret_cast<uint64_t>(used),
                    reinterpret_cast<uint64_t>(available),
                    0};
  EMBER_RETURN_IF_ERROR(connection_.SendValue(kSetVringAddr, address));
  EMBER_RETURN_IF_ERROR(
      connection_.SendValue(kSetVringKick, uint64_t{ring.index}, {&ring.kick_fd, 1}));
  EMBER_RETURN_IF_ERROR(
      connection_.SendValue(kSetVringCall, uint64_t{ring.index}, {&ring.call_fd, 1}));
  started_rings_.push_back(ring.index);
  return Status::Ok();
}

Status VhostUserFrontend::Start(uint64_t acked_features, const GuestMemory& memory,
                                std::span<const VringSetup> rings) {
  // Features ember emulates itself (a net device's MAC, link status) are
  // not the backend's business: it only hears about its own.
  uint64_t features =
      (acked_features & backend_features_) | (backend_features_ & kFeatureProtocolFeatures);
  EMBER_RETURN_IF_ERROR(connection_.SendValue(kSetFeatures, features));
  if (!memory_table_sent_) {
    EMBER_RETURN_IF_ERROR(SendMemoryTable(memory));
    memory_table_sent_ = true;
  }
  for (const VringSetup& ring : rings) EMBER_RETURN_IF_ERROR(StartRing(memory, ring));
  // With protocol features, rings start disabled until enabled here.
  if (backend_features_ & kFeatureProtocolFeatures) {
    for (const VringSetup& ring : rings) {
      EMBER_RETURN_IF_ERROR(connection_.SendValue(kSetVringEnable, VringState{ring.index, 1}));
    }
  }
  return Status::Ok();
}

Status VhostUserFrontend::Stop() {
  Status result = Status::Ok();
  for (uint32_t index : started_rings_) {
    Result<VringState> state = connection_.GetVringBase(index);
    if (!state.ok() && result.ok()) result = state.status();
  }
  started_rings_.clear();
  return result;
}

}  // namespace ember
