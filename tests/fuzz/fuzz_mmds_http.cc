// Fuzz target: the bytes a guest sends to MMDS over one TCP connection,
// answered request by request as the network stack does (consume what
// Respond says, pass the rest again), on a store with data, in V1 or V2
// (first byte). Never a crash or an exception; every answer is one
// well-formed response, consumes at least one byte and never more than it
// got; nothing waits past the request bound.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "devices/mmds/mmds_http.h"

namespace {

// Checks the status line and that Content-Length matches the body.
void CheckResponse(const std::string& response) {
  if (response.compare(0, 7, "HTTP/1.") != 0) std::abort();
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) std::abort();
  const std::string_view head(response.data(), head_end);
  const size_t at = head.find("\r\nContent-Length: ");
  if (at == std::string_view::npos) std::abort();
  const size_t length = std::strtoul(response.c_str() + at + 18, nullptr, 10);
  if (length != response.size() - head_end - 4) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  // A fixed key and clock: a run is reproducible.
  MmdsTokenAuthority::Key key{};
  auto store = std::make_shared<MmdsStore>(
      MmdsTokenAuthority(key, [] { return MmdsTokenAuthority::Clock::time_point{}; }));
  const nlohmann::json document = nlohmann::json::parse(
      R"({"latest": {"meta-data": {"ami-id": "ami-1", "list": ["a", {"b": 1}], "n": 2.5,
          "o": {"p": "q"}, "e": ""}}, "a~b": {"c/d": null}})");
  if (!store->Put(document).ok()) std::abort();
  MmdsSettings settings;
  settings.version = (mode & 1) ? MmdsVersion::kV2 : MmdsVersion::kV1;
  settings.imds_compat = (mode & 2) != 0;
  if (!store->Configure(settings).ok()) std::abort();
  MmdsHttpServer server(store);

  // Bit 2: the bytes arrive in small pieces, as TCP segments may bring them.
  const size_t step = (mode & 4) ? 1 + (mode >> 3) : input.size();
  std::string buffer;
  size_t fed = 0;
  while (true) {
    if (fed < input.size()) {
      const size_t n = std::min(step, input.size() - fed);
      buffer.append(input.substr(fed, n));
      fed += n;
    }
    std::optional<MmdsHttpExchange> exchange = server.Respond(buffer);
    if (!exchange) {
      if (buffer.size() >= MmdsHttpServer::kMaxRequestBytes) std::abort();
      if (fed == input.size()) break;
      continue;
    }
    if (exchange->consumed == 0 || exchange->consumed > buffer.size()) std::abort();
    CheckResponse(exchange->response);
    if (exchange->close) break;
    buffer.erase(0, exchange->consumed);
  }
  return 0;
}
