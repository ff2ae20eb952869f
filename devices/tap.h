// A TAP device for virtio-net, as Firecracker uses one: the user creates
// and configures it (`ip tuntap add tap0 mode tap`, an address, up), and
// ember attaches to it by name with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so
// every frame carries the 12-byte virtio-net header both ways.
#pragma once

#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

constexpr int kTapVnetHeaderBytes = 12;  // struct virtio_net_hdr_v1

// Opens the existing TAP `name`, non-blocking. Messages say when it is
// missing, not a TAP, busy (another process holds it) or not permitted.
Result<UniqueFd> OpenTap(const std::string& name);

// TUNSETOFFLOAD: the TUN_F_* offloads the guest accepted (the TAP then
// hands over unchecksummed and TSO/UFO frames, with the header saying so).
Status SetTapOffloads(int fd, unsigned offloads, const std::string& name);

}  // namespace ember
