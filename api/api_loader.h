// Loads libember_api.so (installed next to the ember binary) and starts the
// API server through its C entry points. VMM thread only.
#pragma once

#include <memory>
#include <string>

#include "api/action_channel.h"
#include "base/status.h"

namespace ember {

class LoadedApiServer {
 public:
  // Loads the module and serves `socket_path`.
  static Result<std::unique_ptr<LoadedApiServer>> Start(const std::string& socket_path,
                                                        ActionChannel& channel);
  ~LoadedApiServer();  // stops serving, removes the socket file

  LoadedApiServer(const LoadedApiServer&) = delete;
  LoadedApiServer& operator=(const LoadedApiServer&) = delete;

 private:
  LoadedApiServer() = default;
  void* library_ = nullptr;
  void* server_ = nullptr;
  void (*stop_)(void*) = nullptr;
};

}  // namespace ember
