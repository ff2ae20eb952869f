#include "config/config_render.h"

#include "config/config_parser.h"

namespace ember {

// Firecracker's shape: every field, null when not given.
nlohmann::json RenderBootSource(const BootSourceConfig& config) {
  nlohmann::json json{{"kernel_image_path", config.kernel_image_path},
                      {"initrd_path", nullptr},
                      {"boot_args", nullptr}};
  if (config.boot_args) json["boot_args"] = *config.boot_args;
  if (config.initrd_path) json["initrd_path"] = *config.initrd_path;
  return json;
}

nlohmann::json RenderMachineConfig(const MachineConfig& config) {
  return {{"vcpu_count", config.vcpu_count},
          {"mem_size_mib", config.mem_size_mib},
          {"smt", config.smt},
          {"track_dirty_pages", config.track_dirty_pages},
          {"acpi", config.acpi},
          {"huge_pages", config.huge_pages_2m ? "2M" : "None"}};
}

namespace {

void RenderEndpoint(const VhostUserEndpoint& endpoint, nlohmann::json& json) {
  json["socket"] = endpoint.socket;
  json["socket_mode"] = endpoint.mode == SocketMode::kServer ? "server" : "client";
  json["connect_timeout_ms"] = endpoint.connect_timeout.count();
  json["reconnect_interval_ms"] = endpoint.reconnect_interval.count();
  json["reconnect_timeout_ms"] = endpoint.reconnect_timeout.count();
}

nlohmann::json RenderRateLimiter(const RateLimiterConfig& config) {
  nlohmann::json json = nlohmann::json::object();
  auto bucket = [](const TokenBucketConfig& b) {
    return nlohmann::json{
        {"size", b.size}, {"one_time_burst", b.one_time_burst}, {"refill_time", b.refill_time_ms}};
  };
  if (config.bandwidth) json["bandwidth"] = bucket(*config.bandwidth);
  if (config.ops) json["ops"] = bucket(*config.ops);
  return json;
}

}  // namespace

nlohmann::json RenderVmConfig(const VmConfig& config) {
  // As Firecracker shows it: boot-source is there before it is configured
  // (an empty kernel path), optional devices are null when absent.
  nlohmann::json json{
      {"machine-config", RenderMachineConfig(config.machine)},
      {"boot-source", RenderBootSource(config.boot_source.value_or(BootSourceConfig{}))},
      {"vsock", nullptr}};
  if (config.logger) {
    json["logger"] = {{"level", config.logger->level},
                      {"show_level", config.logger->show_level},
                      {"show_log_origin", config.logger->show_log_origin}};
    if (config.logger->log_path) json["logger"]["log_path"] = *config.logger->log_path;
  }
  if (config.metrics_path) json["metrics"] = {{"metrics_path", *config.metrics_path}};
  json["drives"] = nlohmann::json::array();
  for (const DriveConfig& drive : config.drives) {
    nlohmann::json entry{
        {"drive_id", drive.drive_id},
        {"is_root_device", drive.is_root_device},
        {"cache_type", drive.cache_type == CacheType::kWriteback ? "Writeback" : "Unsafe"}};
    if (drive.socket) {
      RenderEndpoint(*drive.socket, entry);
    } else {
      entry["path_on_host"] = drive.path_on_host;
      entry["is_read_only"] = drive.is_read_only;
      entry["io_engine"] = drive.async_io ? "Async" : "Sync";
    }
    if (drive.partuuid) entry["partuuid"] = *drive.partuuid;
    if (drive.rate_limiter) entry["rate_limiter"] = RenderRateLimiter(*drive.rate_limiter);
    json["drives"].push_back(std::move(entry));
  }
  json["fs"] = nlohmann::json::array();
  for (const FsConfig& fs : config.fs) {
    nlohmann::json device{{"fs_id", fs.fs_id},
                          {"tag", fs.tag},
                          {"num_queues", fs.num_queues},
                          {"queue_size", fs.queue_size}};
    RenderEndpoint(fs.backend, device);
    json["fs"].push_back(std::move(device));
  }
  json["network-interfaces"] = nlohmann::json::array();
  for (const NetConfig& net : config.net) {
    nlohmann::json iface{{"iface_id", net.iface_id},
                         {"guest_mac", FormatMac(net.guest_mac)},
                         {"queue_size", net.queue_size}};
    if (net.mtu) iface["mtu"] = *net.mtu;
    if (!net.host_dev_name.empty()) {
      iface["host_dev_name"] = net.host_dev_name;
      if (net.rx_rate_limiter) iface["rx_rate_limiter"] = RenderRateLimiter(*net.rx_rate_limiter);
      if (net.tx_rate_limiter) iface["tx_rate_limiter"] = RenderRateLimiter(*net.tx_rate_limiter);
    } else {
      RenderEndpoint(net.backend, iface);
    }
    json["network-interfaces"].push_back(std::move(iface));
  }
  if (config.vsock) {
    json["vsock"] = {{"guest_cid", config.vsock->guest_cid}, {"uds_path", config.vsock->uds_path}};
    if (config.vsock->vsock_id) json["vsock"]["vsock_id"] = *config.vsock->vsock_id;
  }
  json["entropy"] = nullptr;
  if (config.entropy) {
    json["entropy"] = nlohmann::json::object();
    if (config.entropy->rate_limiter) {
      json["entropy"]["rate_limiter"] = RenderRateLimiter(*config.entropy->rate_limiter);
    }
  }
  json["mmds-config"] = nullptr;
  if (config.mmds) {
    const std::array<uint8_t, 4>& ip = config.mmds->ipv4_address;
    json["mmds-config"] = {
        {"version", config.mmds->v2 ? "V2" : "V1"},
        {"network_interfaces", config.mmds->network_interfaces},
        {"ipv4_address", std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." +
                             std::to_string(ip[2]) + "." + std::to_string(ip[3])},
        {"imds_compat", config.mmds->imds_compat}};
  }
  if (config.serial.serial_out_path) {
    json["serial"] = {{"serial_out_path", *config.serial.serial_out_path}};
  }
  return json;
}

}  // namespace ember
