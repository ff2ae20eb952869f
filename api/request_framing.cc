#include "api/request_framing.h"

#include <cctype>

namespace ember {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

bool MethodHasBody(std::string_view method) {
  for (std::string_view with_body : {"POST", "PUT", "PATCH", "DELETE", "PRI"}) {
    if (method == with_body) return true;
  }
  return false;
}

// A Content-Length httplib will read exactly: digits only, at most `max`.
bool ParseLength(std::string_view text, size_t max, size_t& length) {
  if (text.empty() || text.size() > 12) return false;
  length = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    length = length * 10 + static_cast<size_t>(c - '0');
  }
  return length <= max;
}

}  // namespace

size_t BytesToServe(std::string_view bytes, size_t max_body) {
  // An empty request line: httplib refuses it at once.
  if (bytes.substr(0, 2) == "\r\n") return 2;
  const size_t blank = bytes.find("\n\r\n");
  if (blank == std::string_view::npos) return 0;
  const size_t head_size = blank + 3;
  const std::string_view head = bytes.substr(0, head_size);
  const size_t line_end = head.find('\n');
  const std::string_view method = head.substr(0, head.substr(0, line_end).find(' '));
  if (!MethodHasBody(method)) return head_size;

  std::string_view length_text;
  bool has_length = false;
  for (size_t at = line_end + 1; at < blank + 1;) {
    const size_t end = head.find('\n', at);
    const std::string_view line = head.substr(at, end - at);
    at = end + 1;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    if (EqualsIgnoringCase(name, "Expect") || EqualsIgnoringCase(name, "Transfer-Encoding")) {
      return head_size;
    }
    if (!has_length && EqualsIgnoringCase(name, "Content-Length")) {
      has_length = true;  // httplib reads the first one
      length_text = Trimmed(line.substr(colon + 1));
    }
  }
  size_t length = 0;
  if (!has_length || !ParseLength(length_text, max_body, length)) return head_size;
  return bytes.size() >= head_size + length ? head_size + length : 0;
}

}  // namespace ember
