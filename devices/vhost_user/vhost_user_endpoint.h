// Connecting to and listening for vhost-user backends (the endpoint
// itself is configuration: config/vm_config.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"
#include "config/vm_config.h"

namespace ember {

// Who may be a vhost-user backend: it receives all of guest memory, so a
// peer is checked (SO_PEERCRED) on every connect and accept. Root and
// ember's own user always may; `uid` (--vhost-user-peer-uid) adds one
// more. Set once at start-up, before any device is built.
void AllowBackendUid(uid_t uid);
// The check itself, for a connection accepted elsewhere.
Status CheckBackendPeer(int fd, const std::string& path, const std::string& owner);

// Connects to a listening backend. `owner` names the device in errors.
Result<UniqueFd> ConnectToBackend(const std::string& path, const std::string& owner);
// Creates (replacing a stale socket file) and listens on `path`.
Result<UniqueFd> ListenForBackend(const std::string& path, const std::string& owner);
// Waits up to `timeout` for a backend to connect to `listener`.
Result<UniqueFd> AcceptBackend(int listener, std::chrono::milliseconds timeout,
                               const std::string& path, const std::string& owner);

}  // namespace ember
