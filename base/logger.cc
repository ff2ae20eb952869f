#include "base/logger.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "base/metrics.h"
#include "base/output_file.h"
#include "base/printable.h"

namespace ember {
namespace {

// Each line is one write on a non-blocking file (base/output_file.h): a
// log FIFO whose reader is late or gone drops lines, counted as
// logger.missed_log_count, and never stops the thread that logs.
class NonBlockingFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit NonBlockingFileSink(UniqueFd fd) : fd_(std::move(fd)) {
    struct stat info {};
    if (fstat(fd_.get(), &info) == 0 && S_ISREG(info.st_mode)) room_ = OutputFileLimit();
  }

 protected:
  // A regular file grows by at most OutputFileLimit() bytes; the last line
  // that fits says so.
  void sink_it_(const spdlog::details::log_msg& message) override {
    static constexpr std::string_view kFull = "ember: the log file reached its size limit\n";
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    if (room_ != UINT64_MAX) {
      // Room for the note is always kept back, so it always fits.
      if (line.size() + kFull.size() > room_) {
        if (!full_) full_ = WriteWhole(fd_.get(), kFull.data(), kFull.size());
        GlobalMetrics().logger_missed_log_count.Add();
        return;
      }
      room_ -= line.size();
    }
    if (!WriteWhole(fd_.get(), line.data(), line.size())) {
      GlobalMetrics().logger_missed_log_count.Add();
    }
  }
  void flush_() override {}

 private:
  UniqueFd fd_;
  uint64_t room_ = UINT64_MAX;  // bytes a regular file may still take
  bool full_ = false;
};

// %* in the pattern: the message with what came from outside made safe
// (base/printable.h): a path or id with a newline cannot forge a log line.
class PrintablePayload final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    std::string text;
    AppendPrintable(std::string_view(message.payload.data(), message.payload.size()), text);
    out.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PrintablePayload>();
  }
};

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

std::string LogSafe(std::string_view text, size_t max_bytes) {
  std::string safe;
  const size_t shown = std::min(text.size(), max_bytes);
  for (size_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      safe += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      safe += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  if (shown < text.size()) safe += "... (" + std::to_string(text.size()) + " bytes)";
  return safe;
}

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
    Result<UniqueFd> file = OpenOutputFile(*options.path);
    if (!file.ok()) {
      return Status::Error("Failed to open target file: " + file.status().message() +
                           " (log_path " + *options.path + ")");
    }
    sink = std::make_shared<NonBlockingFileSink>(std::move(*file));
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>("ember", std::move(sink));
  std::string pattern = "%Y-%m-%dT%H:%M:%S.%f [" + options.instance_id + "]";
  if (options.show_level) pattern += " %l";
  if (options.show_log_origin) pattern += " %s:%#";
  pattern += " %*";
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PrintablePayload>('*').set_pattern(pattern);
  logger->set_formatter(std::move(formatter));
  logger->set_level(*level);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace ember
