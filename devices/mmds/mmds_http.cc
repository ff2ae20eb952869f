#include "devices/mmds/mmds_http.h"

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ember {
namespace {

constexpr std::string_view kTokenPath = "/latest/api/token";
constexpr std::string_view kPlainText = "text/plain";
constexpr std::string_view kJson = "application/json";

enum class Method { kGet, kPut, kPatch, kDelete };

struct Header {
  std::string name;  // as the guest spelled it, trimmed
  std::string value;
};

struct Request {
  Method method = Method::kGet;
  std::string_view uri;
  bool http10 = false;
  MmdsOutputFormat accept = MmdsOutputFormat::kImds;
  uint32_t content_length = 0;
  std::vector<Header> headers;  // those micro_http leaves to the application

  // The first header named any of `names` (ASCII case-insensitive).
  const Header* Find(std::initializer_list<std::string_view> names) const;
};

struct Reply {
  int code = 200;
  std::string_view content_type = kPlainText;
  std::string body;
  bool allow_get_put = false;
  std::optional<Header> extra;
};

// A request micro_http would not parse; Firecracker answers these HTTP/1.1
// with micro_http's default content type.
struct ParseError {
  int code;
  std::string body;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

const Header* Request::Find(std::initializer_list<std::string_view> names) const {
  for (const Header& header : headers) {
    for (std::string_view name : names) {
      if (EqualsNoCase(header.name, name)) return &header;
    }
  }
  return nullptr;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
// as Rust's from_utf8 checks it.
bool IsUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, min = 0x800, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// A u32 as Rust's str::parse reads it: digits, optionally after one '+'.
std::optional<uint32_t> ParseU32(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > UINT32_MAX) return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

ParseError InvalidRequest() { return {400, "Invalid request."}; }

// One header line, as micro_http reads it: the headers it knows are checked
// (and some refuse the request), the rest are kept for the application.
std::optional<ParseError> ParseHeader(std::string_view line, Request& request) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return ParseError{400, "Header is incorrectly formatted. Key: " + std::string(line)};
  }
  const std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
  std::string lower(Trim(name));
  for (char& c : lower) c = Lower(c);
  if (lower == "content-length") {
    const std::optional<uint32_t> length = ParseU32(Trim(value));
    if (!length) {
      return ParseError{
          400, "Invalid value. Key:" + std::string(name) + "; Value:" + std::string(value)};
    }
    request.content_length = *length;
  } else if (lower == "accept") {
    // Anything but these two leaves the default (IMDS text).
    if (Trim(value) == kPlainText) request.accept = MmdsOutputFormat::kImds;
    if (Trim(value) == kJson) request.accept = MmdsOutputFormat::kJson;
  } else if (lower == "accept-encoding") {
    const std::string_view encodings = Trim(value);
    if (encodings.empty()) return InvalidRequest();
    // Refusing identity leaves no encoding micro_http can answer in.
    std::string_view rest = encodings;
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view piece = rest.substr(0, comma);
      if (Trim(piece) == "identity;q=0" ||
          (Trim(piece) == "*;q=0" && encodings.find("identity") == std::string_view::npos)) {
        return ParseError{400, "Invalid value. Key:Accept-Encoding; Value:" + std::string(piece)};
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  } else if (lower == "content-type" || lower == "transfer-encoding" || lower == "expect" ||
             lower == "server") {
    // micro_http parses these and ignores values it does not support.
  } else {
    std::string key(Trim(name));
    for (Header& header : request.headers) {
      if (header.name == key) {
        header.value = std::string(Trim(value));
        return std::nullopt;
      }
    }
    request.headers.push_back({std::move(key), std::string(Trim(value))});
  }
  return std::nullopt;
}

// `bytes`: one request up to and including its blank line.
std::variant<Request, ParseError> Parse(std::string_view bytes) {
  const size_t line_end = bytes.find("\r\n");
  if (line_end == std::string_view::npos) return InvalidRequest();
  const std::string_view line = bytes.substr(0, line_end);
  // "GET" + SP + one URI byte + SP + "HTTP/1.x", roughly.
  if (line.size() < 14) return InvalidRequest();
  const size_t method_end = line.find(' ');
  if (method_end == std::string_view::npos) return InvalidRequest();
  const std::string_view uri_and_version = line.substr(method_end + 1);
  const size_t uri_end = uri_and_version.find(' ');
  if (uri_end == std::string_view::npos) return InvalidRequest();

  Request request;
  const std::string_view method = line.substr(0, method_end);
  if (method == "GET") {
    request.method = Method::kGet;
  } else if (method == "PUT") {
    request.method = Method::kPut;
  } else if (method == "PATCH") {
    request.method = Method::kPatch;
  } else if (method == "DELETE") {
    request.method = Method::kDelete;
  } else {
    return ParseError{501, "Unsupported HTTP method."};
  }
  request.uri = uri_and_version.substr(0, uri_end);
  if (request.uri.empty()) return ParseError{400, "Empty URI not allowed."};
  if (!IsUtf8(request.uri)) return ParseError{400, "Cannot parse URI as UTF-8."};
  const std::string_view version = uri_and_version.substr(uri_end + 1);
  if (version == "HTTP/1.0") {
    request.http10 = true;
  } else if (version != "HTTP/1.1") {
    return ParseError{501, "Unsupported HTTP version."};
  }

  const std::string_view after_line = bytes.substr(line_end);
  const size_t headers_end = after_line.find("\r\n\r\n");
  if (headers_end == std::string_view::npos) return InvalidRequest();
  if (headers_end == 0) return request;
  const std::string_view headers = after_line.substr(2, headers_end - 2);
  if (!IsUtf8(headers)) return InvalidRequest();
  std::string_view rest = headers;
  while (!rest.empty()) {
    const size_t end = rest.find("\r\n");
    const std::string_view header = rest.substr(0, end);
    if (header.empty()) break;
    if (std::optional<ParseError> error = ParseHeader(header, request)) return *std::move(error);
    if (end == std::string_view::npos) break;
    rest = rest.substr(end + 2);
  }
  // No body is read: the request ends at its blank line, so a body the
  // headers announce is never there.
  if (request.content_length != 0) return InvalidRequest();
  return request;
}

// The path micro_http gives the application: what follows the host of an
// absolute URI, or an origin-form URI; empty for anything else.
std::string_view AbsolutePath(std::string_view uri) {
  constexpr std::string_view kScheme = "http://";
  if (uri.substr(0, kScheme.size()) == kScheme) {
    const std::string_view authority_and_path = uri.substr(kScheme.size());
    const size_t slash = authority_and_path.find('/');
    return slash == std::string_view::npos ? std::string_view() : authority_and_path.substr(slash);
  }
  return !uri.empty() && uri.front() == '/' ? uri : std::string_view();
}

// "a//b///c" is "a/b/c".
std::string CollapseSlashes(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  return out;
}

std::string ResourceNotFound(std::string_view path) {
  return "Resource not found: " + std::string(path) + ".";
}

Reply Get(const MmdsStore& store, const Request& request, std::string_view path) {
  MmdsLookup found = store.Lookup(CollapseSlashes(path), request.accept);
  switch (found.outcome) {
    case MmdsLookup::Outcome::kFound:
      // The type the guest asked for, even when imds_compat answered text
      // (Firecracker does the same).
      return {200, request.accept == MmdsOutputFormat::kJson ? kJson : kPlainText,
              std::move(found.body)};
    case MmdsLookup::Outcome::kUnsupportedValueType:
      return {501, kPlainText, "Cannot retrieve value. The value has an unsupported type."};
    case MmdsLookup::Outcome::kNotFound:
      break;
  }
  return {404, kPlainText, ResourceNotFound(path)};
}

Reply PutToken(MmdsStore& store, const Request& request, std::string_view path) {
  // A token must come from the guest itself, not through a proxy in it.
  if (const Header* forwarded = request.Find({"x-forwarded-for"})) {
    return {400, kPlainText,
            "Invalid header. Reason: Unsupported header name. Key: " + forwarded->name};
  }
  if (CollapseSlashes(path) != kTokenPath) return {404, kPlainText, ResourceNotFound(path)};
  const Header* ttl_header =
      request.Find({"x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds"});
  if (ttl_header == nullptr) {
    return {400, kPlainText,
            "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "
            "`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime."};
  }
  const std::optional<uint32_t> ttl = ParseU32(ttl_header->value);
  if (!ttl) {
    return {400, kPlainText,
            "Invalid header. Reason: Invalid value. Key:" + ttl_header->name +
                "; Value:" + ttl_header->value};
  }
  Result<std::string> token = store.GenerateToken(*ttl);
  if (!token.ok()) return {400, kPlainText, token.status().message()};
  Reply reply{200, kPlainText, std::move(token).value()};
  // Echoed under the name the guest used (it matched an ASCII name).
  reply.extra = Header{ttl_header->name, std::to_string(*ttl)};
  return reply;
}

Reply Dispatch(MmdsStore& store, const Request& request) {
  const std::string_view path = AbsolutePath(request.uri);
  if (path.empty()) return {400, kPlainText, "Invalid URI."};
  switch (request.method) {
    case Method::kGet: {
      const Header* token = request.Find({"x-metadata-token", "x-aws-ec2-metadata-token"});
      // V1 serves with or without a token, valid or not.
      if (store.settings().version == MmdsVersion::kV2) {
        if (token == nullptr) {
          return {401, kPlainText,
                  "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` "
                  "header to specify the session token."};
        }
        if (!store.IsValidToken(token->value)) return {401, kPlainText, "MMDS token not valid."};
      }
      return Get(store, request, path);
    }
    case Method::kPut:
      return PutToken(store, request, path);
    case Method::kPatch:
    case Method::kDelete:
      break;
  }
  Reply reply{405, kPlainText, "Not allowed HTTP method."};
  reply.allow_get_put = true;
  return reply;
}

std::string Render(bool http10, const Reply& reply, bool close) {
  std::string out = http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(reply.code);
  // micro_http writes no reason phrase, only the space before it.
  out += " \r\nServer: Firecracker API\r\n";
  out += close ? "Connection: close\r\n" : "Connection: keep-alive\r\n";
  if (reply.allow_get_put) out += "Allow: GET, PUT\r\n";
  if (reply.extra) out += reply.extra->name + ": " + reply.extra->value + "\r\n";
  out += "Content-Type: ";
  out += reply.content_type;
  out += "\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
  out += reply.body;
  return out;
}

// Where the first request in `received` ends: after the first LF that is
// followed by LF or CR LF, within `limit` bytes (the framing Firecracker's
// MMDS endpoint uses).
std::optional<size_t> RequestEnd(std::string_view received, size_t limit) {
  const std::string_view window = received.substr(0, limit);
  for (size_t i = window.find('\n'); i != std::string_view::npos; i = window.find('\n', i + 1)) {
    if (i + 1 < window.size() && window[i + 1] == '\n') return i + 2;
    if (window.substr(i + 1, 2) == "\r\n") return i + 3;
  }
  return std::nullopt;
}

}  // namespace

MmdsHttpServer::MmdsHttpServer(std::shared_ptr<MmdsStore> store) : store_(std::move(store)) {}

std::optional<MmdsHttpExchange> MmdsHttpServer::Respond(std::string_view received) {
  try {
    if (std::optional<size_t> end = RequestEnd(received, kMaxRequestBytes)) {
      MmdsHttpExchange exchange = Serve(received.substr(0, *end));
      exchange.consumed = exchange.close ? received.size() : *end;
      return exchange;
    }
    if (received.size() < kMaxRequestBytes) return std::nullopt;
    // Firecracker resets such a connection; an answer first says why.
    const Reply reply{413, kJson,
                      "Request payload with size " + std::to_string(received.size()) +
                          " is larger than the limit of " + std::to_string(kMaxRequestBytes) +
                          " allowed by server."};
    return MmdsHttpExchange{received.size(), Render(false, reply, true), true};
  } catch (const std::exception&) {
    // Only allocation can fail here; the connection goes rather than the VMM.
    const Reply reply{500, kPlainText, "Internal error."};
    return MmdsHttpExchange{received.size(), Render(false, reply, true), true};
  }
}

MmdsHttpExchange MmdsHttpServer::Serve(std::string_view bytes) const {
  std::variant<Request, ParseError> parsed = Parse(bytes);
  if (auto* error = std::get_if<ParseError>(&parsed)) {
    // The stream may be out of step after a request we could not read.
    const Reply reply{error->code, kJson, std::move(error->body)};
    return {0, Render(false, reply, true), true};
  }
  const Request& request = std::get<Request>(parsed);
  const Header* connection = request.Find({"connection"});
  const bool close = connection != nullptr && EqualsNoCase(connection->value, "close");
  const Reply reply = Dispatch(*store_, request);
  return {0, Render(request.http10, reply, close), close};
}

}  // namespace ember
