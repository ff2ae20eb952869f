// virtio-net (device type 1) emulated in ember on a TAP device: Firecracker's
// network interface (`host_dev_name`). Receive queue 0, transmit queue 1,
// served by the device's QueueWorker with the TAP's fd watched beside the
// kicks. Frames keep their 12-byte virtio-net header on the TAP
// (IFF_VNET_HDR), so checksum and TSO/UFO offloads pass through: the
// offloads the driver accepts are set on the TAP (TUNSETOFFLOAD).
//
// Receive takes one chain per frame (no MRG_RXBUF: a Linux driver that
// accepts TSO then posts 64 KiB buffers). EVENT_IDX is offered. When the driver has posted no
// buffer, the frame waits in ember and the TAP is not read again until the
// next kick: no busy loop, no queue growing in ember. A hostile driver's
// chains (wrong directions, outside RAM, frames shorter than a header or
// longer than the largest TSO frame) are dropped and counted.
//
// With MMDS on the interface (TapNetOptions::mmds), the guest's frames for
// the MMDS address go to an MmdsStack instead of the TAP, after the
// transmit rate limiter like any frame; the frames the stack answers with
// reach the guest before the TAP's, through the receive rate limiter and
// the receive metrics like any frame. The stack makes a frame only when
// the driver has posted a buffer for it, and its retransmission timer
// wakes the worker: nothing queues up in ember, nothing spins.
//
// Thread-safety: the transport calls in under its lock from vCPU threads;
// SetRateLimiters comes from the VMM thread; frames move on the worker,
// which alone touches the MMDS stack (its counters may be read anywhere).
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "devices/mmds/mmds_stack.h"
#include "devices/mmds/mmds_store.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/active_queues.h"
#include "devices/virtio/queue_worker.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"

namespace ember {

struct TapNetOptions {
  std::string iface_id;
  std::string tap_name;
  std::array<uint8_t, 6> mac{};
  uint16_t queue_size = 256;
  std::optional<uint16_t> mtu;
  RateLimiterConfig rx_rate_limiter;
  RateLimiterConfig tx_rate_limiter;
  // MMDS answered on this interface, at the address the store's settings
  // give when the device is created; null: none.
  std::shared_ptr<MmdsStore> mmds;
};

class TapNetDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 1;
  // The largest frame either way: a 64 KiB TSO segment plus headers.
  static constexpr size_t kMaxFrame = 65562;

  // `tap` comes from OpenTap. Starts the worker thread. With MMDS, builds
  // the stack here, before the worker's filter (its ISNs read
  // std::random_device).
  static Result<std::shared_ptr<TapNetDevice>> Create(TapNetOptions options, UniqueFd tap);

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return 2; }
  uint16_t max_queue_size() const override { return options_.queue_size; }
  uint64_t device_features() const override;
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}
  Status Activate(const Activation& activation) override;
  void Reset() override;

  // PATCH /network-interfaces after boot: new buckets, full.
  void SetRateLimiters(const std::optional<RateLimiterConfig>& rx,
                       const std::optional<RateLimiterConfig>& tx);
  const std::string& name() const { return name_; }
  // Returns once every kick and frame before the call has been looked at.
  void Sync() { worker_.Sync(); }
  // The MMDS stack's counters; null without MMDS.
  const MmdsStackCounters* mmds_counters() const { return mmds_ ? &mmds_->counters() : nullptr; }

 private:
  TapNetDevice(TapNetOptions options, UniqueFd tap, std::string name,
               std::unique_ptr<MmdsStack> mmds)
      : options_(std::move(options)),
        name_(std::move(name)),
        tap_(std::move(tap)),
        rx_limiter_(options_.rx_rate_limiter),
        tx_limiter_(options_.tx_rate_limiter),
        queues_(name_),
        mmds_(std::move(mmds)),
        worker_(name_) {}

  void Serve();
  // Each returns whether it returned chains to the driver.
  bool Transmit();
  bool Receive();
  // Whether the frame in `chain` (`length` bytes with its header) was for
  // MMDS and is dealt with; if not, it is for the TAP.
  bool SendToMmds(const DescriptorChain& chain, size_t length);
  // Writes a frame of `length` bytes with its header to the TAP, counted.
  void WriteToTap(const std::vector<iovec>& iov, size_t length);
  // Zero, or how long `limiter` says a frame of `bytes` must wait.
  std::chrono::nanoseconds Throttle(RateLimiter& limiter, uint64_t bytes);
  // Asks for Serve again after `delay` at the latest (one timer: the
  // earliest request of a Serve wins).
  void ServeAgainWithin(std::chrono::nanoseconds delay);
  VirtQueue& rx() { return queues_[0]; }
  VirtQueue& tx() { return queues_[1]; }

  const TapNetOptions options_;
  const std::string name_;
  const UniqueFd tap_;

  std::mutex limiter_mutex_;  // the worker and PATCH
  RateLimiter rx_limiter_;
  RateLimiter tx_limiter_;

  // Set by Activate, cleared by Reset; used by the worker in between.
  ActiveQueues queues_;           // receive, transmit
  unsigned offloads_wanted_ = 0;  // TUN_F_*, from the acked features
  std::optional<unsigned> offloads_set_;
  std::optional<DescriptorChain> tx_throttled_;
  std::vector<uint8_t> frame_;  // a received frame waiting for a buffer
  size_t frame_length_ = 0;
  bool frame_paid_ = false;  // its rx tokens are taken
  bool rx_starved_ = false;  // Receive stopped for want of a buffer

  // Worker only, between Serve's start and end.
  std::optional<std::chrono::nanoseconds> serve_again_;

  // MMDS, if on: the stack and a copy of each frame the guest sends it
  // (the stack parses a copy, never memory the guest may change meanwhile).
  const std::unique_ptr<MmdsStack> mmds_;
  std::vector<uint8_t> mmds_frame_;

  QueueWorker worker_;  // last: stops before the rest goes
};

}  // namespace ember
