#include "base/logger.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace ember {
namespace {

std::optional<spdlog::level::level_enum> ParseLevel(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name == "error") return spdlog::level::err;
  if (name == "warning" || name == "warn") return spdlog::level::warn;
  if (name == "info") return spdlog::level::info;
  if (name == "debug") return spdlog::level::debug;
  if (name == "trace") return spdlog::level::trace;
  if (name == "off") return spdlog::level::off;
  return std::nullopt;
}

}  // namespace

bool IsLogLevel(const std::string& name) { return ParseLevel(name).has_value(); }

Status ConfigureLogger(const LoggerOptions& options) {
  auto level = ParseLevel(options.level);
  if (!level) {
    return Status::Error("level: unknown log level \"" + options.level +
                         "\" (use Error, Warning, Info, Debug, Trace or Off)");
  }
  // Loggers are built unregistered so that PUT /logger can replace one.
  spdlog::sink_ptr sink;
  if (options.path) {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(*options.path);
    } catch (const spdlog::spdlog_ex& error) {
      return Status::Error("log_path: " + *options.path + ": " + error.what());
    }
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>("ember", std::move(sink));
  std::string pattern = "%Y-%m-%dT%H:%M:%S.%f [" + options.instance_id + "]";
  if (options.show_level) pattern += " %l";
  if (options.show_log_origin) pattern += " %s:%#";
  pattern += " %v";
  logger->set_pattern(pattern);
  logger->set_level(*level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace ember
