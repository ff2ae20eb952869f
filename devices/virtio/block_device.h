// virtio-blk (device type 2) emulated in ember on a host file: the data
// plane Firecracker's drives have. One request queue, served by the
// device's QueueWorker thread with pread/pwrite straight between the file
// and guest memory. Requests: IN, OUT, FLUSH, GET_ID (the drive id, as
// Firecracker answers).
//
// A hostile driver cannot make ember touch anything but the file's first
// capacity*512 bytes and the guest's own buffers: malformed chains are
// returned unread, malformed requests fail with IOERR (UNSUPP for unknown
// types), and an available ring that makes no sense puts the device in
// DEVICE_NEEDS_RESET.
//
// Thread-safety: the transport calls in under its lock from vCPU threads;
// ReplaceFile comes from the VMM thread; requests run on the worker.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/unique_fd.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/active_queues.h"
#include "devices/virtio/block_async_io.h"
#include "devices/virtio/queue_worker.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio/virtqueue.h"

namespace ember {

constexpr uint32_t kVirtioBlockDeviceType = 2;
constexpr uint64_t kSectorSize = 512;

struct BlockDeviceOptions {
  std::string drive_id;  // GET_ID's answer (the first 20 bytes)
  bool read_only = false;
  bool honour_flush = false;  // cache_type Writeback: FLUSH reaches the disk
  uint16_t queue_size = 256;
  RateLimiterConfig rate_limiter;
  bool async_io = false;  // io_engine Async: io_uring instead of pread/pwrite
};

class BlockDevice : public VirtioDevice {
 public:
  static constexpr uint32_t kMaxSegments = 128;

  // Opens a drive's backing file as Firecracker does at PUT time: it must
  // exist and be a regular file or a block device, readable (and writable
  // unless `read_only`). Messages name the path and the reason.
  static Result<UniqueFd> OpenBackingFile(const std::string& path, bool read_only);

  // `file` is open for reading (and writing unless read-only). Starts the
  // worker thread (and with async_io sets up the io_uring).
  static Result<std::shared_ptr<BlockDevice>> Create(BlockDeviceOptions options, UniqueFd file);
  ~BlockDevice() override;

  uint32_t device_type() const override { return kVirtioBlockDeviceType; }
  uint16_t queue_count() const override { return 1; }
  uint16_t max_queue_size() const override { return options_.queue_size; }
  uint64_t device_features() const override;
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override;
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}  // nothing writable
  Status Activate(const Activation& activation) override;
  void Reset() override;

  // A new backing file (PATCH /drives after boot): requests after this use
  // it, and the capacity changes. The caller tells the driver (a config
  // change interrupt).
  Status ReplaceFile(UniqueFd file);
  uint64_t capacity_sectors() const { return capacity_.load(); }
  // Returns once every request kicked before the call has been looked at.
  void Sync() { worker_.Sync(); }
  // New buckets (PATCH /drives after boot), full, from the next request.
  void SetRateLimiter(const RateLimiterConfig& config);
  const std::string& name() const { return name_; }

 private:
  BlockDevice(BlockDeviceOptions options, std::string name)
      : options_(std::move(options)),
        name_(std::move(name)),
        limiter_(options_.rate_limiter),
        queues_(name_),
        worker_(name_) {}

  Status SetFile(UniqueFd file);
  // Serves every available request (on the worker), until the rate
  // limiter says to wait.
  void Serve();
  // Zero when `chain` may run now; else how long the limiter says to wait.
  std::chrono::nanoseconds Throttle(const DescriptorChain& chain);
  // Runs one request; returns the bytes written into the chain, or nullopt
  // when it went to the io_uring (its completion returns the chain).
  std::optional<uint32_t> Execute(const DescriptorChain& chain);
  uint8_t Transfer(uint32_t type, uint64_t sector, const DescriptorChain& chain, uint32_t& written);
  // Async: queues the transfer; kPending, or IOERR when the ring is full.
  uint8_t QueueAsync(uint32_t type, const DescriptorChain& chain, std::vector<iovec> iov,
                     uint64_t offset, uint64_t bytes);
  // Async: returns finished requests to the driver; true if any.
  bool ReapCompletions(bool wait);
  // Async: waits until no request is in the kernel (reset, teardown).
  void DrainInFlight();
  void Warn(const std::string& message) { queues_.Warn(message); }
  VirtQueue& queue() { return queues_[0]; }

  const BlockDeviceOptions options_;
  const std::string name_;
  std::atomic<uint64_t> capacity_{0};  // in sectors; read by vCPUs

  std::mutex file_mutex_;  // held per request and by ReplaceFile
  UniqueFd file_;

  std::mutex limiter_mutex_;  // the worker and PATCH
  RateLimiter limiter_;

  // Set by Activate, cleared by Reset; used by the worker in between.
  ActiveQueues queues_;
  std::optional<DescriptorChain> throttled_;  // taken from the ring, waiting for tokens

  // io_engine Async: requests in the kernel, by token (their slot).
  struct InFlight {
    uint16_t head;
    uint8_t* status;
    uint32_t type;
    uint64_t bytes;  // expected result of a transfer
    std::vector<iovec> iov;
  };
  std::unique_ptr<BlockAsyncIo> async_;
  std::vector<InFlight> in_flight_;
  std::vector<uint64_t> free_slots_;
  bool submit_pending_ = false;
  std::mutex drain_mutex_;
  std::condition_variable drained_;
  bool draining_ = false;  // under drain_mutex_
  std::atomic<size_t> in_kernel_{0};

  QueueWorker worker_;  // last: stops before the rest goes
};

}  // namespace ember
