// The MMDS data store: one JSON document the host sets (PUT /mmds, replace;
// PATCH /mmds, RFC 7396 merge patch) and the guest reads over HTTP, with the
// MMDS settings (version, address, IMDS compatibility) and the token
// authority for V2 sessions. Sizes and error texts are Firecracker's.
//
// Thread-safety: every method may be called from any thread; one mutex
// guards the document, the settings and the token authority (the VMM thread
// writes, a device worker reads).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "devices/mmds/mmds_token.h"

namespace ember {

enum class MmdsVersion { kV1, kV2 };

// How a guest's GET wants its answer: Accept: application/json, or EC2's
// IMDS text (the default).
enum class MmdsOutputFormat { kJson, kImds };

struct MmdsSettings {
  MmdsVersion version = MmdsVersion::kV1;
  std::array<uint8_t, 4> ipv4_address = {169, 254, 169, 254};
  bool imds_compat = false;  // IMDS text whatever the Accept header says
};

// What a guest's GET finds.
struct MmdsLookup {
  enum class Outcome { kFound, kNotFound, kUnsupportedValueType };
  Outcome outcome = Outcome::kNotFound;
  std::string body;  // the rendered value when found
};

class MmdsStore {
 public:
  // Firecracker's default mmds_size_limit: the API's payload limit.
  static constexpr size_t kDefaultSizeLimit = 51200;
  // Objects and arrays nest at most this deep (Firecracker's JSON parser
  // stops near here too): rendering and merging recurse.
  static constexpr size_t kMaxDepth = 128;

  static constexpr std::string_view kLimitExceeded =
      "MMDS limit exceeded error: The MMDS patch request doesn't fit.";
  static constexpr std::string_view kNotInitialized =
      "MMDS error: The MMDS data store is not initialized.";

  // A store with a token authority keyed from getrandom.
  static Result<std::shared_ptr<MmdsStore>> Create(
      size_t size_limit = kDefaultSizeLimit,
      MmdsTokenAuthority::Now now = MmdsTokenAuthority::Clock::now);
  explicit MmdsStore(MmdsTokenAuthority tokens, size_t size_limit = kDefaultSizeLimit);

  // Replaces the document (any JSON value, as in Firecracker). Refused, store
  // unchanged, when its compact serialisation exceeds the size limit.
  Status Put(nlohmann::json data);
  // Merges `patch` into the document (RFC 7396). Refused before the first
  // Put, and when the result would exceed the limit (store unchanged).
  Status Patch(const nlohmann::json& patch);
  // A copy of the document: null until the first Put (GET /mmds renders it
  // as {} in Firecracker).
  nlohmann::json Get() const;
  // Whether a Put or Patch error is the size limit (HTTP 413, not 400).
  static bool IsLimitExceeded(const Status& status) {
    return !status.ok() && status.message() == kLimitExceeded;
  }

  void set_size_limit(size_t size_limit);
  size_t size_limit() const;
  // Firecracker's rule: the address must be link local (169.254.0.0/16).
  Status Configure(const MmdsSettings& settings);
  MmdsSettings settings() const;

  // The value at `pointer` (RFC 6901, one trailing '/' ignored; array
  // elements by index) rendered as JSON or as IMDS text: an object's keys one
  // per line, nested objects' with a trailing '/'; a string as itself; any
  // other value is kUnsupportedValueType. imds_compat forces IMDS text.
  MmdsLookup Lookup(std::string_view pointer, MmdsOutputFormat format) const;

  Result<std::string> GenerateToken(uint32_t ttl_seconds);
  bool IsValidToken(std::string_view token) const;

 private:
  Status CheckFits(const nlohmann::json& data) const;

  mutable std::mutex mu_;
  nlohmann::json data_;        // guarded by mu_
  bool initialized_ = false;   // guarded by mu_: a Put happened
  size_t size_limit_;          // guarded by mu_
  MmdsSettings settings_;      // guarded by mu_
  MmdsTokenAuthority tokens_;  // guarded by mu_
};

}  // namespace ember
