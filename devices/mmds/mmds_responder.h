// The seam between MMDS's network stack (ARP/IPv4/TCP, mmds_stack) and its
// HTTP layer (mmds_http): the stack hands over a connection's received
// bytes and sends back what the responder answers. Header only, so the stack
// needs nothing else from the HTTP side.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ember {

struct MmdsHttpExchange {
  size_t consumed = 0;   // bytes of the received buffer that made up the request
  std::string response;  // the full HTTP response bytes to send
  bool close = false;    // close the connection after sending
};

// Serves requests a guest sends to MMDS.
//
// Thread-safety: Respond may be called from any one thread at a time per
// connection; the store it reads is thread-safe.
class MmdsResponder {
 public:
  virtual ~MmdsResponder() = default;
  // `received`: the connection's bytes not yet consumed. Returns nullopt while
  // the request is still incomplete (and not yet invalid); otherwise one
  // request's answer.
  virtual std::optional<MmdsHttpExchange> Respond(std::string_view received) = 0;
};

}  // namespace ember
