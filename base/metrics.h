// Process-wide counters in Firecracker's metrics style: JSON lines whose
// counters are the increase since the previous line, written on
// FlushMetrics and once a minute to the metrics file.
//
// Thread-safety: counters are relaxed atomics incremented from any thread;
// Snapshot/Flush run on the VMM thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

// One counter; `Add` from any thread.
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

struct Metrics {
  // api_server
  std::atomic<uint64_t> process_startup_time_us{0};
  std::atomic<uint64_t> process_startup_time_cpu_us{0};
  // Per "<method>:<group>.<name>" request counters, e.g. get_api_requests.
  Counter get_instance_info, get_machine_cfg, get_vm_config, get_version;
  Counter put_actions, put_actions_fails, put_boot_source, put_boot_source_fails, put_machine_cfg,
      put_machine_cfg_fails, put_logger, put_logger_fails, put_metrics, put_metrics_fails,
      put_serial, put_serial_fails, put_network, put_network_fails, put_fs, put_fs_fails;
  Counter patch_machine_cfg, patch_machine_cfg_fails, patch_vm, patch_vm_fails;
  Counter invalid_requests, api_internal_errors;
  Counter put_drive, put_drive_fails, patch_drive, patch_drive_fails;
  // block (emulated virtio-blk drives, all drives together)
  Counter block_read_count, block_write_count, block_flush_count, block_read_bytes,
      block_write_bytes, block_invalid_requests, block_execute_fails, block_update_count,
      block_update_fails, block_rate_limiter_throttled;
  // net (emulated virtio-net on TAP devices, all interfaces together)
  Counter net_rx_bytes, net_rx_packets, net_tx_bytes, net_tx_packets, net_rx_dropped,
      net_tx_dropped, net_tx_malformed_frames, net_rx_malformed_buffers, net_no_rx_avail_buffer,
      net_rx_rate_limiter_throttled, net_tx_rate_limiter_throttled;
  Counter patch_network, patch_network_fails;
  Counter put_vsock, put_vsock_fails;
  // vsock (Firecracker's group names)
  Counter vsock_rx_bytes, vsock_tx_bytes, vsock_rx_packets, vsock_tx_packets, vsock_conns_added,
      vsock_conns_killed, vsock_conns_removed, vsock_tx_malformed_packets, vsock_rx_read_fails,
      vsock_tx_write_fails, vsock_conn_refused, vsock_rst_dropped;
  // vcpu
  Counter exit_io_in, exit_io_out, exit_mmio_read, exit_mmio_write, vcpu_failures;
  // devices
  Counter uart_write_count, uart_read_count, i8042_reset_count, i8042_ctrl_alt_del,
      i8042_missed_writes, uart_missed_writes;
  // entropy (virtio-rng; Firecracker's names in metrics.cc)
  Counter rng_activate_fails, rng_event_fails, rng_event_count, rng_bytes, rng_host_fails,
      rng_rate_limiter_throttled, rng_rate_limiter_events;
  Counter put_entropy, put_entropy_fails;
  // MMDS requests over the API
  Counter get_mmds, put_mmds, put_mmds_fails, patch_mmds, patch_mmds_fails;
  // seccomp
  Counter seccomp_faults;
  // logger: lines a full or closed log or metrics file did not take
  Counter logger_missed_log_count, logger_missed_metrics_count;
  // vhost-user backends going away and coming back
  Counter vhost_user_disconnects, vhost_user_reconnects, vhost_user_reconnect_failures;
};

Metrics& GlobalMetrics();

// (API requests are counted by api/routes.cc, whose route table names
// each route's counters.)

// Writes metric lines to a file (opened for appending).
// The open metrics file (-1: none), for writers that cannot take locks or
// allocate, such as the seccomp signal handler. Async-signal-safe.
int MetricsFileFd();

class MetricsWriter {
 public:
  static Result<MetricsWriter> Open(const std::string& path);
  // Appends one line with the counters' increase since the last line.
  Status Flush();

 private:
  explicit MetricsWriter(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::map<std::string, uint64_t> last_;
};

}  // namespace ember
