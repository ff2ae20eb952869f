#include "vmm/cli.h"

#include "base/instance_id.h"

namespace ember {

std::string CliUsage() {
  return "Usage: ember [--api-sock PATH] [--config-file FILE] [--no-api] [options]\n"
         "\n"
         "  --api-sock PATH      Unix socket for the REST API (default /run/ember.socket)\n"
         "  --config-file FILE   configure the microVM from a Firecracker-style JSON file\n"
         "  --no-api             no API server; needs --config-file, boots at once\n"
         "  --id ID              instance id shown in logs and GET /: 1 to 64 letters,\n"
         "                       digits and '-' (default anonymous-instance)\n"
         "  --boot-timer         log the guest's boot time when it writes to the boot timer\n"
         "  --level LEVEL        log level: Error, Warning, Info (default), Debug, Trace, Off\n"
         "  --log-path PATH      write the log to PATH instead of stderr\n"
         "  --metrics-path PATH  write metrics to PATH\n"
         "  --show-level         show the level in log lines (default)\n"
         "  --show-log-origin    show file:line in log lines\n"
         "  --metadata FILE      put this JSON file's contents into MMDS at start\n"
         "  --mmds-size-limit N  MMDS data store limit in bytes (default 51200)\n"
         "  --vhost-user-peer-uid UID  a vhost-user backend may also run as UID (besides\n"
         "                       root and ember's own user)\n"
         "  --output-file-limit N  bytes a log file or serial_out_path file may grow by\n"
         "                       (default 1 GiB; later output is dropped and counted)\n"
         "  --no-seccomp         run threads without their seccomp filters (on by default)\n"
         "  --start-time-us N, --start-time-cpu-us N, --parent-cpu-time-us N\n"
         "                       set by ember-jailer (as Firecracker's jailer does)\n"
         "  --version            print the version and exit\n"
         "  --help               print this help and exit\n";
}

Result<CliOptions> ParseCli(const std::vector<std::string>& args) {
  CliOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size() || args[i + 1].empty()) {
        return Status::Error(arg + ": needs a value");
      }
      return args[++i];
    };
    auto store = [&](auto& field) -> Status {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      field = *v;
      return Status::Ok();
    };
    if (arg == "--api-sock") {
      EMBER_RETURN_IF_ERROR(store(options.api_sock));
    } else if (arg == "--id") {
      EMBER_RETURN_IF_ERROR(store(options.id));
      // It reaches every log line: Firecracker's rule keeps it one word.
      if (Status valid = ValidateInstanceId(options.id); !valid.ok()) {
        return Status::Error("--id: Invalid instance ID: " + valid.message());
      }
    } else if (arg == "--config-file") {
      EMBER_RETURN_IF_ERROR(store(options.config_file));
    } else if (arg == "--level") {
      EMBER_RETURN_IF_ERROR(store(options.level));
    } else if (arg == "--log-path") {
      EMBER_RETURN_IF_ERROR(store(options.log_path));
    } else if (arg == "--metrics-path") {
      EMBER_RETURN_IF_ERROR(store(options.metrics_path));
    } else if (arg == "--metadata") {
      EMBER_RETURN_IF_ERROR(store(options.metadata));
    } else if (arg == "--mmds-size-limit") {
      std::string text;
      EMBER_RETURN_IF_ERROR(store(text));
      if (text.size() > 12 || text.find_first_not_of("0123456789") != std::string::npos ||
          std::stoull(text) == 0) {
        return Status::Error(arg + ": must be a number of bytes from 1, got " + text);
      }
      options.mmds_size_limit = std::stoull(text);
    } else if (arg == "--vhost-user-peer-uid" || arg == "--output-file-limit") {
      std::string text;
      EMBER_RETURN_IF_ERROR(store(text));
      if (text.empty() || text.size() > 19 ||
          text.find_first_not_of("0123456789") != std::string::npos) {
        return Status::Error(arg + ": must be a whole number, got " + text);
      }
      const uint64_t number = std::stoull(text);
      if (arg == "--output-file-limit") {
        options.output_file_limit = number;
      } else if (number >= 0xffffffffu) {
        return Status::Error(arg + ": " + text + " is not a uid");
      } else {
        options.vhost_user_peer_uid = static_cast<uid_t>(number);
      }
    } else if (arg == "--no-api") {
      options.no_api = true;
    } else if (arg == "--boot-timer") {
      options.boot_timer = true;
    } else if (arg == "--no-seccomp") {
      options.no_seccomp = true;
    } else if (arg == "--show-level") {
      options.show_level = true;
    } else if (arg == "--show-log-origin") {
      options.show_log_origin = true;
    } else if (arg == "--start-time-us" || arg == "--start-time-cpu-us" ||
               arg == "--parent-cpu-time-us") {
      std::string text;
      EMBER_RETURN_IF_ERROR(store(text));
      if (text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos) {
        return Status::Error(arg + ": must be a number of microseconds, got " + text);
      }
      const uint64_t us = std::stoull(text);
      if (arg == "--start-time-us") {
        options.start_time_us = us;
      } else if (arg == "--start-time-cpu-us") {
        options.start_time_cpu_us = us;
      } else {
        options.parent_cpu_time_us = us;
      }
    } else if (arg == "--version") {
      options.version = true;
    } else if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else {
      return Status::Error("unknown argument " + arg);
    }
  }
  if (options.no_api && !options.config_file && !options.help && !options.version) {
    return Status::Error(
        "--no-api needs --config-file: without the API the VM is configured from a file");
  }
  return options;
}

}  // namespace ember
