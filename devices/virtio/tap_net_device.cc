#include "devices/virtio/tap_net_device.h"

#include <linux/if_tun.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/metrics.h"
#include "devices/mmds/mmds_http.h"
#include "devices/mmds/net_headers.h"
#include "devices/tap.h"

namespace ember {
namespace {

constexpr uint16_t kRxQueue = 0;
constexpr uint16_t kTxQueue = 1;
constexpr uint16_t kLinkUp = 1;
constexpr size_t kMinFrame = kTapVnetHeaderBytes + 14;  // a header and an Ethernet header
constexpr size_t kNumBuffersOffset = 10;                // in struct virtio_net_hdr_v1
constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM, in the header's flags (byte 0)
// Whether a frame is for MMDS shows in its header, Ethernet header and
// first 28 bytes of payload (an ARP target, an IPv4 destination).
constexpr size_t kMmdsPeekBytes =
    kTapVnetHeaderBytes + net::kEthernetHeaderBytes + net::kArpIpv4Bytes;
// The shortest wait for the MMDS stack's timer: a deadline that is due yet
// offers no frame must not spin the worker.
constexpr std::chrono::milliseconds kMinMmdsWait{1};

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

// Copies the chain's first out.size() bytes (it has at least as many).
void CopyFromChain(const DescriptorChain& chain, std::span<uint8_t> out) {
  size_t copied = 0;
  for (const Descriptor& d : chain.descriptors) {
    if (copied == out.size()) break;
    const size_t n = std::min<size_t>(d.length, out.size() - copied);
    std::memcpy(out.data() + copied, d.host, n);
    copied += n;
  }
}

// MmdsStack::HandleGuestFrame's own test of whether a frame is the
// stack's: an ARP frame about its address or an IPv4 packet to it. `start`
// is the frame's first bytes, at least 42 of them or all of it, which
// decide the same as the whole frame would.
bool ForMmds(std::span<const uint8_t> start, uint32_t ip) {
  const std::optional<net::EthernetFrame> ethernet = net::ParseEthernet(start);
  if (!ethernet) return false;
  if (ethernet->ethertype == net::kEtherTypeArp) {
    return net::PeekArpTargetIp(ethernet->payload) == ip;
  }
  if (ethernet->ethertype == net::kEtherTypeIpv4) {
    return net::PeekIpv4Destination(ethernet->payload) == ip;
  }
  return false;
}

}  // namespace

Result<std::shared_ptr<TapNetDevice>> TapNetDevice::Create(TapNetOptions options, UniqueFd tap) {
  std::string name = "net device " + options.iface_id;
  std::unique_ptr<MmdsStack> mmds;
  if (options.mmds) {
    const std::array<uint8_t, 4> ip = options.mmds->settings().ipv4_address;
    // One HTTP server per connection: it keeps no state, only the store.
    mmds = std::make_unique<MmdsStack>(net::Ipv4Address(ip[0], ip[1], ip[2], ip[3]),
                                       [store = options.mmds]() -> std::unique_ptr<MmdsResponder> {
                                         return std::make_unique<MmdsHttpServer>(store);
                                       });
  }
  std::shared_ptr<TapNetDevice> device(
      new TapNetDevice(std::move(options), std::move(tap), std::move(name), std::move(mmds)));
  device->frame_.resize(kMaxFrame);
  if (device->mmds_) device->mmds_frame_.resize(kMaxFrame);
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
  rx_starved_ = false;
  // The MMDS stack stays: its connections time out or reset by themselves.
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

void TapNetDevice::ServeAgainWithin(std::chrono::nanoseconds delay) {
  if (!serve_again_ || delay < *serve_again_) serve_again_ = delay;
}

void TapNetDevice::Serve() {
  if (!queues_.active() || queues_.broken()) return;
  if (offloads_set_ != offloads_wanted_) {
    // Here, not in Activate: the ioctl belongs to the device's filter.
    Status set = SetTapOffloads(tap_.get(), offloads_wanted_, options_.tap_name);
    if (!set.ok()) queues_.Warn(set.message());
    offloads_set_ = offloads_wanted_;
  }
  serve_again_.reset();
  // Transmit first: what the guest sent MMDS is answered by Receive below.
  const bool tx_done = Transmit();
  const bool rx_done = !queues_.broken() && Receive();
  // The MMDS stack's retransmissions, unless the receive queue is empty
  // or a frame waits for tokens (the kick, or the limiter's timer, serves them).
  if (mmds_ && !rx_starved_ && frame_length_ == 0) {
    if (const std::optional<MmdsStack::Clock::time_point> due = mmds_->NextTimeout()) {
      ServeAgainWithin(
          std::max<std::chrono::nanoseconds>(*due - MmdsStack::Clock::now(), kMinMmdsWait));
    }
  }
  if (serve_again_) worker_.ServeAgainAfter(*serve_again_);
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
          ServeAgainWithin(wait);
          break;
        }
        if (!SendToMmds(chain, length)) WriteToTap(iov, length);
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

void TapNetDevice::WriteToTap(const std::vector<iovec>& iov, size_t length) {
  Metrics& metrics = GlobalMetrics();
  ssize_t n = writev(tap_.get(), iov.data(), static_cast<int>(iov.size()));
  if (n == static_cast<ssize_t>(length)) {
    metrics.net_tx_packets.Add();
    metrics.net_tx_bytes.Add(length - kTapVnetHeaderBytes);
  } else {
    // A full TAP queue or a frame the TAP refuses: dropped, as a NIC drops
    // what it cannot send.
    metrics.net_tx_dropped.Add();
  }
}

bool TapNetDevice::SendToMmds(const DescriptorChain& chain, size_t length) {
  if (!mmds_) return false;
  // The first bytes decide; only MMDS's frames are copied whole, the rest
  // go from guest memory to the TAP as before.
  std::array<uint8_t, kMmdsPeekBytes> start;
  const size_t peeked = std::min(length, start.size());
  CopyFromChain(chain, {start.data(), peeked});
  if (!ForMmds(std::span<const uint8_t>(start).subspan(kTapVnetHeaderBytes,
                                                       peeked - kTapVnetHeaderBytes),
               mmds_->ipv4_address())) {
    return false;
  }
  // The stack parses a copy: the guest may rewrite its buffers meanwhile.
  CopyFromChain(chain, {mmds_frame_.data(), length});
  const std::span<const uint8_t> frame(mmds_frame_.data() + kTapVnetHeaderBytes,
                                       length - kTapVnetHeaderBytes);
  const bool partial = (mmds_frame_[0] & kNeedsCsum) != 0;
  if (!mmds_->HandleGuestFrame(frame, MmdsStack::Clock::now(), partial)) {
    // Not MMDS's after all (the guest changed it after the first look).
    WriteToTap({iovec{mmds_frame_.data(), length}}, length);
  }
  return true;
}

bool TapNetDevice::Receive() {
  Metrics& metrics = GlobalMetrics();
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  rx_starved_ = false;
  // A frame pays its tokens once, however long it then waits for a buffer.
  auto pay = [&] {
    if (frame_paid_) return true;
    const std::chrono::nanoseconds wait =
        Throttle(rx_limiter_, frame_length_ - kTapVnetHeaderBytes);
    frame_paid_ = wait.count() == 0;
    if (!frame_paid_) {
      metrics.net_rx_rate_limiter_throttled.Add();
      worker_.MuteUntilKick(tap_.get());
      ServeAgainWithin(wait);
    }
    return frame_paid_;
  };
  while (!queues_.broken()) {
    // MMDS before the TAP, as in Firecracker. The stack makes its frame
    // once there is a buffer to size it by: until then it waits there.
    const MmdsStack::Clock::time_point now = MmdsStack::Clock::now();
    const bool from_mmds = frame_length_ == 0 && mmds_ && mmds_->HasFrameForGuest(now);
    if (frame_length_ == 0 && !from_mmds) {
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
    if (!from_mmds && !pay()) break;
    VirtQueue::Pop popped = rx().Next(chain, problem, ChainBuffers::kDeviceWritable);
    if (popped == VirtQueue::Pop::kEmpty && rx().ArmNotification()) continue;
    if (popped == VirtQueue::Pop::kEmpty) {
      // Backpressure: the frame waits here (or in the stack) and the TAP
      // keeps the rest.
      metrics.net_no_rx_avail_buffer.Add();
      worker_.MuteUntilKick(tap_.get());
      rx_starved_ = true;
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
    if (from_mmds) {
      // Sized for this chain: what does not fit the stack drops (as lost
      // on the link) and sends again later.
      const size_t room = std::min(capacity, frame_.size());
      const std::span<uint8_t> out =
          room > kTapVnetHeaderBytes
              ? std::span<uint8_t>(frame_).subspan(kTapVnetHeaderBytes, room - kTapVnetHeaderBytes)
              : std::span<uint8_t>();
      const size_t n = mmds_->WriteNextFrame(out, now);
      if (n == 0) {
        rx().GoBack();
        continue;
      }
      std::fill_n(frame_.begin(), kTapVnetHeaderBytes, 0);  // no offloads
      frame_length_ = kTapVnetHeaderBytes + n;
      if (!pay()) {
        rx().GoBack();  // the frame waits in frame_ for its tokens
        break;
      }
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
