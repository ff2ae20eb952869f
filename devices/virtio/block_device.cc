#include "devices/virtio/block_device.h"

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "base/metrics.h"
#include "base/sys_error.h"

namespace ember {
namespace {

// Transfer's answer for a request that went to the io_uring (not a status
// the spec defines).
constexpr uint8_t kPending = 0xff;
constexpr uint32_t kHeaderBytes = sizeof(virtio_blk_outhdr);

// Reads or writes all of [offset, offset + total) through `iov`, going on
// after short transfers; false on an error or an early end of file.
bool TransferAll(int fd, bool write, std::vector<iovec> iov, uint64_t offset) {
  size_t first = 0;
  while (first < iov.size()) {
    ssize_t n = write ? pwritev(fd, iov.data() + first, static_cast<int>(iov.size() - first),
                                static_cast<off_t>(offset))
                      : preadv(fd, iov.data() + first, static_cast<int>(iov.size() - first),
                               static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    offset += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

Result<UniqueFd> BlockDevice::OpenBackingFile(const std::string& path, bool read_only) {
  // O_NONBLOCK: a FIFO must not hold the VMM thread in open(); it is then
  // refused as not a file. Requests use pread/pwrite, which ignore it.
  UniqueFd fd(open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == EACCES || errno == EROFS || errno == EPERM) {
      return ErrnoStatus(path + (read_only
                                     ? " cannot be read"
                                     : " cannot be opened for writing (is_read_only is false)"));
    }
    return ErrnoStatus(path);
  }
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) return ErrnoStatus(path);
  if (!S_ISREG(info.st_mode) && !S_ISBLK(info.st_mode)) {
    return Status::Error(path + " is not a regular file or a block device");
  }
  return fd;
}

Result<std::shared_ptr<BlockDevice>> BlockDevice::Create(BlockDeviceOptions options,
                                                         UniqueFd file) {
  std::string name = "drive " + options.drive_id;
  std::shared_ptr<BlockDevice> device(new BlockDevice(std::move(options), std::move(name)));
  EMBER_RETURN_IF_ERROR(device->SetFile(std::move(file)));
  if (device->options_.async_io) {
    Result<std::unique_ptr<BlockAsyncIo>> async = BlockAsyncIo::Create(device->options_.queue_size);
    if (!async.ok()) return async.status().Context(device->name_);
    device->async_ = std::move(*async);
    device->in_flight_.resize(device->options_.queue_size);
    for (uint64_t slot = 0; slot < device->in_flight_.size(); ++slot) {
      device->free_slots_.push_back(slot);
    }
  }
  EMBER_RETURN_IF_ERROR(device->worker_.Launch());
  return device;
}

BlockDevice::~BlockDevice() { DrainInFlight(); }

void BlockDevice::DrainInFlight() {
  if (!async_ || in_kernel_ == 0) return;
  // The worker reaps (it alone touches the ring); the guest memory the
  // requests point at must outlive them.
  std::unique_lock lock(drain_mutex_);
  draining_ = true;
  lock.unlock();
  worker_.Poke();
  lock.lock();
  drained_.wait(lock, [this] { return in_kernel_ == 0; });
  draining_ = false;
}

Status BlockDevice::SetFile(UniqueFd file) {
  struct stat info {};
  if (fstat(file.get(), &info) != 0) return ErrnoStatus(name_ + ": fstat");
  uint64_t bytes = static_cast<uint64_t>(info.st_size);
  if (S_ISBLK(info.st_mode)) {
    off_t end = lseek(file.get(), 0, SEEK_END);
    if (end < 0) return ErrnoStatus(name_ + ": finding the size of the block device");
    bytes = static_cast<uint64_t>(end);
  }
  if (bytes % kSectorSize != 0) {
    SPDLOG_WARN(
        "{}: the file's {} bytes are not a multiple of {}: its last {} bytes are "
        "unreachable",
        name_, bytes, kSectorSize, bytes % kSectorSize);
  }
  std::lock_guard lock(file_mutex_);
  file_ = std::move(file);
  capacity_ = bytes / kSectorSize;
  return Status::Ok();
}

Status BlockDevice::ReplaceFile(UniqueFd file) {
  EMBER_RETURN_IF_ERROR(SetFile(std::move(file)));
  worker_.Poke();  // requests that waited on the old file go on with the new
  return Status::Ok();
}

uint64_t BlockDevice::device_features() const {
  uint64_t features =
      kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx | (1ull << VIRTIO_BLK_F_SEG_MAX);
  if (options_.read_only) features |= 1ull << VIRTIO_BLK_F_RO;
  if (options_.honour_flush) features |= 1ull << VIRTIO_BLK_F_FLUSH;
  return features;
}

void BlockDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  virtio_blk_config config{};
  config.capacity = capacity_.load();
  config.seg_max = kMaxSegments;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&config);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config) ? bytes[offset + i] : 0;
  }
}

Status BlockDevice::Activate(const Activation& activation) {
  EMBER_RETURN_IF_ERROR(queues_.Activate(activation, {0}));
  std::vector<int> wake_on(activation.kick_fds.begin(), activation.kick_fds.end());
  if (async_) wake_on.push_back(async_->completion_fd());
  worker_.Start(std::move(wake_on), [this] { Serve(); });
  return Status::Ok();
}

void BlockDevice::Reset() {
  DrainInFlight();
  worker_.Stop();
  queues_.Clear();
  throttled_.reset();
}

void BlockDevice::SetRateLimiter(const RateLimiterConfig& config) {
  {
    std::lock_guard lock(limiter_mutex_);
    limiter_ = RateLimiter(config);
  }
  worker_.Poke();  // a throttled request may go now
}

std::chrono::nanoseconds BlockDevice::Throttle(const DescriptorChain& chain) {
  std::lock_guard lock(limiter_mutex_);
  if (!limiter_.limits()) return std::chrono::nanoseconds::zero();
  // Bytes: the data buffers, between the header and the status byte.
  uint64_t bytes = 0;
  for (size_t i = 1; i + 1 < chain.descriptors.size(); ++i) bytes += chain.descriptors[i].length;
  return limiter_.TryTake(bytes);
}

bool BlockDevice::ReapCompletions(bool wait) {
  bool any = false;
  async_->Reap(wait, [&](uint64_t token, int result) {
    InFlight& request = in_flight_[token];
    const bool ok = request.type == VIRTIO_BLK_T_FLUSH
                        ? result == 0
                        : result >= 0 && static_cast<uint64_t>(result) == request.bytes;
    *request.status = ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
    Metrics& metrics = GlobalMetrics();
    if (!ok) {
      Warn(std::string("request failed in the io_uring: ") +
           (result < 0 ? strerror(-result) : "short transfer"));
      metrics.block_execute_fails.Add();
    } else if (request.type == VIRTIO_BLK_T_IN || request.type == VIRTIO_BLK_T_OUT) {
      const bool is_write = request.type == VIRTIO_BLK_T_OUT;
      (is_write ? metrics.block_write_count : metrics.block_read_count).Add();
      (is_write ? metrics.block_write_bytes : metrics.block_read_bytes).Add(request.bytes);
    }
    const uint32_t written =
        (ok && request.type == VIRTIO_BLK_T_IN ? static_cast<uint32_t>(request.bytes) : 0) + 1;
    queue().Complete(request.head, written);
    request.iov.clear();
    free_slots_.push_back(token);
    --in_kernel_;
    any = true;
  });
  return any;
}

uint8_t BlockDevice::QueueAsync(uint32_t type, const DescriptorChain& chain, std::vector<iovec> iov,
                                uint64_t offset, uint64_t bytes) {
  if (free_slots_.empty()) return VIRTIO_BLK_S_IOERR;  // cannot happen: one slot per entry
  const uint64_t token = free_slots_.back();
  InFlight& request = in_flight_[token];
  request = InFlight{chain.head, chain.descriptors.back().host, type, bytes, std::move(iov)};
  const bool queued = type == VIRTIO_BLK_T_FLUSH
                          ? async_->QueueFlush(file_.get(), token)
                          : async_->QueueTransfer(type == VIRTIO_BLK_T_OUT, file_.get(),
                                                  request.iov, offset, token);
  if (!queued) return VIRTIO_BLK_S_IOERR;
  free_slots_.pop_back();
  ++in_kernel_;
  submit_pending_ = true;
  return kPending;
}

void BlockDevice::Serve() {
  if (!queues_.active()) return;
  bool completed = async_ && ReapCompletions(/*wait=*/false);
  {
    std::unique_lock lock(drain_mutex_);
    if (draining_) {
      // Reset or teardown: no new requests; wait for those in the kernel.
      lock.unlock();
      while (in_kernel_ > 0) completed |= ReapCompletions(/*wait=*/true);
      lock.lock();
      drained_.notify_all();
      return;
    }
  }
  if (queues_.broken()) return;
  DescriptorChain chain;
  std::string problem;
  while (true) {
    VirtQueue::Pop popped = VirtQueue::Pop::kChain;
    if (throttled_) {
      chain = std::move(*throttled_);
      throttled_.reset();
    } else {
      popped = queue().Next(chain, problem);
    }
    if (popped == VirtQueue::Pop::kEmpty) {
      if (queue().ArmNotification()) continue;  // arrived while asking for kicks
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken(problem);
      break;
    }
    uint32_t written = 0;
    if (popped == VirtQueue::Pop::kBadChain) {
      Warn("request dropped: " + problem);
      GlobalMetrics().block_invalid_requests.Add();
    } else if (std::chrono::nanoseconds wait = Throttle(chain); wait.count() > 0) {
      // Keep the request and resume from the worker's timer.
      GlobalMetrics().block_rate_limiter_throttled.Add();
      throttled_ = std::move(chain);
      worker_.ServeAgainAfter(wait);
      break;
    } else if (std::optional<uint32_t> done = Execute(chain)) {
      written = *done;
    } else {
      continue;  // in the io_uring: its completion returns the chain
    }
    queue().Complete(chain.head, written);
    completed = true;
  }
  if (submit_pending_) {
    async_->Submit();
    submit_pending_ = false;
    // Reads from the page cache finish inside the submit: answer them now,
    // not after another trip through the completion eventfd.
    completed |= ReapCompletions(/*wait=*/false);
  }
  queues_.InterruptIfWanted({{0, completed}});
}

std::optional<uint32_t> BlockDevice::Execute(const DescriptorChain& chain) {
  const std::vector<Descriptor>& d = chain.descriptors;
  // The status byte: the last descriptor, written by the device.
  if (d.size() < 2 || !d.back().device_writable || d.back().length < 1) {
    Warn("request without a header and a writable status byte dropped");
    GlobalMetrics().block_invalid_requests.Add();
    return 0;
  }
  uint8_t* status = d.back().host;
  if (d[0].device_writable || d[0].length < kHeaderBytes) {
    Warn("request header is not a readable " + std::to_string(kHeaderBytes) + "-byte buffer");
    GlobalMetrics().block_invalid_requests.Add();
    *status = VIRTIO_BLK_S_IOERR;
    return 1;
  }
  virtio_blk_outhdr header;
  std::memcpy(&header, d[0].host, sizeof(header));
  uint32_t written = 0;
  const uint8_t answer = Transfer(header.type, header.sector, chain, written);
  if (answer == kPending) return std::nullopt;
  *status = answer;
  if (answer == VIRTIO_BLK_S_IOERR) GlobalMetrics().block_execute_fails.Add();
  return written + 1;
}

uint8_t BlockDevice::Transfer(uint32_t type, uint64_t sector, const DescriptorChain& chain,
                              uint32_t& written) {
  const std::span<const Descriptor> data(chain.descriptors.data() + 1,
                                         chain.descriptors.size() - 2);
  switch (type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const bool is_write = type == VIRTIO_BLK_T_OUT;
      if (is_write && options_.read_only) {
        Warn("write to a read-only drive refused");
        return VIRTIO_BLK_S_IOERR;
      }
      if (data.size() > kMaxSegments) {
        Warn("request with " + std::to_string(data.size()) + " segments (at most " +
             std::to_string(kMaxSegments) + ")");
        return VIRTIO_BLK_S_IOERR;
      }
      std::vector<iovec> iov;
      uint64_t total = 0;
      for (const Descriptor& segment : data) {
        // Reads fill guest buffers, writes read them: the direction must match.
        if (segment.device_writable != !is_write) {
          Warn("data buffer of the wrong direction");
          return VIRTIO_BLK_S_IOERR;
        }
        iov.push_back({segment.host, segment.length});
        total += segment.length;
      }
      std::lock_guard lock(file_mutex_);
      const uint64_t capacity = capacity_.load();
      const bool in_range = total % kSectorSize == 0 && sector <= capacity &&
                            total / kSectorSize <= capacity - sector;
      if (in_range && async_) {
        return QueueAsync(type, chain, std::move(iov), sector * kSectorSize, total);
      }
      if (total % kSectorSize != 0 || sector > capacity ||
          total / kSectorSize > capacity - sector) {
        Warn("request of " + std::to_string(total) + " bytes at sector " + std::to_string(sector) +
             ": not whole sectors inside the " + std::to_string(capacity) + "-sector drive");
        return VIRTIO_BLK_S_IOERR;
      }
      if (!TransferAll(file_.get(), is_write, std::move(iov), sector * kSectorSize)) {
        Warn(std::string(is_write ? "writing" : "reading") +
             " the file failed: " + (errno ? strerror(errno) : "end of file"));
        return VIRTIO_BLK_S_IOERR;
      }
      Metrics& metrics = GlobalMetrics();
      (is_write ? metrics.block_write_count : metrics.block_read_count).Add();
      (is_write ? metrics.block_write_bytes : metrics.block_read_bytes).Add(total);
      if (!is_write) written = static_cast<uint32_t>(total);
      return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH: {
      GlobalMetrics().block_flush_count.Add();
      if (!options_.honour_flush) return VIRTIO_BLK_S_OK;  // Unsafe: the host decides
      std::lock_guard lock(file_mutex_);
      if (async_) return QueueAsync(type, chain, {}, 0, 0);
      return fdatasync(file_.get()) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
    }
    case VIRTIO_BLK_T_GET_ID: {
      if (data.empty() || !data[0].device_writable) return VIRTIO_BLK_S_IOERR;
      char id[VIRTIO_BLK_ID_BYTES] = {};
      std::memcpy(id, options_.drive_id.data(), std::min(options_.drive_id.size(), sizeof(id)));
      written = std::min<uint32_t>(data[0].length, sizeof(id));
      if (written > 0) std::memcpy(data[0].host, id, written);  // (a 0-byte buffer maps nothing)
      return VIRTIO_BLK_S_OK;
    }
    default:
      Warn("unsupported request type " + std::to_string(type));
      return VIRTIO_BLK_S_UNSUPP;
  }
}

}  // namespace ember
