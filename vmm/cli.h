// ember's command line, with Firecracker's flag names where they apply.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace ember {

// How far a log file or serial_out_path may grow (ember's own default; the
// guest and the log's callers choose how much they write).
constexpr uint64_t kDefaultOutputFileLimit = uint64_t{1} << 30;

struct CliOptions {
  std::optional<std::string> api_sock;
  std::string id = "anonymous-instance";
  std::optional<std::string> config_file;
  bool no_api = false;
  bool boot_timer = false;
  bool no_seccomp = false;
  std::string level = "Info";
  std::optional<std::string> log_path;
  std::optional<std::string> metrics_path;
  bool show_level = true;
  bool show_log_origin = false;
  std::optional<std::string> metadata;  // a JSON file put into MMDS at start
  std::optional<uint64_t> mmds_size_limit;
  std::optional<uid_t> vhost_user_peer_uid;  // one more uid a vhost-user backend may run as
  uint64_t output_file_limit = kDefaultOutputFileLimit;
  bool version = false;
  bool help = false;
  // From a jailer (Firecracker's flags): when it started (CLOCK_MONOTONIC
  // µs), ember's CPU time at exec, and the jailer's own CPU time; the
  // start-up metrics then count from the jailer's start.
  std::optional<uint64_t> start_time_us;
  std::optional<uint64_t> start_time_cpu_us;
  uint64_t parent_cpu_time_us = 0;
};

Result<CliOptions> ParseCli(const std::vector<std::string>& args);
std::string CliUsage();

}  // namespace ember
