// Everything a user configures before InstanceStart, collected in one place
// (from the config file or, later, the API). Plain values; the builder
// turns them into a machine.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ember {

// Firecracker's default command line, with the console on the serial port
// so that a user sees the guest without extra arguments, and without
// i8042.nopnp: with ACPI the keyboard's interrupt comes from the DSDT.
inline constexpr const char* kDefaultBootArgs =
    "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd";

// Firecracker's rate limiter settings (devices/rate_limiter.h runs them).
struct TokenBucketConfig {
  uint64_t size = 0;  // 0: the bucket does not limit
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;  // 0: the bucket does not limit
};

struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;  // bytes
  std::optional<TokenBucketConfig> ops;        // requests
};

// Where a vhost-user backend is reached, and how ember behaves when it
// goes away: as a client (ember connects to the backend's socket; the
// default) or as a server (ember creates the socket and the backend
// connects, like QEMU's server=on and OVS-DPDK's dpdkvhostuserclient).
enum class SocketMode { kClient, kServer };

struct VhostUserEndpoint {
  std::string socket;
  SocketMode mode = SocketMode::kClient;
  // Server mode: how long InstanceStart waits for the backend to connect.
  std::chrono::milliseconds connect_timeout{10000};
  // Client mode: how often ember retries after a hang-up, and when it gives
  // up (0: never).
  std::chrono::milliseconds reconnect_interval{200};
  std::chrono::milliseconds reconnect_timeout{0};
};

struct BootSourceConfig {
  std::string kernel_image_path;
  std::optional<std::string> boot_args;
  std::optional<std::string> initrd_path;
};

struct MachineConfig {
  uint32_t vcpu_count = 1;
  uint32_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
  // Firecracker's huge_pages: "None" (4 KiB pages) or "2M" (guest memory
  // on the host's 2 MiB hugetlb pool, reserved whole at InstanceStart).
  bool huge_pages_2m = false;
  // ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) and the ACPI power device:
  // how stock kernels find the vCPUs and virtio-mmio devices and power off.
  // Off: neither; guests then use the MP table and the command line.
  bool acpi = true;
};

struct SerialConfig {
  std::optional<std::string> serial_out_path;  // default: ember's stdout
};

// PUT /logger and the config file's "logger" (Firecracker's fields).
struct LoggerConfig {
  std::optional<std::string> log_path;  // default: stderr
  std::string level = "Info";
  bool show_level = false;
  bool show_log_origin = false;
};

// A vhost-user-fs device ("fs" in the config file, PUT /fs/{fs_id}).
struct FsConfig {
  std::string fs_id;
  std::string tag;             // what the guest mounts; at most 36 bytes
  VhostUserEndpoint backend;   // virtiofsd's socket and how to (re)connect
  uint32_t num_queues = 1;     // request queues (plus one hiprio queue)
  uint32_t queue_size = 1024;  // virtiofsd's and QEMU's usual size
};

// A network interface ("network-interfaces", PUT /network-interfaces/{iface_id}):
// on a TAP device (Firecracker's host_dev_name, ember's virtio-net) or on a
// vhost-user backend.
struct NetConfig {
  std::string iface_id;
  std::array<uint8_t, 6> guest_mac{};  // given, or generated from the id
  bool mac_given = false;
  std::string host_dev_name;                         // the TAP; empty for a vhost-user interface
  std::optional<RateLimiterConfig> rx_rate_limiter;  // TAP only
  std::optional<RateLimiterConfig> tx_rate_limiter;
  VhostUserEndpoint backend;  // vhost-user: e.g. testpmd's socket and how to (re)connect
  uint32_t queue_size = 256;
  std::optional<uint16_t> mtu;
};

// A drive ("drives", PUT /drives/{drive_id}): virtio-blk emulated by ember
// on a host file, with Firecracker's fields.
enum class CacheType { kUnsafe, kWriteback };
struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;  // empty for a vhost-user drive
  // vhost-user-blk (Firecracker's `socket`): the backend serves the data.
  std::optional<VhostUserEndpoint> socket;
  bool is_root_device = false;
  bool is_read_only = false;
  std::optional<std::string> partuuid;  // root=PARTUUID=... instead of /dev/vda
  CacheType cache_type = CacheType::kUnsafe;
  bool async_io = false;  // io_engine "Async" (io_uring); "Sync" by default
  std::optional<RateLimiterConfig> rate_limiter;
};

// The vsock device ("vsock", PUT /vsock): Firecracker's hybrid vsock, the
// guest's AF_VSOCK sockets reached through Unix sockets on the host.
struct VsockConfig {
  std::optional<std::string> vsock_id;  // accepted and shown; Firecracker deprecated it
  uint32_t guest_cid = 3;
  std::string uds_path;  // host-initiated connections; guest-initiated go to uds_path_PORT
};

// The entropy device ("entropy", PUT /entropy): Firecracker's virtio-rng,
// filled from the host's getrandom.
struct EntropyConfig {
  std::optional<RateLimiterConfig> rate_limiter;
};

// MMDS, Firecracker's metadata service ("mmds-config", PUT /mmds/config):
// which TAP interfaces carry it to the guest, at which address, and whether
// V2 session tokens are required.
struct MmdsConfig {
  bool v2 = false;                              // "version": "V1" (default) or "V2"
  std::vector<std::string> network_interfaces;  // iface_ids, at least one
  std::array<uint8_t, 4> ipv4_address = {169, 254, 169, 254};
  bool imds_compat = false;
};

struct VmConfig {
  std::optional<BootSourceConfig> boot_source;
  MachineConfig machine;
  SerialConfig serial;
  std::optional<LoggerConfig> logger;
  std::optional<std::string> metrics_path;
  // The root device, if any, is first: it becomes /dev/vda.
  std::vector<DriveConfig> drives;
  std::vector<FsConfig> fs;
  std::vector<NetConfig> net;
  std::optional<VsockConfig> vsock;
  std::optional<EntropyConfig> entropy;
  std::optional<MmdsConfig> mmds;
};

}  // namespace ember
