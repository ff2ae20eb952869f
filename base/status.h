// Errors as values: a Status says what failed and why; Result<T> carries a
// value or the Status that explains its absence. Thread-safe as any value.
#pragma once

#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace ember {

class [[nodiscard]] Status {
 public:
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with where it happened: "loading kernel: <message>".
  Status Context(const std::string& where) const {
    if (ok()) return *this;
    return Status(where + ": " + message_);
  }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}

  bool failed_ = false;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(value_).ok()) std::abort();   // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }

  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace ember

// Returns the failed Status of an expression from the enclosing function.
#define EMBER_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::ember::Status ember_status_ = (expr);        \
    if (!ember_status_.ok()) return ember_status_; \
  } while (0)

// Evaluates a Result<T> expression; on error returns its Status, otherwise
// moves the value into `lhs` (a declaration or an lvalue).
#define EMBER_CONCAT_INNER(a, b) a##b
#define EMBER_CONCAT(a, b) EMBER_CONCAT_INNER(a, b)
#define EMBER_ASSIGN_OR_RETURN(lhs, expr) \
  EMBER_ASSIGN_OR_RETURN_IMPL(EMBER_CONCAT(ember_result_, __LINE__), lhs, expr)
#define EMBER_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
