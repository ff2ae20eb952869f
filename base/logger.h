// spdlog set-up with Firecracker's logger options: level names (Error,
// Warning, Info, Debug, Trace, Off), an optional file, and whether lines show
// their level and origin. Called by the VMM thread before other threads exist.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ember {

struct LoggerOptions {
  std::string level = "Info";
  std::optional<std::string> path;  // default: stderr
  bool show_level = true;
  bool show_log_origin = false;
  std::string instance_id = "anonymous-instance";
};

// True for the level names ConfigureLogger accepts (any case).
bool IsLogLevel(const std::string& name);

// `text` made safe for one log line: bytes outside printable ASCII become
// \xNN (no forged lines, no terminal escapes) and more than `max_bytes`
// are cut, saying how long it was. For anything a client or guest chose.
std::string LogSafe(std::string_view text, size_t max_bytes = 256);

// Fails on an unknown level name or a log file that cannot be opened.
Status ConfigureLogger(const LoggerOptions& options);

}  // namespace ember
