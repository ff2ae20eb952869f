#include "config/config_parser.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "arch/x86_64/layout.h"
#include "base/logger.h"
#include "config/json_reader.h"
#include "config/missing_features.h"

namespace ember {

Result<BootSourceConfig> ParseBootSource(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  BootSourceConfig config;
  auto kernel = reader.String("kernel_image_path", /*required=*/true);
  config.boot_args = reader.String("boot_args");
  config.initrd_path = reader.String("initrd_path");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (kernel->empty()) return Status::Error(reader.FieldPath("kernel_image_path") + ": is empty");
  config.kernel_image_path = *kernel;
  if (config.initrd_path && config.initrd_path->empty()) {
    return Status::Error(reader.FieldPath("initrd_path") + ": is empty");
  }
  if (config.boot_args && config.boot_args->size() >= layout::kCmdlineMaxSize) {
    return Status::Error(reader.FieldPath("boot_args") + ": is " +
                         std::to_string(config.boot_args->size()) + " bytes, at most " +
                         std::to_string(layout::kCmdlineMaxSize - 1) + " fit");
  }
  return config;
}

Result<MachineConfigUpdate> ParseMachineConfigUpdate(const nlohmann::json& body,
                                                     const std::string& path, UpdateKind kind) {
  JsonObjectReader reader(body, path);
  const bool required = kind == UpdateKind::kReplace;
  MachineConfigUpdate update;
  update.kind = kind;
  update.path = path;
  if (auto vcpus = reader.Unsigned("vcpu_count", 1, layout::kMaxVcpus, required)) {
    update.vcpu_count = static_cast<uint32_t>(*vcpus);
  }
  if (auto mib = reader.Unsigned("mem_size_mib", 1, kMaxMemSizeMib, required)) {
    update.mem_size_mib = static_cast<uint32_t>(*mib);
  }
  update.smt = reader.Bool("smt");
  update.acpi = reader.Bool("acpi");
  auto track_dirty_pages = reader.Bool("track_dirty_pages");
  auto cpu_template = reader.Raw("cpu_template");
  auto huge_pages = reader.String("huge_pages");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (track_dirty_pages.value_or(false)) {
    return Status::Error(reader.FieldPath("track_dirty_pages") +
                         ": dirty page tracking (for snapshots) is not supported by ember");
  }
  if (cpu_template != nullptr && !(cpu_template->is_string() && *cpu_template == "None")) {
    return Status::Error(reader.FieldPath("cpu_template") +
                         ": CPU templates are not supported by ember; omit it or use \"None\"");
  }
  if (huge_pages) {
    if (*huge_pages != "None" && *huge_pages != "2M") {
      return Status::Error(reader.FieldPath("huge_pages") + ": must be \"None\" or \"2M\", got \"" +
                           *huge_pages + "\"");
    }
    update.huge_pages_2m = *huge_pages == "2M";
  }
  return update;
}

Result<MachineConfig> ApplyMachineConfigUpdate(const MachineConfig& base,
                                               const MachineConfigUpdate& update) {
  MachineConfig config = update.kind == UpdateKind::kPatch ? base : MachineConfig{};
  if (update.vcpu_count) config.vcpu_count = *update.vcpu_count;
  if (update.mem_size_mib) config.mem_size_mib = *update.mem_size_mib;
  if (update.smt) config.smt = *update.smt;
  if (update.acpi) config.acpi = *update.acpi;
  if (update.huge_pages_2m) config.huge_pages_2m = *update.huge_pages_2m;
  const std::string prefix = update.path.empty() ? "" : update.path + ".";
  // Firecracker's rule and words: whole huge pages only.
  if (config.huge_pages_2m && config.mem_size_mib % 2 != 0) {
    return Status::Error(prefix +
                         "mem_size_mib: The memory size (MiB) is either 0, or not a "
                         "multiple of the configured page size (" +
                         std::to_string(config.mem_size_mib) + " MiB on 2 MiB huge pages)");
  }
  if (config.smt && config.vcpu_count > 1 && config.vcpu_count % 2 != 0) {
    return Status::Error(prefix + "vcpu_count: must be 1 or even when smt is enabled, got " +
                         std::to_string(config.vcpu_count));
  }
  return config;
}

Result<MachineConfig> ParseMachineConfig(const nlohmann::json& body, const std::string& path,
                                         UpdateKind kind, const MachineConfig& base) {
  EMBER_ASSIGN_OR_RETURN(MachineConfigUpdate update, ParseMachineConfigUpdate(body, path, kind));
  return ApplyMachineConfigUpdate(base, update);
}

Result<SerialConfig> ParseSerial(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  SerialConfig config;
  config.serial_out_path = reader.String("serial_out_path");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (config.serial_out_path && config.serial_out_path->empty()) {
    return Status::Error(reader.FieldPath("serial_out_path") + ": is empty");
  }
  return config;
}

Result<LoggerConfig> ParseLogger(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  LoggerConfig config;
  config.log_path = reader.String("log_path");
  auto level = reader.String("level");
  auto show_level = reader.Bool("show_level");
  auto show_origin = reader.Bool("show_log_origin");
  auto module = reader.String("module");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (level) {
    if (!IsLogLevel(*level)) {
      return Status::Error(reader.FieldPath("level") + ": unknown log level \"" + *level +
                           "\" (Error, Warning, Info, Debug, Trace or Off)");
    }
    config.level = *level;
  }
  if (config.log_path && config.log_path->empty()) {
    return Status::Error(reader.FieldPath("log_path") + ": is empty");
  }
  if (module) {
    return Status::Error(reader.FieldPath("module") +
                         ": per-module log filtering is not supported by ember");
  }
  config.show_level = show_level.value_or(false);
  config.show_log_origin = show_origin.value_or(false);
  return config;
}

Result<std::string> ParseMetrics(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  auto metrics_path = reader.String("metrics_path", /*required=*/true);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (metrics_path->empty()) return Status::Error(reader.FieldPath("metrics_path") + ": is empty");
  return *metrics_path;
}

namespace {

// The backend fields shared by fs and net devices. Read from `reader` (so
// Finish() knows them); checked after Finish().
struct EndpointFields {
  std::optional<std::string> socket, mode;
  std::optional<uint64_t> connect_timeout_ms, reconnect_interval_ms, reconnect_timeout_ms;
};

EndpointFields ReadEndpointFields(JsonObjectReader& reader) {
  EndpointFields fields;
  fields.socket = reader.String("socket");
  fields.mode = reader.String("socket_mode");
  fields.connect_timeout_ms = reader.Unsigned("connect_timeout_ms", 1, 600000);
  fields.reconnect_interval_ms = reader.Unsigned("reconnect_interval_ms", 10, 60000);
  fields.reconnect_timeout_ms = reader.Unsigned("reconnect_timeout_ms", 0, 86400000);
  return fields;
}

// Split virtqueues have power-of-two sizes.
Result<uint32_t> CheckQueueSize(uint64_t size, const JsonObjectReader& reader) {
  if ((size & (size - 1)) != 0) {
    return Status::Error(reader.FieldPath("queue_size") + ": must be a power of two, got " +
                         std::to_string(size));
  }
  return static_cast<uint32_t>(size);
}

Result<VhostUserEndpoint> CheckEndpoint(const EndpointFields& fields,
                                        const JsonObjectReader& reader) {
  VhostUserEndpoint endpoint;
  if (!fields.socket || fields.socket->empty()) {
    return Status::Error(reader.FieldPath("socket") +
                         ": is required (the vhost-user backend's socket)");
  }
  endpoint.socket = *fields.socket;
  if (fields.mode) {
    if (*fields.mode == "server") {
      endpoint.mode = SocketMode::kServer;
    } else if (*fields.mode != "client") {
      return Status::Error(reader.FieldPath("socket_mode") +
                           ": must be \"client\" or \"server\", got \"" + *fields.mode + "\"");
    }
  }
  using std::chrono::milliseconds;
  if (fields.connect_timeout_ms)
    endpoint.connect_timeout = milliseconds(*fields.connect_timeout_ms);
  if (fields.reconnect_interval_ms) {
    endpoint.reconnect_interval = milliseconds(*fields.reconnect_interval_ms);
  }
  if (fields.reconnect_timeout_ms) {
    endpoint.reconnect_timeout = milliseconds(*fields.reconnect_timeout_ms);
  }
  return endpoint;
}

// Device ids as Firecracker takes them: 1 to 64 letters, digits or '_'.
// They name devices in the log, the metrics and URLs, so nothing else
// (no newline, no '/', no byte that is not ASCII) gets that far.
Status CheckDeviceId(const JsonObjectReader& reader, const char* field, const std::string& id,
                     const std::string& path_id) {
  constexpr size_t kMaxIdBytes = 64;
  if (id.empty() || id.size() > kMaxIdBytes) {
    return Status::Error(reader.FieldPath(field) + ": must be 1 to " + std::to_string(kMaxIdBytes) +
                         " characters, got " + std::to_string(id.size()));
  }
  for (unsigned char c : id) {
    if (!((c < 0x80 && std::isalnum(c)) || c == '_')) {
      return Status::Error(reader.FieldPath(field) +
                           ": API Resource IDs can only contain alphanumeric characters and "
                           "underscores.");
    }
  }
  // Firecracker's words (its network interfaces show both ids).
  if (!path_id.empty() && id != path_id) {
    return Status::Error(reader.FieldPath(field) + ": The id from the path [" + path_id +
                         "] does not match the id from the body [" + id + "]!");
  }
  return Status::Ok();
}

}  // namespace

Result<FsConfig> ParseFs(const nlohmann::json& body, const std::string& path,
                         const std::string& path_id) {
  JsonObjectReader reader(body, path);
  FsConfig config;
  auto id = reader.String("fs_id", /*required=*/true);
  auto tag = reader.String("tag", /*required=*/true);
  EndpointFields endpoint = ReadEndpointFields(reader);
  auto queues = reader.Unsigned("num_queues", 1, kMaxFsRequestQueues);
  auto queue_size = reader.Unsigned("queue_size", 2, kMaxQueueSize);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "fs_id", *id, path_id));
  if (tag->empty() || tag->size() > kMaxFsTagBytes) {
    return Status::Error(reader.FieldPath("tag") + ": must be 1 to " +
                         std::to_string(kMaxFsTagBytes) + " bytes, got " +
                         std::to_string(tag->size()));
  }
  EMBER_ASSIGN_OR_RETURN(config.backend, CheckEndpoint(endpoint, reader));
  config.fs_id = *id;
  config.tag = *tag;
  if (queues) config.num_queues = static_cast<uint32_t>(*queues);
  if (queue_size) {
    EMBER_ASSIGN_OR_RETURN(config.queue_size, CheckQueueSize(*queue_size, reader));
  }
  return config;
}

namespace {

Result<std::optional<TokenBucketConfig>> ParseTokenBucket(JsonObjectReader& parent,
                                                          const std::string& key) {
  const nlohmann::json* body = parent.Object(key);
  if (body == nullptr) return std::optional<TokenBucketConfig>();
  JsonObjectReader reader(*body, parent.FieldPath(key));
  constexpr uint64_t kMax = uint64_t{1} << 53;  // exact in a double
  auto size = reader.Unsigned("size", 0, kMax, /*required=*/true);
  auto burst = reader.Unsigned("one_time_burst", 0, kMax);
  auto refill = reader.Unsigned("refill_time", 0, 3600ull * 1000 * 1000, /*required=*/true);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  return std::optional<TokenBucketConfig>(TokenBucketConfig{*size, burst.value_or(0), *refill});
}

}  // namespace

Result<RateLimiterConfig> ParseRateLimiter(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  RateLimiterConfig config;
  Result<std::optional<TokenBucketConfig>> bandwidth = ParseTokenBucket(reader, "bandwidth");
  Result<std::optional<TokenBucketConfig>> ops = ParseTokenBucket(reader, "ops");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (!bandwidth.ok()) return bandwidth.status();
  if (!ops.ok()) return ops.status();
  config.bandwidth = *bandwidth;
  config.ops = *ops;
  return config;
}

Result<DriveConfig> ParseDrive(const nlohmann::json& body, const std::string& path,
                               const std::string& path_id) {
  JsonObjectReader reader(body, path);
  DriveConfig config;
  auto id = reader.String("drive_id", /*required=*/true);
  auto file = reader.String("path_on_host");
  auto root = reader.Bool("is_root_device");
  auto read_only = reader.Bool("is_read_only");
  config.partuuid = reader.String("partuuid");
  auto cache = reader.String("cache_type");
  auto engine = reader.String("io_engine");
  EndpointFields endpoint = ReadEndpointFields(reader);
  const nlohmann::json* limiter = reader.Raw("rate_limiter");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (!root) return Status::Error(reader.FieldPath("is_root_device") + ": is required");
  EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "drive_id", *id, path_id));
  if (endpoint.socket) {
    // Firecracker's vhost-user drives: the backend owns the file and its mode.
    const char* exclusive = file        ? "path_on_host"
                            : read_only ? "is_read_only"
                            : engine    ? "io_engine"
                                        : nullptr;
    if (exclusive != nullptr) {
      return Status::Error(reader.FieldPath(exclusive) +
                           ": not allowed with \"socket\" (a vhost-user drive's backend owns "
                           "the file)");
    }
    if (limiter != nullptr && !limiter->is_null()) {
      return Status::Error(reader.FieldPath("rate_limiter") +
                           ": not allowed with \"socket\" (the backend moves the data)");
    }
    EMBER_ASSIGN_OR_RETURN(config.socket, CheckEndpoint(endpoint, reader));
  } else {
    if (endpoint.mode || endpoint.connect_timeout_ms || endpoint.reconnect_interval_ms ||
        endpoint.reconnect_timeout_ms) {
      return Status::Error(reader.FieldPath(endpoint.mode ? "socket_mode" : "connect_timeout_ms") +
                           ": only for vhost-user drives (give \"socket\")");
    }
    if (!file) {
      return Status::Error(reader.FieldPath("path_on_host") +
                           ": is required (or \"socket\" for a vhost-user drive)");
    }
    if (file->empty()) return Status::Error(reader.FieldPath("path_on_host") + ": is empty");
    if (engine && *engine != "Sync" && *engine != "Async") {
      return Status::Error(reader.FieldPath("io_engine") +
                           ": must be \"Sync\" or \"Async\", got \"" + *engine + "\"");
    }
    config.async_io = engine && *engine == "Async";
    if (limiter != nullptr && !limiter->is_null()) {
      EMBER_ASSIGN_OR_RETURN(config.rate_limiter,
                             ParseRateLimiter(*limiter, reader.FieldPath("rate_limiter")));
    }
    config.path_on_host = *file;
  }
  if (cache && *cache != "Unsafe" && *cache != "Writeback") {
    return Status::Error(reader.FieldPath("cache_type") +
                         ": must be \"Unsafe\" or \"Writeback\", got \"" + *cache + "\"");
  }
  if (config.partuuid && config.partuuid->empty()) {
    return Status::Error(reader.FieldPath("partuuid") + ": is empty");
  }
  config.drive_id = *id;
  config.is_root_device = *root;
  config.is_read_only = read_only.value_or(false);
  config.cache_type = cache && *cache == "Writeback" ? CacheType::kWriteback : CacheType::kUnsafe;
  return config;
}

Result<DriveUpdate> ParseDriveUpdate(const nlohmann::json& body, const std::string& path_id) {
  JsonObjectReader reader(body, "");
  DriveUpdate update;
  auto id = reader.String("drive_id", /*required=*/true);
  update.path_on_host = reader.String("path_on_host");
  const nlohmann::json* limiter = reader.Raw("rate_limiter");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "drive_id", *id, path_id));
  if (limiter != nullptr && !limiter->is_null()) {
    EMBER_ASSIGN_OR_RETURN(update.rate_limiter, ParseRateLimiter(*limiter, "rate_limiter"));
  }
  if (update.path_on_host && update.path_on_host->empty()) {
    return Status::Error("path_on_host: is empty");
  }
  if (!update.path_on_host && !update.rate_limiter) {
    return Status::Error("the request changes nothing: give path_on_host or rate_limiter");
  }
  update.drive_id = *id;
  return update;
}

Status CheckDrives(const std::vector<DriveConfig>& drives) {
  for (size_t i = 0; i < drives.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (drives[i].drive_id == drives[j].drive_id) {
        return Status::Error("drives: the id \"" + drives[i].drive_id + "\" is used twice");
      }
      if (drives[i].is_root_device && drives[j].is_root_device) {
        return Status::Error("drives: " + drives[j].drive_id + " and " + drives[i].drive_id +
                             " are both root devices: A root block device already exists!");
      }
    }
  }
  return Status::Ok();
}

std::vector<DriveConfig> UpsertDrive(const std::vector<DriveConfig>& drives,
                                     const DriveConfig& drive) {
  std::vector<DriveConfig> updated = drives;
  auto same = std::find_if(updated.begin(), updated.end(),
                           [&](const DriveConfig& d) { return d.drive_id == drive.drive_id; });
  if (same != updated.end()) {
    *same = drive;
  } else {
    updated.push_back(drive);
  }
  std::stable_partition(updated.begin(), updated.end(),
                        [](const DriveConfig& d) { return d.is_root_device; });
  return updated;
}

namespace {

std::optional<std::array<uint8_t, 6>> ParseMac(const std::string& text) {
  std::array<uint8_t, 6> mac{};
  if (text.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return std::nullopt;
    unsigned value = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = text[i * 3 + j];
      unsigned digit = (c >= '0' && c <= '9')   ? c - '0'
                       : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                       : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                : 16;
      if (digit == 16) return std::nullopt;
      value = value * 16 + digit;
    }
    mac[i] = static_cast<uint8_t>(value);
  }
  return mac;
}

// A stable, locally administered unicast MAC for an interface without one.
std::array<uint8_t, 6> GeneratedMac(const std::string& iface_id) {
  uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char c : iface_id) hash = (hash ^ c) * 16777619u;
  return {0x06,
          0x00,
          static_cast<uint8_t>(hash >> 24),
          static_cast<uint8_t>(hash >> 16),
          static_cast<uint8_t>(hash >> 8),
          static_cast<uint8_t>(hash)};
}

}  // namespace

std::string FormatMac(const std::array<uint8_t, 6>& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return text;
}

Result<NetConfig> ParseNetworkInterface(const nlohmann::json& body, const std::string& path,
                                        const std::string& path_id) {
  JsonObjectReader reader(body, path);
  NetConfig config;
  auto id = reader.String("iface_id", /*required=*/true);
  auto mac = reader.String("guest_mac");
  EndpointFields endpoint = ReadEndpointFields(reader);
  auto tap = reader.String("host_dev_name");
  auto mtu = reader.Unsigned("mtu", 68, 65535);
  auto queue_size = reader.Unsigned("queue_size", 2, kMaxQueueSize);
  const nlohmann::json* rx_limiter = reader.Raw("rx_rate_limiter");
  const nlohmann::json* tx_limiter = reader.Raw("tx_rate_limiter");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "iface_id", *id, path_id));
  const bool has_rx_limiter = rx_limiter != nullptr && !rx_limiter->is_null();
  const bool has_tx_limiter = tx_limiter != nullptr && !tx_limiter->is_null();
  if (tap) {
    // Firecracker's interface: a TAP, with ember's virtio-net.
    if (endpoint.socket) {
      return Status::Error(reader.FieldPath("socket") +
                           ": give either \"host_dev_name\" (a TAP) or \"socket\" (vhost-user), "
                           "not both");
    }
    if (endpoint.mode || endpoint.connect_timeout_ms || endpoint.reconnect_interval_ms ||
        endpoint.reconnect_timeout_ms) {
      return Status::Error(reader.FieldPath(endpoint.mode ? "socket_mode" : "connect_timeout_ms") +
                           ": only for vhost-user interfaces (give \"socket\")");
    }
    if (tap->empty() || tap->size() > 15) {
      return Status::Error(reader.FieldPath("host_dev_name") + ": must be 1 to 15 bytes, got " +
                           std::to_string(tap->size()));
    }
    config.host_dev_name = *tap;
    if (has_rx_limiter) {
      EMBER_ASSIGN_OR_RETURN(config.rx_rate_limiter,
                             ParseRateLimiter(*rx_limiter, reader.FieldPath("rx_rate_limiter")));
    }
    if (has_tx_limiter) {
      EMBER_ASSIGN_OR_RETURN(config.tx_rate_limiter,
                             ParseRateLimiter(*tx_limiter, reader.FieldPath("tx_rate_limiter")));
    }
  } else {
    if (!endpoint.socket) {
      return Status::Error(reader.FieldPath("host_dev_name") +
                           ": is required (a TAP device), or \"socket\" for a vhost-user backend");
    }
    EMBER_ASSIGN_OR_RETURN(config.backend, CheckEndpoint(endpoint, reader));
    if (has_rx_limiter || has_tx_limiter) {
      return Status::Error(
          reader.FieldPath(has_rx_limiter ? "rx_rate_limiter" : "tx_rate_limiter") +
          ": not for vhost-user interfaces (the backend switches the packets)");
    }
  }
  config.iface_id = *id;
  if (mac) {
    auto parsed = ParseMac(*mac);
    if (!parsed) {
      return Status::Error(reader.FieldPath("guest_mac") + ": \"" + *mac +
                           "\" is not a MAC address like 52:54:00:12:34:56");
    }
    if ((*parsed)[0] & 1) {
      return Status::Error(reader.FieldPath("guest_mac") + ": " + *mac +
                           " is a multicast address; a NIC needs a unicast one");
    }
    config.guest_mac = *parsed;
    config.mac_given = true;
  } else {
    config.guest_mac = GeneratedMac(config.iface_id);
  }
  if (mtu) config.mtu = static_cast<uint16_t>(*mtu);
  if (queue_size) {
    EMBER_ASSIGN_OR_RETURN(config.queue_size, CheckQueueSize(*queue_size, reader));
  }
  return config;
}

Result<NetUpdate> ParseNetworkInterfaceUpdate(const nlohmann::json& body,
                                              const std::string& path_id) {
  JsonObjectReader reader(body, "");
  NetUpdate update;
  auto id = reader.String("iface_id", /*required=*/true);
  const nlohmann::json* rx = reader.Raw("rx_rate_limiter");
  const nlohmann::json* tx = reader.Raw("tx_rate_limiter");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "iface_id", *id, path_id));
  if (rx != nullptr && !rx->is_null()) {
    EMBER_ASSIGN_OR_RETURN(update.rx_rate_limiter, ParseRateLimiter(*rx, "rx_rate_limiter"));
  }
  if (tx != nullptr && !tx->is_null()) {
    EMBER_ASSIGN_OR_RETURN(update.tx_rate_limiter, ParseRateLimiter(*tx, "tx_rate_limiter"));
  }
  if (!update.rx_rate_limiter && !update.tx_rate_limiter) {
    return Status::Error("the request changes nothing: give rx_rate_limiter or tx_rate_limiter");
  }
  update.iface_id = *id;
  return update;
}

Status CheckNetDevices(const std::vector<NetConfig>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (devices[i].iface_id == devices[j].iface_id) {
        return Status::Error("network-interfaces: the id \"" + devices[i].iface_id +
                             "\" is used twice");
      }
      if (!devices[i].host_dev_name.empty() &&
          devices[i].host_dev_name == devices[j].host_dev_name) {
        return Status::Error("network-interfaces: the TAP " + devices[i].host_dev_name +
                             " is used by both " + devices[j].iface_id + " and " +
                             devices[i].iface_id);
      }
      if (devices[i].guest_mac == devices[j].guest_mac) {
        return Status::Error("network-interfaces: the MAC " + FormatMac(devices[i].guest_mac) +
                             " is used by both " + devices[j].iface_id + " and " +
                             devices[i].iface_id);
      }
    }
  }
  return Status::Ok();
}

Status CheckFsDevices(const std::vector<FsConfig>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (devices[i].fs_id == devices[j].fs_id) {
        return Status::Error("fs: the id \"" + devices[i].fs_id + "\" is used twice");
      }
      if (devices[i].tag == devices[j].tag) {
        return Status::Error("fs: the tag \"" + devices[i].tag + "\" is used by both " +
                             devices[j].fs_id + " and " + devices[i].fs_id);
      }
    }
  }
  return Status::Ok();
}

Result<VsockConfig> ParseVsock(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  VsockConfig config;
  auto id = reader.String("vsock_id");
  // Any 32-bit value, as Firecracker takes it: 0-2 and 0xffffffff are
  // reserved addresses, but firecracker-containerd sends 0 (its agent
  // listens on any CID and the host side goes through uds_path).
  auto cid = reader.Unsigned("guest_cid", 0, 0xffffffffu, /*required=*/true);
  auto uds_path = reader.String("uds_path", /*required=*/true);
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (id) {
    EMBER_RETURN_IF_ERROR(CheckDeviceId(reader, "vsock_id", *id, ""));
    config.vsock_id = *id;
  }
  if (uds_path->empty() || uds_path->size() > kMaxUnixPathBytes) {
    return Status::Error(reader.FieldPath("uds_path") + ": must be 1 to " +
                         std::to_string(kMaxUnixPathBytes) + " bytes (a Unix socket path), got " +
                         std::to_string(uds_path->size()));
  }
  if (uds_path->find('\0') != std::string::npos) {
    return Status::Error(reader.FieldPath("uds_path") + ": contains a NUL byte");
  }
  config.guest_cid = static_cast<uint32_t>(*cid);
  config.uds_path = *uds_path;
  return config;
}

Result<EntropyConfig> ParseEntropy(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  EntropyConfig config;
  const nlohmann::json* limiter = reader.Object("rate_limiter");
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (limiter != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.rate_limiter,
                           ParseRateLimiter(*limiter, reader.FieldPath("rate_limiter")));
  }
  return config;
}

namespace {

// "a.b.c.d", each part a decimal 0-255 without leading zeros.
std::optional<std::array<uint8_t, 4>> ParseIpv4(const std::string& text) {
  std::array<uint8_t, 4> address{};
  size_t at = 0;
  for (size_t part = 0; part < 4; ++part) {
    size_t end = at;
    while (end < text.size() && end - at < 4 && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == at || end - at > 3 || (end - at > 1 && text[at] == '0')) return std::nullopt;
    const unsigned value = static_cast<unsigned>(std::stoul(text.substr(at, end - at)));
    if (value > 255) return std::nullopt;
    address[part] = static_cast<uint8_t>(value);
    if (part < 3) {
      if (end >= text.size() || text[end] != '.') return std::nullopt;
      ++end;
    } else if (end != text.size()) {
      return std::nullopt;
    }
    at = end;
  }
  return address;
}

}  // namespace

Result<MmdsConfig> ParseMmdsConfig(const nlohmann::json& body, const std::string& path) {
  JsonObjectReader reader(body, path);
  MmdsConfig config;
  std::optional<std::string> version = reader.String("version");
  const nlohmann::json* interfaces = reader.Array("network_interfaces");
  std::optional<std::string> address = reader.String("ipv4_address");
  std::optional<bool> imds_compat = reader.Bool("imds_compat");
  if (interfaces == nullptr && body.is_object() && !body.contains("network_interfaces")) {
    return Status::Error(reader.FieldPath("network_interfaces") + ": is required");
  }
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (version) {
    if (*version != "V1" && *version != "V2") {
      return Status::Error(reader.FieldPath("version") + ": must be \"V1\" or \"V2\", got \"" +
                           *version + "\"");
    }
    config.v2 = *version == "V2";
  }
  if (interfaces != nullptr) {
    for (size_t i = 0; i < interfaces->size(); ++i) {
      const nlohmann::json& id = (*interfaces)[i];
      if (!id.is_string()) {
        return Status::Error(reader.FieldPath("network_interfaces") + "[" + std::to_string(i) +
                             "]: must be a string, got " + JsonTypeName(id));
      }
      config.network_interfaces.push_back(id.get<std::string>());
    }
  }
  if (config.network_interfaces.empty()) {
    return Status::Error(reader.FieldPath("network_interfaces") +
                         ": The list of network interface IDs that allow forwarding MMDS "
                         "requests is empty.");
  }
  if (address) {
    std::optional<std::array<uint8_t, 4>> parsed = ParseIpv4(*address);
    if (!parsed) {
      return Status::Error(reader.FieldPath("ipv4_address") +
                           ": must be an IPv4 address (a.b.c.d), got \"" + *address + "\"");
    }
    // Firecracker's rule: 169.254.0.0/16.
    if ((*parsed)[0] != 169 || (*parsed)[1] != 254) {
      return Status::Error(reader.FieldPath("ipv4_address") +
                           ": The MMDS IPv4 address is not link local.");
    }
    config.ipv4_address = *parsed;
  }
  config.imds_compat = imds_compat.value_or(false);
  return config;
}

Status CheckMmdsInterfaces(const MmdsConfig& mmds, const std::vector<NetConfig>& net) {
  for (const std::string& id : mmds.network_interfaces) {
    auto found = std::find_if(net.begin(), net.end(),
                              [&](const NetConfig& iface) { return iface.iface_id == id; });
    if (found == net.end()) {
      return Status::Error(
          "The list of network interface IDs provided contains at least one ID that does not "
          "correspond to any existing network interface. (" +
          id + ")");
    }
    if (found->host_dev_name.empty()) {
      return Status::Error("network interface " + id +
                           " is a vhost-user interface: its frames never pass through ember, so "
                           "ember cannot answer MMDS on it (use a TAP interface)");
    }
  }
  return Status::Ok();
}

Result<VmConfig> ParseVmConfig(std::string_view text) {
  EMBER_ASSIGN_OR_RETURN(nlohmann::json document, ParseJsonDocument(text));
  JsonObjectReader reader(document, "");
  VmConfig config;
  const nlohmann::json* boot_source = reader.Object("boot-source");
  const nlohmann::json* machine = reader.Object("machine-config");
  const nlohmann::json* serial = reader.Object("serial");
  const nlohmann::json* drives = reader.Array("drives");
  const nlohmann::json* logger = reader.Object("logger");
  const nlohmann::json* metrics = reader.Object("metrics");
  const nlohmann::json* fs = reader.Array("fs");
  const nlohmann::json* net = reader.Array("network-interfaces");
  const nlohmann::json* vsock = reader.Object("vsock");
  const nlohmann::json* entropy = reader.Object("entropy");
  const nlohmann::json* mmds = reader.Object("mmds-config");
  std::string unsupported;
  for (const MissingFeature& feature : kMissingFeatures) {
    if (reader.Raw(std::string(feature.resource)) != nullptr && unsupported.empty())
      unsupported = feature.resource;
  }
  EMBER_RETURN_IF_ERROR(reader.Finish());
  if (!unsupported.empty()) return Status::Error(unsupported + ": not supported by ember yet");
  if (boot_source == nullptr) return Status::Error("boot-source: is required");
  EMBER_ASSIGN_OR_RETURN(config.boot_source, ParseBootSource(*boot_source, "boot-source"));
  if (machine != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.machine,
                           ParseMachineConfig(*machine, "machine-config", UpdateKind::kReplace));
  }
  if (serial != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.serial, ParseSerial(*serial, "serial"));
  }
  if (logger != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.logger, ParseLogger(*logger, "logger"));
  }
  if (metrics != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.metrics_path, ParseMetrics(*metrics, "metrics"));
  }
  if (drives != nullptr) {
    for (size_t i = 0; i < drives->size(); ++i) {
      EMBER_ASSIGN_OR_RETURN(DriveConfig drive,
                             ParseDrive((*drives)[i], "drives[" + std::to_string(i) + "]"));
      EMBER_RETURN_IF_ERROR(CheckDrives(UpsertDrive(config.drives, drive)));
      config.drives = UpsertDrive(config.drives, drive);
    }
  }
  if (fs != nullptr) {
    for (size_t i = 0; i < fs->size(); ++i) {
      EMBER_ASSIGN_OR_RETURN(FsConfig device, ParseFs((*fs)[i], "fs[" + std::to_string(i) + "]"));
      config.fs.push_back(std::move(device));
    }
    EMBER_RETURN_IF_ERROR(CheckFsDevices(config.fs));
  }
  if (net != nullptr) {
    for (size_t i = 0; i < net->size(); ++i) {
      EMBER_ASSIGN_OR_RETURN(
          NetConfig device,
          ParseNetworkInterface((*net)[i], "network-interfaces[" + std::to_string(i) + "]"));
      config.net.push_back(std::move(device));
    }
    EMBER_RETURN_IF_ERROR(CheckNetDevices(config.net));
  }
  if (vsock != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.vsock, ParseVsock(*vsock, "vsock"));
  }
  if (entropy != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.entropy, ParseEntropy(*entropy, "entropy"));
  }
  if (mmds != nullptr) {
    EMBER_ASSIGN_OR_RETURN(config.mmds, ParseMmdsConfig(*mmds, "mmds-config"));
    EMBER_RETURN_IF_ERROR(CheckMmdsInterfaces(*config.mmds, config.net).Context("mmds-config"));
  }
  return config;
}

Result<VmConfig> LoadVmConfigFile(const std::string& file_path) {
  std::ifstream file(file_path, std::ios::binary);
  if (!file) return Status::Error("config file " + file_path + ": cannot be opened");
  std::ostringstream text;
  text << file.rdbuf();
  Result<VmConfig> config = ParseVmConfig(text.str());
  if (!config.ok()) return config.status().Context("config file " + file_path);
  return config;
}

}  // namespace ember
