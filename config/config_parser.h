// Parsers from JSON to the typed configuration, one per resource, shared by
// the --config-file loader and the API. Messages name the field and reason.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "config/vm_config.h"

namespace ember {

// Largest guest memory ember accepts, in MiB (1 TiB).
constexpr uint64_t kMaxMemSizeMib = 1024 * 1024;
constexpr uint64_t kMaxFsTagBytes = 36;  // virtio_fs_config.tag
constexpr uint64_t kMaxFsRequestQueues = 16;
constexpr uint64_t kMaxQueueSize = 32768;  // split virtqueues

// `path` prefixes field names in errors ("boot-source").
Result<BootSourceConfig> ParseBootSource(const nlohmann::json& body, const std::string& path);

// Full replacement (PUT): vcpu_count and mem_size_mib are required.
// Partial update (PATCH): absent fields keep their value in `base`.
enum class UpdateKind { kReplace, kPatch };

// A checked machine-config request. Field checks happen when parsing; the
// checks that involve fields the request may not carry (smt with an odd
// vcpu_count) happen when it is applied to the current configuration.
struct MachineConfigUpdate {
  UpdateKind kind = UpdateKind::kReplace;
  std::string path;  // names fields in errors
  std::optional<uint32_t> vcpu_count;
  std::optional<uint32_t> mem_size_mib;
  std::optional<bool> smt;
  std::optional<bool> acpi;
  std::optional<bool> huge_pages_2m;
};
Result<MachineConfigUpdate> ParseMachineConfigUpdate(const nlohmann::json& body,
                                                     const std::string& path, UpdateKind kind);
Result<MachineConfig> ApplyMachineConfigUpdate(const MachineConfig& base,
                                               const MachineConfigUpdate& update);
// Both steps at once.
Result<MachineConfig> ParseMachineConfig(const nlohmann::json& body, const std::string& path,
                                         UpdateKind kind, const MachineConfig& base = {});

Result<SerialConfig> ParseSerial(const nlohmann::json& body, const std::string& path);
Result<LoggerConfig> ParseLogger(const nlohmann::json& body, const std::string& path);
// Returns metrics_path.
Result<std::string> ParseMetrics(const nlohmann::json& body, const std::string& path);

// One fs device. `path_id` is the {fs_id} of PUT /fs/{fs_id} (empty in the
// config file), which the body's fs_id must match.
Result<FsConfig> ParseFs(const nlohmann::json& body, const std::string& path,
                         const std::string& path_id = "");
// Checks a set of fs devices for repeated ids or tags.
Status CheckFsDevices(const std::vector<FsConfig>& devices);

// One network interface: Firecracker's resource on a TAP (host_dev_name),
// or ember's vhost-user backend (socket).
Result<NetConfig> ParseNetworkInterface(const nlohmann::json& body, const std::string& path,
                                        const std::string& path_id = "");
// PATCH /network-interfaces/{iface_id}: new rate limiters (TAP interfaces).
struct NetUpdate {
  std::string iface_id;
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};
Result<NetUpdate> ParseNetworkInterfaceUpdate(const nlohmann::json& body,
                                              const std::string& path_id);
// Checks a set of network interfaces for repeated ids, TAPs or MACs.
Status CheckNetDevices(const std::vector<NetConfig>& devices);
// "52:54:00:12:34:56"
std::string FormatMac(const std::array<uint8_t, 6>& mac);

// One drive (PUT /drives/{drive_id}, the config file's "drives").
Result<DriveConfig> ParseDrive(const nlohmann::json& body, const std::string& path,
                               const std::string& path_id = "");
// PATCH /drives/{drive_id}: a new backing file (before or after boot).
struct DriveUpdate {
  std::string drive_id;
  std::optional<std::string> path_on_host;
  std::optional<RateLimiterConfig> rate_limiter;
};
// Firecracker's rate_limiter object: {"bandwidth": BUCKET, "ops": BUCKET},
// BUCKET = {"size", "one_time_burst", "refill_time" (ms)}.
Result<RateLimiterConfig> ParseRateLimiter(const nlohmann::json& body, const std::string& path);
Result<DriveUpdate> ParseDriveUpdate(const nlohmann::json& body, const std::string& path_id);
// Checks a set of drives: ids used once, at most one root device.
Status CheckDrives(const std::vector<DriveConfig>& drives);
// PUT semantics: a new id adds the drive, a known id replaces it; the root
// device moves to the front (Firecracker's order: it becomes /dev/vda).
// The result may fail CheckDrives.
std::vector<DriveConfig> UpsertDrive(const std::vector<DriveConfig>& drives,
                                     const DriveConfig& drive);

// The vsock device (PUT /vsock, the config file's "vsock"): guest_cid of
// 3 or more, uds_path a Unix socket path that fits sockaddr_un.
constexpr size_t kMaxUnixPathBytes = 107;
Result<VsockConfig> ParseVsock(const nlohmann::json& body, const std::string& path);

// PUT /entropy, the config file's "entropy": {"rate_limiter": ...}.
Result<EntropyConfig> ParseEntropy(const nlohmann::json& body, const std::string& path);
// PUT /mmds/config, the config file's "mmds-config": Firecracker's fields
// (version V1|V2, network_interfaces, ipv4_address, imds_compat).
Result<MmdsConfig> ParseMmdsConfig(const nlohmann::json& body, const std::string& path);
// MMDS travels on TAP interfaces ember serves: each one listed must be
// configured, and none may be a vhost-user interface.
Status CheckMmdsInterfaces(const MmdsConfig& mmds, const std::vector<NetConfig>& net);

// A Firecracker-style config file ("boot-source", "machine-config", ...).
Result<VmConfig> ParseVmConfig(std::string_view text);
Result<VmConfig> LoadVmConfigFile(const std::string& file_path);

}  // namespace ember
