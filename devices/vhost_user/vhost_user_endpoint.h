// Connecting to and listening for vhost-user backends (the endpoint
// itself is configuration: config/vm_config.h).
#pragma once

#include <chrono>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"
#include "config/vm_config.h"

namespace ember {

// Connects to a listening backend. `owner` names the device in errors.
Result<UniqueFd> ConnectToBackend(const std::string& path, const std::string& owner);
// Creates (replacing a stale socket file) and listens on `path`.
Result<UniqueFd> ListenForBackend(const std::string& path, const std::string& owner);
// Waits up to `timeout` for a backend to connect to `listener`.
Result<UniqueFd> AcceptBackend(int listener, std::chrono::milliseconds timeout,
                               const std::string& path, const std::string& owner);

}  // namespace ember
