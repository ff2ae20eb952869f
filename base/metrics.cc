#include "base/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "base/output_file.h"
#include "base/sys_error.h"

namespace ember {
namespace {

struct CounterName {
  const char* group;
  const char* name;
  Counter Metrics::*counter;
};

// Firecracker's group and field names where ember has the same thing.
constexpr CounterName kCounters[] = {
    {"get_api_requests", "instance_info_count", &Metrics::get_instance_info},
    {"get_api_requests", "machine_cfg_count", &Metrics::get_machine_cfg},
    {"get_api_requests", "vm_config_count", &Metrics::get_vm_config},
    {"get_api_requests", "vmm_version_count", &Metrics::get_version},
    {"put_api_requests", "actions_count", &Metrics::put_actions},
    {"put_api_requests", "actions_fails", &Metrics::put_actions_fails},
    {"put_api_requests", "boot_source_count", &Metrics::put_boot_source},
    {"put_api_requests", "boot_source_fails", &Metrics::put_boot_source_fails},
    {"put_api_requests", "machine_cfg_count", &Metrics::put_machine_cfg},
    {"put_api_requests", "machine_cfg_fails", &Metrics::put_machine_cfg_fails},
    {"put_api_requests", "logger_count", &Metrics::put_logger},
    {"put_api_requests", "logger_fails", &Metrics::put_logger_fails},
    {"put_api_requests", "metrics_count", &Metrics::put_metrics},
    {"put_api_requests", "metrics_fails", &Metrics::put_metrics_fails},
    {"put_api_requests", "serial_count", &Metrics::put_serial},
    {"put_api_requests", "serial_fails", &Metrics::put_serial_fails},
    {"put_api_requests", "network_count", &Metrics::put_network},
    {"put_api_requests", "network_fails", &Metrics::put_network_fails},
    {"put_api_requests", "drive_count", &Metrics::put_drive},
    {"put_api_requests", "vsock_count", &Metrics::put_vsock},
    {"put_api_requests", "vsock_fails", &Metrics::put_vsock_fails},
    {"put_api_requests", "drive_fails", &Metrics::put_drive_fails},
    {"patch_api_requests", "drive_count", &Metrics::patch_drive},
    {"patch_api_requests", "drive_fails", &Metrics::patch_drive_fails},
    {"put_api_requests", "fs_count", &Metrics::put_fs},
    {"put_api_requests", "fs_fails", &Metrics::put_fs_fails},
    {"patch_api_requests", "machine_cfg_count", &Metrics::patch_machine_cfg},
    {"patch_api_requests", "machine_cfg_fails", &Metrics::patch_machine_cfg_fails},
    {"patch_api_requests", "network_count", &Metrics::patch_network},
    {"patch_api_requests", "network_fails", &Metrics::patch_network_fails},
    {"patch_api_requests", "vm_count", &Metrics::patch_vm},
    {"patch_api_requests", "vm_fails", &Metrics::patch_vm_fails},
    {"api_server", "invalid_requests_count", &Metrics::invalid_requests},
    {"api_server", "internal_errors_count", &Metrics::api_internal_errors},
    {"vcpu", "exit_io_in", &Metrics::exit_io_in},
    {"vcpu", "exit_io_out", &Metrics::exit_io_out},
    {"vcpu", "exit_mmio_read", &Metrics::exit_mmio_read},
    {"vcpu", "exit_mmio_write", &Metrics::exit_mmio_write},
    {"vcpu", "failures", &Metrics::vcpu_failures},
    {"uart", "write_count", &Metrics::uart_write_count},
    {"uart", "read_count", &Metrics::uart_read_count},
    {"uart", "missed_write_count", &Metrics::uart_missed_writes},
    {"i8042", "reset_count", &Metrics::i8042_reset_count},
    {"i8042", "ctrl_alt_del_count", &Metrics::i8042_ctrl_alt_del},
    {"i8042", "missed_write_count", &Metrics::i8042_missed_writes},
    {"block", "read_count", &Metrics::block_read_count},
    {"block", "write_count", &Metrics::block_write_count},
    {"block", "flush_count", &Metrics::block_flush_count},
    {"block", "read_bytes", &Metrics::block_read_bytes},
    {"block", "write_bytes", &Metrics::block_write_bytes},
    {"block", "invalid_reqs_count", &Metrics::block_invalid_requests},
    {"block", "execute_fails", &Metrics::block_execute_fails},
    {"block", "update_count", &Metrics::block_update_count},
    {"block", "update_fails", &Metrics::block_update_fails},
    {"block", "rate_limiter_throttled_events", &Metrics::block_rate_limiter_throttled},
    {"net", "rx_bytes_count", &Metrics::net_rx_bytes},
    {"net", "rx_packets_count", &Metrics::net_rx_packets},
    {"net", "tx_bytes_count", &Metrics::net_tx_bytes},
    {"net", "tx_packets_count", &Metrics::net_tx_packets},
    {"net", "rx_dropped", &Metrics::net_rx_dropped},
    {"net", "tx_dropped", &Metrics::net_tx_dropped},
    {"net", "tx_malformed_frames", &Metrics::net_tx_malformed_frames},
    {"net", "rx_malformed_buffers", &Metrics::net_rx_malformed_buffers},
    {"net", "no_rx_avail_buffer", &Metrics::net_no_rx_avail_buffer},
    {"net", "rx_rate_limiter_throttled", &Metrics::net_rx_rate_limiter_throttled},
    {"net", "tx_rate_limiter_throttled", &Metrics::net_tx_rate_limiter_throttled},
    {"vsock", "rx_bytes_count", &Metrics::vsock_rx_bytes},
    {"vsock", "tx_bytes_count", &Metrics::vsock_tx_bytes},
    {"vsock", "rx_packets_count", &Metrics::vsock_rx_packets},
    {"vsock", "tx_packets_count", &Metrics::vsock_tx_packets},
    {"vsock", "conns_added", &Metrics::vsock_conns_added},
    {"vsock", "conns_killed", &Metrics::vsock_conns_killed},
    {"vsock", "conns_removed", &Metrics::vsock_conns_removed},
    {"vsock", "tx_malformed_packets", &Metrics::vsock_tx_malformed_packets},
    {"vsock", "rx_read_fails", &Metrics::vsock_rx_read_fails},
    {"vsock", "tx_write_fails", &Metrics::vsock_tx_write_fails},
    {"vsock", "conn_refused", &Metrics::vsock_conn_refused},
    {"vsock", "rst_dropped", &Metrics::vsock_rst_dropped},
    {"put_api_requests", "entropy_count", &Metrics::put_entropy},
    {"put_api_requests", "entropy_fails", &Metrics::put_entropy_fails},
    {"get_api_requests", "mmds_count", &Metrics::get_mmds},
    {"put_api_requests", "mmds_count", &Metrics::put_mmds},
    {"put_api_requests", "mmds_fails", &Metrics::put_mmds_fails},
    {"patch_api_requests", "mmds_count", &Metrics::patch_mmds},
    {"patch_api_requests", "mmds_fails", &Metrics::patch_mmds_fails},
    {"entropy", "activate_fails", &Metrics::rng_activate_fails},
    {"entropy", "entropy_event_fails", &Metrics::rng_event_fails},
    {"entropy", "entropy_event_count", &Metrics::rng_event_count},
    {"entropy", "entropy_bytes", &Metrics::rng_bytes},
    {"entropy", "host_rng_fails", &Metrics::rng_host_fails},
    {"entropy", "entropy_rate_limiter_throttled", &Metrics::rng_rate_limiter_throttled},
    {"entropy", "rate_limiter_event_count", &Metrics::rng_rate_limiter_events},
    {"seccomp", "num_faults", &Metrics::seccomp_faults},
    {"logger", "missed_log_count", &Metrics::logger_missed_log_count},
    {"logger", "missed_metrics_count", &Metrics::logger_missed_metrics_count},
    {"vhost_user", "disconnects", &Metrics::vhost_user_disconnects},
    {"vhost_user", "reconnects", &Metrics::vhost_user_reconnects},
    {"vhost_user", "reconnect_failures", &Metrics::vhost_user_reconnect_failures},
};

}  // namespace

Metrics& GlobalMetrics() {
  static Metrics metrics;
  return metrics;
}

namespace {
std::atomic<int> metrics_file_fd{-1};
}  // namespace

int MetricsFileFd() { return metrics_file_fd.load(); }

Result<MetricsWriter> MetricsWriter::Open(const std::string& path) {
  Result<UniqueFd> fd = OpenOutputFile(path);
  if (!fd.ok()) {
    return Status::Error("Cannot initialize the metrics system due to bad user input: " +
                         fd.status().message() + " (metrics_path " + path + ")");
  }
  metrics_file_fd = fd->get();
  return MetricsWriter(std::move(*fd));
}

Status MetricsWriter::Flush() {
  const Metrics& metrics = GlobalMetrics();
  nlohmann::json line;
  line["utc_timestamp_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  line["api_server"]["process_startup_time_us"] = metrics.process_startup_time_us.load();
  line["api_server"]["process_startup_time_cpu_us"] = metrics.process_startup_time_cpu_us.load();
  for (const CounterName& counter : kCounters) {
    std::string key = std::string(counter.group) + "." + counter.name;
    uint64_t now = (metrics.*counter.counter).Read();
    line[counter.group][counter.name] = now - last_[key];
    last_[key] = now;
  }
  std::string text = line.dump() + "\n";
  // A full pipe (its reader is late or gone) drops the line, counted in the
  // next one; other failures are the caller's to report.
  if (!WriteWhole(fd_.get(), text.data(), text.size())) {
    if (errno == EAGAIN) {
      GlobalMetrics().logger_missed_metrics_count.Add();
      return Status::Ok();
    }
    return ErrnoStatus("writing metrics");
  }
  return Status::Ok();
}

}  // namespace ember
