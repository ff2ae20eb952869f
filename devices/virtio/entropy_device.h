// virtio-rng (device type 4) emulated in ember: Firecracker's entropy
// device (`/entropy`, `"entropy"` in a config file). One request queue,
// served by the device's QueueWorker: each chain the driver posts is a
// request, its buffers are filled with bytes from the host's getrandom(2)
// and the chain goes back with the number of bytes written. No config
// space; features: VERSION_1 and, as ember's other emulated devices,
// EVENT_IDX.
//
// Bounded: a chain is served at most kMaxBytesPerRequest bytes, however
// long its descriptors say it is (they may overlap: 256 descriptors of
// 16 MiB over the same pages claim 4 GiB). A hostile driver's chains (a
// buffer the device may not write, one outside guest RAM, a loop) go back
// with 0 bytes and are counted; so does a request getrandom failed. A
// broken available ring asks for a reset.
//
// The optional rate limiter (Firecracker's bandwidth and ops buckets)
// charges each request one op and the bytes it is served. A request the
// limiter holds back stays first in the ring; the worker looks again when
// the limiter's timer says the buckets have refilled, never by spinning,
// and kicks meanwhile do not wake it into work.
//
// Metrics: Firecracker's "entropy" group (GlobalMetrics().rng_*).
//
// The worker calls getrandom(2): its seccomp filter (ThreadKind::kDevice)
// must allow it.
//
// Thread-safety: the transport calls in under its lock from vCPU threads;
// requests are served on the worker.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/metrics.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/active_queues.h"
#include "devices/virtio/queue_worker.h"
#include "devices/virtio/virtio_device.h"

namespace ember {

// Firecracker's entropy metrics (group "entropy"), all entropy devices
// together (Firecracker has at most one). Add from any thread.

// Fills `bytes` completely with random bytes or fails (errno set). The
// host's getrandom unless a test puts in another.
using RandomSource = std::function<bool(std::span<uint8_t> bytes)>;
bool HostGetRandom(std::span<uint8_t> bytes);

struct EntropyOptions {
  RateLimiterConfig rate_limiter;  // none: not limited
  uint16_t queue_size = 256;       // Firecracker's queue size
  RandomSource random = HostGetRandom;
};

class EntropyDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kDeviceType = 4;
  // The most one request is served. Drivers ask for little at a time
  // (Linux's, a cache line or so per request), so this only bounds what a
  // hostile chain costs: host memory for the bytes, getrandom time on the
  // worker, tokens. Firecracker's bound too.
  static constexpr size_t kMaxBytesPerRequest = 64 * 1024;

  // Starts the worker thread.
  static Result<std::shared_ptr<EntropyDevice>> Create(EntropyOptions options);

  uint32_t device_type() const override { return kDeviceType; }
  uint16_t queue_count() const override { return 1; }
  uint16_t max_queue_size() const override { return options_.queue_size; }
  uint64_t device_features() const override;
  // No config space: reads give zeros, writes are ignored.
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}
  Status Activate(const Activation& activation) override;
  void Reset() override;

  // Returns once every kick before the call has been looked at.
  void Sync() { worker_.Sync(); }

 private:
  explicit EntropyDevice(EntropyOptions options)
      : options_(std::move(options)),
        limiter_(options_.rate_limiter),
        queues_("entropy device"),
        worker_("entropy device") {}

  void Serve();
  // Returns whether it returned chains to the driver.
  bool ServeRequests();
  // Fills the chain's buffers (at most kMaxBytesPerRequest bytes); returns
  // how many, 0 when the random source failed.
  uint32_t Fill(const DescriptorChain& chain, size_t length);

  const EntropyOptions options_;

  RateLimiter limiter_;  // worker only
  // Set by Activate, cleared by Reset; used by the worker in between.
  ActiveQueues queues_;
  // While set, the first request waits for the limiter until then: the
  // worker's timer is armed for it.
  std::optional<std::chrono::steady_clock::time_point> throttled_until_;
  std::vector<uint8_t> bytes_;  // kMaxBytesPerRequest, for one request

  QueueWorker worker_;  // last: stops before the rest goes
};

}  // namespace ember
