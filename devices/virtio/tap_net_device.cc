#include "devices/virtio/tap_net_device.h"

#include <linux/if_tun.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "base/metrics.h"
#include "devices/tap.h"

namespace ember {
namespace {

constexpr uint16_t kRxQueue = 0;
constexpr uint16_t kTxQueue = 1;
constexpr uint16_t kLinkUp = 1;
constexpr size_t kMinFrame = kTapVnetHeaderBytes + 14;  // a header and an Ethernet header
constexpr size_t kNumBuffersOffset = 10;                // in struct virtio_net_hdr_v1

constexpr uint64_t Bit(unsigned n) { return 1ull << n; }

// virtio-net feature bits (linux/virtio_net.h is not valid C++).
enum : unsigned {
  kCsum = 0,
  kGuestCsum = 1,
  kMtu = 3,
  kMac = 5,
  kGuestTso4 = 7,
  kGuestTso6 = 8,
  kGuestUfo = 10,
  kHostTso4 = 11,
  kHostTso6 = 12,
  kHostUfo = 14,
  kStatus = 16,
};

#pragma pack(push, 1)
struct NetConfigSpace {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
};
#pragma pack(pop)

// The offloads the TAP may hand the driver: those it accepted.
unsigned TapOffloads(uint64_t acked) {
  unsigned offloads = 0;
  if (acked & Bit(kGuestCsum)) offloads |= TUN_F_CSUM;
  if (acked & Bit(kGuestTso4)) offloads |= TUN_F_TSO4;
  if (acked & Bit(kGuestTso6)) offloads |= TUN_F_TSO6;
  if (acked & Bit(kGuestUfo)) offloads |= TUN_F_UFO;
  return offloads;
}

}  // namespace

Result<std::shared_ptr<TapNetDevice>> TapNetDevice::Create(TapNetOptions options, UniqueFd tap) {
  std::string name = "net device " + options.iface_id;
  std::shared_ptr<TapNetDevice> device(
      new TapNetDevice(std::move(options), std::move(tap), std::move(name)));
  device->frame_.resize(kMaxFrame);
  EMBER_RETURN_IF_ERROR(device->worker_.Launch());
  return device;
}

uint64_t TapNetDevice::device_features() const {
  uint64_t features = kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx | Bit(kMac) |
                      Bit(kStatus) | Bit(kCsum) | Bit(kGuestCsum) | Bit(kGuestTso4) |
                      Bit(kGuestTso6) | Bit(kGuestUfo) | Bit(kHostTso4) | Bit(kHostTso6) |
                      Bit(kHostUfo);
  if (options_.mtu) features |= Bit(kMtu);
  return features;
}

void TapNetDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  NetConfigSpace space{};
  std::memcpy(space.mac, options_.mac.data(), 6);
  space.status = kLinkUp;
  space.max_virtqueue_pairs = 1;
  space.mtu = options_.mtu.value_or(0);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&space);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(space) ? bytes[offset + i] : 0;
  }
}

Status TapNetDevice::Activate(const Activation& activation) {
  EMBER_RETURN_IF_ERROR(queues_.Activate(activation, {kRxQueue, kTxQueue}));
  offloads_wanted_ = TapOffloads(activation.acked_features);
  worker_.Start({activation.kick_fds.begin(), activation.kick_fds.end()}, [this] { Serve(); },
                {tap_.get()});
  return Status::Ok();
}

void TapNetDevice::Reset() {
  worker_.Stop();
  queues_.Clear();
  tx_throttled_.reset();
  frame_length_ = 0;  // a frame for a driver that went away
  frame_paid_ = false;
}

void TapNetDevice::SetRateLimiters(const std::optional<RateLimiterConfig>& rx,
                                   const std::optional<RateLimiterConfig>& tx) {
  {
    std::lock_guard lock(limiter_mutex_);
    if (rx) rx_limiter_ = RateLimiter(*rx);
    if (tx) tx_limiter_ = RateLimiter(*tx);
  }
  worker_.Poke();
}

std::chrono::nanoseconds TapNetDevice::Throttle(RateLimiter& limiter, uint64_t bytes) {
  std::lock_guard lock(limiter_mutex_);
  if (!limiter.limits()) return std::chrono::nanoseconds::zero();
  return limiter.TryTake(bytes);
}

void TapNetDevice::Serve() {
  if (!queues_.active() || queues_.broken()) return;
  if (offloads_set_ != offloads_wanted_) {
    // Here, not in Activate: the ioctl belongs to the device's filter.
    Status set = SetTapOffloads(tap_.get(), offloads_wanted_, options_.tap_name);
    if (!set.ok()) queues_.Warn(set.message());
    offloads_set_ = offloads_wanted_;
  }
  const bool tx_done = Transmit();
  const bool rx_done = !queues_.broken() && Receive();
  queues_.InterruptIfWanted({{kRxQueue, rx_done}, {kTxQueue, tx_done}});
}

bool TapNetDevice::Transmit() {
  Metrics& metrics = GlobalMetrics();
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  std::vector<iovec> iov;
  while (true) {
    VirtQueue::Pop popped = VirtQueue::Pop::kChain;
    if (tx_throttled_) {
      chain = std::move(*tx_throttled_);
      tx_throttled_.reset();
    } else {
      popped = tx().Next(chain, problem, ChainBuffers::kDriverWritten);
    }
    if (popped == VirtQueue::Pop::kEmpty) {
      if (tx().ArmNotification()) continue;
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken("transmit queue: " + problem);
      break;
    }
    if (popped == VirtQueue::Pop::kChain) {
      iov.clear();
      for (const Descriptor& d : chain.descriptors) iov.push_back({d.host, d.length});
      const size_t length = chain.length;
      if (popped == VirtQueue::Pop::kChain && (length < kMinFrame || length > kMaxFrame)) {
        problem = "a frame of " + std::to_string(length) + " bytes with its header (" +
                  std::to_string(kMinFrame) + " to " + std::to_string(kMaxFrame) + ")";
        popped = VirtQueue::Pop::kBadChain;
      }
      if (popped == VirtQueue::Pop::kChain) {
        if (std::chrono::nanoseconds wait = Throttle(tx_limiter_, length - kTapVnetHeaderBytes);
            wait.count() > 0) {
          metrics.net_tx_rate_limiter_throttled.Add();
          tx_throttled_ = std::move(chain);
          worker_.ServeAgainAfter(wait);
          break;
        }
        ssize_t n = writev(tap_.get(), iov.data(), static_cast<int>(iov.size()));
        if (n == static_cast<ssize_t>(length)) {
          metrics.net_tx_packets.Add();
          metrics.net_tx_bytes.Add(length - kTapVnetHeaderBytes);
        } else {
          // A full TAP queue or a frame the TAP refuses: dropped, as a
          // NIC drops what it cannot send.
          metrics.net_tx_dropped.Add();
        }
      }
    }
    if (popped == VirtQueue::Pop::kBadChain) {
      queues_.Warn("transmit: dropped " + problem);
      metrics.net_tx_malformed_frames.Add();
    }
    tx().Complete(chain.head, 0);
    completed = true;
  }
  return completed;
}

bool TapNetDevice::Receive() {
  Metrics& metrics = GlobalMetrics();
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  while (!queues_.broken()) {
    if (frame_length_ == 0) {
      ssize_t n = read(tap_.get(), frame_.data(), frame_.size());
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
          queues_.Warn(std::string("reading the TAP: ") + strerror(errno));
          worker_.MuteUntilKick(tap_.get());
        }
        break;
      }
      if (static_cast<size_t>(n) < kMinFrame) {
        metrics.net_rx_dropped.Add();
        continue;
      }
      frame_length_ = static_cast<size_t>(n);
    }
    // A frame pays its tokens once, however long it then waits for a buffer.
    std::chrono::nanoseconds wait{0};
    if (!frame_paid_) wait = Throttle(rx_limiter_, frame_length_ - kTapVnetHeaderBytes);
    frame_paid_ = wait.count() == 0;
    if (wait.count() > 0) {
      metrics.net_rx_rate_limiter_throttled.Add();
      worker_.MuteUntilKick(tap_.get());
      worker_.ServeAgainAfter(wait);
      break;
    }
    VirtQueue::Pop popped = rx().Next(chain, problem, ChainBuffers::kDeviceWritable);
    if (popped == VirtQueue::Pop::kEmpty && rx().ArmNotification()) continue;
    if (popped == VirtQueue::Pop::kEmpty) {
      // Backpressure: the frame waits here and the TAP keeps the rest.
      metrics.net_no_rx_avail_buffer.Add();
      worker_.MuteUntilKick(tap_.get());
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken("receive queue: " + problem);
      break;
    }
    const size_t capacity = chain.length;
    if (popped == VirtQueue::Pop::kBadChain) {
      queues_.Warn("receive: dropped a chain: " + problem);
      metrics.net_rx_malformed_buffers.Add();
      rx().Complete(chain.head, 0);
      completed = true;
      continue;
    }
    if (capacity < frame_length_) {
      // The driver's buffers are too small for this frame (it did not take
      // the offload that makes it): dropped, the buffer kept.
      queues_.Warn("receive: a " + std::to_string(frame_length_) + "-byte frame does not fit a " +
                   std::to_string(capacity) + "-byte buffer; dropped");
      metrics.net_rx_dropped.Add();
      rx().GoBack();
      frame_length_ = 0;
      frame_paid_ = false;
      continue;
    }
    // One buffer per frame: num_buffers is 1.
    const uint16_t one = 1;
    std::memcpy(frame_.data() + kNumBuffersOffset, &one, sizeof(one));
    size_t copied = 0;
    for (const Descriptor& d : chain.descriptors) {
      const size_t n = std::min<size_t>(d.length, frame_length_ - copied);
      std::memcpy(d.host, frame_.data() + copied, n);
      copied += n;
      if (copied == frame_length_) break;
    }
    metrics.net_rx_packets.Add();
    metrics.net_rx_bytes.Add(frame_length_ - kTapVnetHeaderBytes);
    rx().Complete(chain.head, static_cast<uint32_t>(frame_length_));
    frame_length_ = 0;
    frame_paid_ = false;
    completed = true;
  }
  return completed;
}

}  // namespace ember
