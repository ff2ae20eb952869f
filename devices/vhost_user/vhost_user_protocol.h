// The vhost-user wire format (docs/interop/vhost-user.rst in QEMU): message
// header, request codes, feature bits and payload layouts ember uses.
#pragma once

#include <cstdint>

namespace ember::vhost_user {

enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kSetMemTable = 5,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
};
const char* RequestName(uint32_t request);

// Header flags: protocol version 1 in bits 0-1.
constexpr uint32_t kVersion = 0x1;
constexpr uint32_t kVersionMask = 0x3;
constexpr uint32_t kFlagReply = 0x4;
constexpr uint32_t kFlagNeedReply = 0x8;

// Virtio feature bit that says the backend speaks protocol features.
constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;

enum ProtocolFeature : uint64_t {
  kProtocolMq = 1ull << 0,
  kProtocolReplyAck = 1ull << 3,
  kProtocolConfig = 1ull << 9,
  kProtocolConfigureMemSlots = 1ull << 15,
};

// SET_VRING_KICK/CALL: no fd accompanies the message.
constexpr uint64_t kVringNoFd = 0x100;
constexpr uint32_t kMaxMemTableRegions = 8;
constexpr uint32_t kMaxPayload = 4096;
constexpr uint32_t kMaxFds = 8;

#pragma pack(push, 1)
struct Header {
  uint32_t request;
  uint32_t flags;
  uint32_t size;
};
struct VringState {
  uint32_t index;
  uint32_t num;
};
struct VringAddr {
  uint32_t index;
  uint32_t flags;
  uint64_t descriptor;  // frontend virtual addresses
  uint64_t used;
  uint64_t available;
  uint64_t log;
};
struct MemoryRegion {
  uint64_t guest_address;
  uint64_t size;
  uint64_t user_address;
  uint64_t mmap_offset;
};
struct MemTable {
  uint32_t count;
  uint32_t padding;
  MemoryRegion regions[kMaxMemTableRegions];
};
// GET_CONFIG: this header, then `size` bytes of the device's config space.
struct ConfigHeader {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
};
struct SingleMemoryRegion {
  uint64_t padding;
  MemoryRegion region;
};
#pragma pack(pop)

static_assert(sizeof(Header) == 12);
static_assert(sizeof(VringAddr) == 40);
static_assert(sizeof(MemoryRegion) == 32);
static_assert(sizeof(MemTable) == 8 + 8 * 32);

}  // namespace ember::vhost_user
