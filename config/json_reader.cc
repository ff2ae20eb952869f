#include "config/json_reader.h"

namespace ember {

std::string JsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a number with a fraction";
    default:
      return "an unsupported value";
  }
}

JsonObjectReader::JsonObjectReader(const nlohmann::json& value, std::string path)
    : value_(value), path_(std::move(path)) {
  if (!value_.is_object()) {
    status_ = Status::Error((path_.empty() ? std::string("body") : path_) +
                            ": must be a JSON object, got " + JsonTypeName(value_));
  }
}

std::string JsonObjectReader::FieldPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void JsonObjectReader::Fail(const std::string& key, const std::string& reason) {
  if (status_.ok()) status_ = Status::Error(FieldPath(key) + ": " + reason);
}

const nlohmann::json* JsonObjectReader::Find(const std::string& key, bool required) {
  if (!status_.ok()) return nullptr;
  seen_.insert(key);
  auto it = value_.find(key);
  if (it == value_.end() || it->is_null()) {
    if (required) Fail(key, "is required");
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> JsonObjectReader::String(const std::string& key, bool required) {
  const nlohmann::json* field = Find(key, required);
  if (field == nullptr) return std::nullopt;
  if (!field->is_string()) {
    Fail(key, "must be a string, got " + JsonTypeName(*field));
    return std::nullopt;
  }
  return field->get<std::string>();
}

std::optional<uint64_t> JsonObjectReader::Unsigned(const std::string& key, uint64_t min,
                                                   uint64_t max, bool required) {
  const nlohmann::json* field = Find(key, required);
  if (field == nullptr) return std::nullopt;
  auto range = "between " + std::to_string(min) + " and " + std::to_string(max);
  if (field->is_number_integer() && !field->is_number_unsigned()) {
    Fail(key, "must be an integer " + range + ", got " + std::to_string(field->get<int64_t>()));
    return std::nullopt;
  }
  if (!field->is_number_unsigned()) {
    Fail(key, "must be an integer " + range + ", got " + JsonTypeName(*field));
    return std::nullopt;
  }
  uint64_t number = field->get<uint64_t>();
  if (number < min || number > max) {
    Fail(key, "must be " + range + ", got " + std::to_string(number));
    return std::nullopt;
  }
  return number;
}

std::optional<bool> JsonObjectReader::Bool(const std::string& key) {
  const nlohmann::json* field = Find(key, false);
  if (field == nullptr) return std::nullopt;
  if (!field->is_boolean()) {
    Fail(key, "must be a boolean, got " + JsonTypeName(*field));
    return std::nullopt;
  }
  return field->get<bool>();
}

const nlohmann::json* JsonObjectReader::Object(const std::string& key) {
  const nlohmann::json* field = Find(key, false);
  if (field != nullptr && !field->is_object()) {
    Fail(key, "must be an object, got " + JsonTypeName(*field));
    return nullptr;
  }
  return field;
}

const nlohmann::json* JsonObjectReader::Array(const std::string& key) {
  const nlohmann::json* field = Find(key, false);
  if (field != nullptr && !field->is_array()) {
    Fail(key, "must be an array, got " + JsonTypeName(*field));
    return nullptr;
  }
  return field;
}

const nlohmann::json* JsonObjectReader::Raw(const std::string& key) { return Find(key, false); }

Status JsonObjectReader::Finish() const {
  if (!status_.ok()) return status_;
  for (const auto& [key, unused] : value_.items()) {
    if (!seen_.count(key)) {
      return Status::Error(FieldPath(key) + ": unknown field");
    }
  }
  return Status::Ok();
}

Result<nlohmann::json> ParseJsonDocument(std::string_view text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    return Status::Error(std::string("invalid JSON: ") + error.what());
  }
}

}  // namespace ember
