// Where a vhost-user backend is reached, and how ember behaves when it
// goes away: as a client (ember connects to the backend's socket; the
// default) or as a server (ember creates the socket and the backend
// connects, like QEMU's server=on and OVS-DPDK's dpdkvhostuserclient).
#pragma once

#include <chrono>
#include <string>

#include "vmm/status.h"
#include "vmm/unique_fd.h"

namespace ember {

enum class SocketMode { kClient, kServer };

struct VhostUserEndpoint {
  std::string socket;
  SocketMode mode = SocketMode::kClient;
  // Server mode: how long InstanceStart waits for the backend to connect.
  std::chrono::milliseconds connect_timeout{10000};
  // Client mode: how often ember retries after a hang-up, and when it gives
  // up (0: never).
  std::chrono::milliseconds reconnect_interval{200};
  std::chrono::milliseconds reconnect_timeout{0};
};

// Connects to a listening backend. `owner` names the device in errors.
Result<UniqueFd> ConnectToBackend(const std::string& path, const std::string& owner);
// Creates (replacing a stale socket file) and listens on `path`.
Result<UniqueFd> ListenForBackend(const std::string& path, const std::string& owner);
// Waits up to `timeout` for a backend to connect to `listener`.
Result<UniqueFd> AcceptBackend(int listener, std::chrono::milliseconds timeout,
                               const std::string& path, const std::string& owner);

}  // namespace ember
