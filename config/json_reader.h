// Reads one JSON object field by field with the checks every resource
// needs: required fields, types, ranges, and unknown fields. The first
// problem is kept and names the field ("machine-config.vcpu_count: ...").
// Used by the config-file parser and the API request parsers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ember {

class JsonObjectReader {
 public:
  JsonObjectReader(const nlohmann::json& value, std::string path);

  // Each getter returns nullopt when the field is absent or null (or on
  // error, which is then recorded).
  std::optional<std::string> String(const std::string& key, bool required = false);
  std::optional<uint64_t> Unsigned(const std::string& key, uint64_t min, uint64_t max,
                                   bool required = false);
  std::optional<bool> Bool(const std::string& key);
  // A nested object or array, for the caller to parse.
  const nlohmann::json* Object(const std::string& key);
  const nlohmann::json* Array(const std::string& key);
  // Marks a field as known without reading it.
  const nlohmann::json* Raw(const std::string& key);

  // Fails on the first recorded problem, then on any field not read.
  Status Finish() const;

  std::string FieldPath(const std::string& key) const;

 private:
  const nlohmann::json* Find(const std::string& key, bool required);
  void Fail(const std::string& key, const std::string& reason);

  const nlohmann::json& value_;
  std::string path_;
  std::set<std::string> seen_;
  Status status_ = Status::Ok();
};

// Parses a whole document (a config file, a request body). Every failure
// of nlohmann's parser, syntax or a number too big for a double
// (out_of_range.406), is an error here: exceptions stop at this boundary.
Result<nlohmann::json> ParseJsonDocument(std::string_view text);

// Name of a JSON value's type for messages ("a string", "an integer").
std::string JsonTypeName(const nlohmann::json& value);

}  // namespace ember
