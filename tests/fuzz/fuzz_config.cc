// Fuzz target: the config file and the bodies of the resources this change
// added (drives, their PATCH, network interfaces on a TAP and their PATCH,
// rate limiters, vsock). Any bytes: an error naming the field, never a crash or
// an exception past the parser.
#include <nlohmann/json.hpp>
#include <string_view>

#include "config/config_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseVmConfig(text);
  const nlohmann::json body = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  (void)ParseDrive(body, "", "d");
  (void)ParseDriveUpdate(body, "d");
  (void)ParseNetworkInterface(body, "", "eth0");
  (void)ParseNetworkInterfaceUpdate(body, "eth0");
  (void)ParseRateLimiter(body, "rate_limiter");
  (void)ParseVsock(body, "");
  return 0;
}
