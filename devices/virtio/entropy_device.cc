#include "devices/virtio/entropy_device.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace ember {
namespace {

constexpr uint16_t kRequestQueue = 0;

}  // namespace

bool HostGetRandom(std::span<uint8_t> bytes) {
  // Flags 0: the urandom pool, which blocks only until the host's pool is
  // first initialised (early in the host's boot). A read may come back
  // short (a signal, or more than the kernel gives at once): go on.
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = getrandom(bytes.data() + done, bytes.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {  // no kernel does this; an endless loop would be worse
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

Result<std::shared_ptr<EntropyDevice>> EntropyDevice::Create(EntropyOptions options) {
  const uint16_t size = options.queue_size;
  if (size == 0 || (size & (size - 1)) != 0 || size > 32768) {
    return Status::Error("entropy: queue_size " + std::to_string(size) +
                         " is not a power of two from 1 to 32768");
  }
  if (!options.random) return Status::Error("entropy: no random source");
  std::shared_ptr<EntropyDevice> device(new EntropyDevice(std::move(options)));
  device->bytes_.resize(kMaxBytesPerRequest);
  EMBER_RETURN_IF_ERROR(device->worker_.Launch());
  return device;
}

uint64_t EntropyDevice::device_features() const {
  return kVirtioFeatureVersion1 | kVirtioFeatureRingEventIdx;
}

void EntropyDevice::ReadConfig(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

Status EntropyDevice::Activate(const Activation& activation) {
  Status activated = queues_.Activate(activation, {kRequestQueue});
  if (!activated.ok()) {
    GlobalMetrics().rng_activate_fails.Add();
    return activated;
  }
  throttled_until_.reset();
  worker_.Start({activation.kick_fds.begin(), activation.kick_fds.end()}, [this] { Serve(); });
  return Status::Ok();
}

void EntropyDevice::Reset() {
  worker_.Stop();
  queues_.Clear();
  // The limiter keeps its buckets: a reset does not buy a driver tokens.
  throttled_until_.reset();
}

void EntropyDevice::Serve() {
  if (!queues_.active() || queues_.broken()) return;
  if (throttled_until_) {
    GlobalMetrics().rng_rate_limiter_events.Add();
    // A kick while the first request waits: the timer is still armed and
    // the limiter would say no again.
    if (std::chrono::steady_clock::now() < *throttled_until_) return;
    throttled_until_.reset();
  }
  const bool completed = ServeRequests();
  queues_.InterruptIfWanted({{kRequestQueue, completed}});
}

bool EntropyDevice::ServeRequests() {
  Metrics& metrics = GlobalMetrics();
  VirtQueue& queue = queues_[0];
  bool completed = false;
  DescriptorChain chain;
  std::string problem;
  while (true) {
    const VirtQueue::Pop popped = queue.Next(chain, problem, ChainBuffers::kDeviceWritable);
    if (popped == VirtQueue::Pop::kEmpty) {
      if (queue.ArmNotification()) continue;
      break;
    }
    if (popped == VirtQueue::Pop::kBrokenRing) {
      queues_.Broken("request queue: " + problem);
      break;
    }
    if (popped == VirtQueue::Pop::kBadChain) {
      // A buffer the device may not write, outside RAM, a loop: nothing is
      // written, the driver gets its chain back.
      metrics.rng_event_count.Add();
      metrics.rng_event_fails.Add();
      queues_.Warn("returned a request with no bytes: " + problem);
      queue.Complete(chain.head, 0);
      completed = true;
      continue;
    }
    const size_t length = std::min(chain.length, kMaxBytesPerRequest);
    if (limiter_.limits()) {
      const auto now = std::chrono::steady_clock::now();
      const auto wait = limiter_.TryTake(length, now);
      if (wait > std::chrono::steady_clock::duration::zero()) {
        // The request stays first in the ring until the buckets refill.
        metrics.rng_rate_limiter_throttled.Add();
        queue.GoBack();
        throttled_until_ = now + wait;
        worker_.ServeAgainAfter(wait);
        break;
      }
    }
    metrics.rng_event_count.Add();
    const uint32_t written = Fill(chain, length);
    metrics.rng_bytes.Add(written);
    queue.Complete(chain.head, written);
    completed = true;
  }
  return completed;
}

uint32_t EntropyDevice::Fill(const DescriptorChain& chain, size_t length) {
  if (length == 0) return 0;  // an empty request is answered, emptily
  std::span<uint8_t> bytes(bytes_.data(), length);
  // All or nothing: the guest sees bytes only once all of them were got.
  if (!options_.random(bytes)) {
    Metrics& metrics = GlobalMetrics();
    metrics.rng_host_fails.Add();
    metrics.rng_event_fails.Add();
    queues_.Warn(std::string("getrandom: ") + std::strerror(errno) +
                 "; returned a request with no bytes");
    return 0;
  }
  size_t copied = 0;
  for (const Descriptor& d : chain.descriptors) {
    const size_t n = std::min<size_t>(d.length, length - copied);
    if (n == 0) continue;  // an empty descriptor (its address may be anything)
    std::memcpy(d.host, bytes.data() + copied, n);
    copied += n;
    if (copied == length) break;
  }
  return static_cast<uint32_t>(copied);
}

}  // namespace ember
