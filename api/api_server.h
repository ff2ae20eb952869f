// The REST API: cpp-httplib serving on a Unix socket. The API thread
// collects each request's bytes (api/request_collector.h); each complete
// request is parsed on a worker thread into a typed action, handed to the
// VMM thread through the ActionChannel, and the typed reply rendered as
// HTTP. Worker threads never touch VM state.
//
// Thread-safety: Start and the destructor are for the VMM thread; the
// server's own threads only use the channel.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "api/action_channel.h"
#include "base/status.h"

namespace httplib {
class Server;
}

namespace ember {

class RequestCollector;

class ApiServer {
 public:
  // Binds `socket_path` (replacing a stale socket file, refusing a path
  // that exists and is not a socket or that another process listens on)
  // and serves on a background thread.
  static Result<std::unique_ptr<ApiServer>> Start(const std::string& socket_path,
                                                  ActionChannel& channel);
  ~ApiServer();  // stops serving and removes the socket file

  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  ApiServer() = default;

  std::string socket_path_;
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<RequestCollector> collector_;
  std::thread thread_;
};

// Binds and listens on an AF_UNIX stream socket at `path` (exposed for tests).
Result<int> BindUnixSocket(const std::string& path);

}  // namespace ember
