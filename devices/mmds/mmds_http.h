// MMDS's guest-facing HTTP/1.x, as Firecracker's MMDS answers it: GET reads
// the data store (V2: with a session token), PUT /latest/api/token issues
// tokens, anything else is refused with Firecracker's status codes and texts.
// A request is the bytes up to its first blank line (no bodies: one with a
// Content-Length is refused) and must end within kMaxRequestBytes; nothing
// is buffered here, the caller keeps the bytes and passes them again.
//
// Guest bytes are never logged, and nothing the guest sends throws out of
// Respond.
//
// Thread-safety: the server holds no per-connection state; Respond may be
// called from any threads at once (the store is thread-safe).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "devices/mmds/mmds_responder.h"
#include "devices/mmds/mmds_store.h"

namespace ember {

class MmdsHttpServer : public MmdsResponder {
 public:
  // Firecracker's MMDS receive buffer: a request that has not ended within
  // this many bytes is an error and ends the connection.
  static constexpr size_t kMaxRequestBytes = 2500;

  explicit MmdsHttpServer(std::shared_ptr<MmdsStore> store);

  std::optional<MmdsHttpExchange> Respond(std::string_view received) override;

 private:
  MmdsHttpExchange Serve(std::string_view request) const;

  std::shared_ptr<MmdsStore> store_;
};

}  // namespace ember
