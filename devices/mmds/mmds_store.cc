#include "devices/mmds/mmds_store.h"

#include <charconv>
#include <utility>
#include <vector>

namespace ember {
namespace {

using nlohmann::json;

// Compact, as Firecracker measures and serves it; bytes that are not UTF-8
// (only possible in a document built in code) become U+FFFD, never a throw.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// How many objects and arrays nest at the deepest point (a scalar: 0),
// counted without recursion.
size_t Depth(const json& root) {
  size_t deepest = 0;
  std::vector<std::pair<const json*, size_t>> pending{{&root, 0}};
  while (!pending.empty()) {
    auto [value, depth] = pending.back();
    pending.pop_back();
    if (!value->is_structured()) continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    for (const json& child : *value) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

Status TooDeep() {
  return Status::Error("MMDS error: the data nests deeper than " +
                       std::to_string(MmdsStore::kMaxDepth) + " levels");
}

// One reference token of a JSON pointer: "~1" is '/', then "~0" is '~'.
std::string Unescape(std::string_view token) {
  std::string step;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token.substr(i, 2) == "~1") {
      step += '/';
      ++i;
    } else {
      step += token[i];
    }
  }
  std::string out;
  for (size_t i = 0; i < step.size(); ++i) {
    if (step.compare(i, 2, "~0") == 0) {
      out += '~';
      ++i;
    } else {
      out += step[i];
    }
  }
  return out;
}

// RFC 6901 lookup that never throws: unknown keys, bad or out-of-range
// indices (no '+', no leading zeros, no '-') and scalars all give nullptr.
const json* Find(const json& root, std::string_view pointer) {
  if (pointer.empty()) return &root;
  if (pointer.front() != '/') return nullptr;
  const json* at = &root;
  std::string_view rest = pointer.substr(1);
  while (true) {
    const size_t slash = rest.find('/');
    const std::string token = Unescape(rest.substr(0, slash));
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      if (token.empty() || (token[0] == '0' && token.size() > 1)) return nullptr;
      size_t index = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || end != token.data() + token.size()) return nullptr;
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
    if (slash == std::string_view::npos) return at;
    rest = rest.substr(slash + 1);
  }
}

MmdsLookup RenderImds(const json& value) {
  if (value.is_object()) {
    std::string body;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it != value.begin()) body += '\n';
      body += it.key();
      if (it.value().is_object()) body += '/';
    }
    return {MmdsLookup::Outcome::kFound, std::move(body)};
  }
  if (value.is_string()) return {MmdsLookup::Outcome::kFound, value.get<std::string>()};
  return {MmdsLookup::Outcome::kUnsupportedValueType, {}};
}

}  // namespace

Result<std::shared_ptr<MmdsStore>> MmdsStore::Create(size_t size_limit,
                                                     MmdsTokenAuthority::Now now) {
  Result<MmdsTokenAuthority> tokens = MmdsTokenAuthority::Create(std::move(now));
  if (!tokens.ok()) return tokens.status().Context("MMDS token authority");
  return std::make_shared<MmdsStore>(std::move(tokens).value(), size_limit);
}

MmdsStore::MmdsStore(MmdsTokenAuthority tokens, size_t size_limit)
    : size_limit_(size_limit), tokens_(std::move(tokens)) {}

Status MmdsStore::CheckFits(const json& data) const {
  if (Depth(data) > kMaxDepth) return TooDeep();
  if (Dump(data).size() > size_limit_) return Status::Error(std::string(kLimitExceeded));
  return Status::Ok();
}

Status MmdsStore::Put(json data) {
  std::lock_guard lock(mu_);
  EMBER_RETURN_IF_ERROR(CheckFits(data));
  data_ = std::move(data);
  initialized_ = true;
  return Status::Ok();
}

Status MmdsStore::Patch(const json& patch) {
  std::lock_guard lock(mu_);
  if (!initialized_) return Status::Error(std::string(kNotInitialized));
  // The depth is checked before merging: merge_patch recurses.
  if (Depth(patch) > kMaxDepth) return TooDeep();
  json merged = data_;
  merged.merge_patch(patch);
  EMBER_RETURN_IF_ERROR(CheckFits(merged));
  data_ = std::move(merged);
  return Status::Ok();
}

json MmdsStore::Get() const {
  std::lock_guard lock(mu_);
  return data_;
}

void MmdsStore::set_size_limit(size_t size_limit) {
  std::lock_guard lock(mu_);
  size_limit_ = size_limit;
}

size_t MmdsStore::size_limit() const {
  std::lock_guard lock(mu_);
  return size_limit_;
}

Status MmdsStore::Configure(const MmdsSettings& settings) {
  if (settings.ipv4_address[0] != 169 || settings.ipv4_address[1] != 254) {
    return Status::Error("The MMDS IPv4 address is not link local.");
  }
  std::lock_guard lock(mu_);
  settings_ = settings;
  return Status::Ok();
}

MmdsSettings MmdsStore::settings() const {
  std::lock_guard lock(mu_);
  return settings_;
}

MmdsLookup MmdsStore::Lookup(std::string_view pointer, MmdsOutputFormat format) const {
  if (!pointer.empty() && pointer.back() == '/') pointer.remove_suffix(1);
  std::lock_guard lock(mu_);
  const json* value = Find(data_, pointer);
  if (value == nullptr) return {};
  // EC2's IMDS answers text whatever the Accept header asks.
  if (settings_.imds_compat || format == MmdsOutputFormat::kImds) return RenderImds(*value);
  return {MmdsLookup::Outcome::kFound, Dump(*value)};
}

Result<std::string> MmdsStore::GenerateToken(uint32_t ttl_seconds) {
  std::lock_guard lock(mu_);
  return tokens_.Generate(ttl_seconds);
}

bool MmdsStore::IsValidToken(std::string_view token) const {
  std::lock_guard lock(mu_);
  return tokens_.IsValid(token);
}

}  // namespace ember
