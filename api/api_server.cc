#include "api/api_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "api/api_module.h"
#include "api/bounded_connection.h"
#include "api/request_collector.h"
#include "api/routes.h"
#include "base/metrics.h"
#include "base/stale_socket.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"
#include "jail/filtered_thread.h"

namespace ember {
namespace {

constexpr int kListenBacklog = 64;
constexpr time_t kReadTimeoutSeconds = 5;  // a stalled client frees its worker after this
constexpr size_t kMaxConnections = 128;    // between requests, on the collector's thread
constexpr size_t kMaxConnectionThreads = 16;
constexpr size_t kMaxQueuedConnections = 16;
constexpr size_t kMaxRequestsPerConnection = 1000000;
constexpr size_t kMaxHeaders = 64;  // Firecracker's clients send a handful
// Request line and headers (httplib caps each line at 8 KiB, not their
// number), plus the largest body.
constexpr size_t kMaxRequestBytes = 64 * 1024 + kMaxRequestBodyBytes;

// The routes and handlers, served one complete request at a time: the
// request collector (api/request_collector.h) owns the listening socket
// and the connections between requests; httplib parses and answers each
// request on a worker, reading from a BoundedStream.
class UnixSocketServer : public httplib::Server {
 public:
  bool ServeOne(ClientConnection& connection) {
    BoundedStream stream(connection.fd.get(),
                         {kMaxRequestBytes, std::chrono::seconds(kReadTimeoutSeconds),
                          std::chrono::seconds(kReadTimeoutSeconds)},
                         std::move(connection.unread));
    stream.StartRequest();
    const bool last = ++connection.served >= kMaxRequestsPerConnection;
    bool closed = false;
    const bool served = process_request(stream, last, closed, nullptr);
    connection.unread = stream.TakeUnread();
    // Over budget, what follows is the rest of that request, not a new one.
    return served && !closed && !last && !stream.over_budget();
  }
};

sockaddr_un SocketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// Answers carry what clients sent (paths, ids, parser messages quoting the
// body): bytes that are not UTF-8 are replaced (U+FFFD), never thrown on.
void Render(const VmmReply& reply, httplib::Response& response) {
  response.status = reply.status;
  if (reply.status != 204) {
    response.set_content(reply.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                         "application/json");
  }
}

// An exception escaping a request fails that request, never the process,
// and its text stays in the log, out of the answer's headers.
void RenderInternalError(const std::string& what, httplib::Response& response) {
  SPDLOG_ERROR("api: internal error while handling a request: {}", what);
  GlobalMetrics().api_internal_errors.Add();
  response.headers.clear();
  Render(VmmReply::Error("internal error: the request could not be handled"), response);
}

}  // namespace

Result<int> BindUnixSocket(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::Error("api socket path must be 1 to " +
                         std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes long");
  }
  sockaddr_un address = SocketAddress(path);
  EMBER_RETURN_IF_ERROR(RemoveStaleSocket(path, "api socket"));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("creating the api socket");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return ErrnoStatus("binding api socket " + path);
  }
  if (listen(fd.get(), kListenBacklog) != 0) return ErrnoStatus("listening on api socket " + path);
  return fd.release();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& socket_path,
                                                    ActionChannel& channel) {
  EMBER_ASSIGN_OR_RETURN(int socket_fd, BindUnixSocket(socket_path));
  std::unique_ptr<ApiServer> api(new ApiServer());
  api->socket_path_ = socket_path;
  auto server = std::make_unique<UnixSocketServer>();
  server->set_payload_max_length(kMaxRequestBodyBytes);
  server->set_keep_alive_timeout(kReadTimeoutSeconds);
  // httplib closes a connection after 5 requests by default; SDK clients
  // keep theirs open.
  server->set_keep_alive_max_count(kMaxRequestsPerConnection);

  auto handle = [&channel](const httplib::Request& request, httplib::Response& response) {
    try {
      Render(HandleApiRequest(
                 request.method, request.path, request.body,
                 [&channel](VmmAction action) { return channel.Submit(std::move(action)); }),
             response);
    } catch (const std::exception& error) {
      RenderInternalError(error.what(), response);
    }
  };
  // Every path goes through the one route table in routes.cc.
  server->Get(".*", handle);
  server->Put(".*", handle);
  server->Patch(".*", handle);
  server->Post(".*", handle);
  server->Delete(".*", handle);
  server->Options(".*", handle);
  // Before any body is read: Debian's httplib 0.11.4 enforces the body
  // limit only on a stated Content-Length, so a chunked or compressed body
  // could grow without bound. Firecracker takes neither. The body stays
  // unread; httplib then serves nothing more on that connection.
  server->set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    std::string refusal;
    const bool has_length = request.has_header("Content-Length");
    const bool has_body = has_length && request.get_header_value("Content-Length") != "0";
    if (request.method == "GET" && (has_body || request.has_header("Transfer-Encoding"))) {
      // (httplib would not read it, and parse it as the next request.)
      refusal = "GET request cannot have a body.";
    } else if ((request.method == "PUT" || request.method == "PATCH") && !has_length &&
               !request.has_header("Transfer-Encoding")) {
      // Without a length httplib reads a body until the client closes: no
      // bound. Firecracker answers a PUT or PATCH without a body this way.
      refusal = request.method == "PUT" ? "Empty PUT request." : "Empty PATCH request.";
    } else if (request.has_header("Transfer-Encoding")) {
      refusal = "Transfer-Encoding is not accepted: send the body with a Content-Length";
    } else if (request.has_header("Content-Encoding")) {
      refusal = "Content-Encoding is not accepted: send the body uncompressed";
    } else if (request.headers.size() > kMaxHeaders) {
      refusal = "more than " + std::to_string(kMaxHeaders) + " header fields";
    } else {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    CountApiRequest(request.method, request.path, /*failed=*/true);
    Render(VmmReply::Error(refusal), response);
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own refusals (oversized body, malformed request) as 400 JSON.
  server->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& request,
                                                                    httplib::Response& response) {
    // Our own 400s already carry their fault_message.
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    if (response.status == 413) {
      message =
          "the request body exceeds the " + std::to_string(kMaxRequestBodyBytes) + "-byte limit";
    } else {
      message = "malformed HTTP request (" + std::to_string(response.status) +
                "): " + request.method + " " + request.path;
    }
    Render(VmmReply::Error(message), response);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server->set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr thrown) {
        try {
          std::rethrow_exception(thrown);
        } catch (const std::exception& error) {
          RenderInternalError(error.what(), response);
        } catch (...) {
          RenderInternalError("an exception that is not a std::exception", response);
        }
      });

  UnixSocketServer* raw = server.get();
  Result<std::unique_ptr<RequestCollector>> collector = RequestCollector::Create(
      socket_fd,
      {kMaxConnections, kMaxRequestBytes, kMaxRequestBodyBytes,
       std::chrono::seconds(kReadTimeoutSeconds), std::chrono::seconds(kReadTimeoutSeconds),
       kMaxConnectionThreads, kMaxQueuedConnections},
      [raw](ClientConnection& connection) { return raw->ServeOne(connection); });
  if (!collector.ok()) return collector.status();
  api->server_ = std::move(server);
  api->collector_ = std::move(*collector);
  RequestCollector* front = api->collector_.get();
  // The API thread's own filter goes in before the first accept; the
  // workers it starts inherit it.
  Result<std::thread> thread = StartFilteredThread(
      "fc_api", ThreadKind::kApi, [front] { front->Run(); });  // Firecracker's name
  if (!thread.ok()) return thread.status();
  api->thread_ = std::move(*thread);
  return api;
}

}  // namespace ember

void* ember_api_start(const char* socket_path, ember::ActionChannel* channel, char** error) {
  ember::Result<std::unique_ptr<ember::ApiServer>> server =
      ember::ApiServer::Start(socket_path, *channel);
  if (!server.ok()) {
    *error = strdup(server.status().message().c_str());
    return nullptr;
  }
  return server->release();
}

void ember_api_stop(void* server) { delete static_cast<ember::ApiServer*>(server); }

namespace ember {

ApiServer::~ApiServer() {
  if (collector_) collector_->Stop();
  if (thread_.joinable()) thread_.join();
  unlink(socket_path_.c_str());
}

}  // namespace ember
