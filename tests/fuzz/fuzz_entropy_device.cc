// Fuzz target: a hostile virtio-rng driver. Input: byte 0 the queue size,
// byte 1 bit 0 EVENT_IDX acked and bit 1 a rate-limited device (a small
// bandwidth bucket, so requests are throttled and resumed by its timer),
// bytes 2-3 how many of the following bytes are guest memory (the request
// queue's rings at 0/0x1000/0x2000, buffers anywhere in the first 64 KiB,
// descriptors may point anywhere). The device serves one kick.
#include <algorithm>
#include <cstdlib>

#include "devices/virtio/entropy_device.h"
#include "tests/fuzz/fuzz_queues.h"

namespace ember {
namespace {

struct Rig {
  FuzzQueues queues;
  std::shared_ptr<EntropyDevice> plain;
  std::shared_ptr<EntropyDevice> limited;
};

std::shared_ptr<EntropyDevice> MakeDevice(const RateLimiterConfig& limiter) {
  EntropyOptions options;
  options.rate_limiter = limiter;
  Result<std::shared_ptr<EntropyDevice>> device = EntropyDevice::Create(std::move(options));
  if (!device.ok()) std::abort();
  return *device;
}

Rig* MakeRig() {
  auto* rig = new Rig{FuzzQueues::Create(1), {}, {}};
  rig->plain = MakeDevice({});
  RateLimiterConfig limiter;
  limiter.bandwidth = TokenBucketConfig{4096, 0, 1};  // 4 KiB per millisecond
  limiter.ops = TokenBucketConfig{64, 0, 1};
  rig->limited = MakeDevice(limiter);
  return rig;
}

}  // namespace
}  // namespace ember

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static Rig* rig = MakeRig();
  if (size < 4) return 0;
  const uint16_t queue_size = static_cast<uint16_t>(1u << (data[0] % 9));
  const uint64_t features =
      kVirtioFeatureVersion1 | ((data[1] & 1) != 0 ? kVirtioFeatureRingEventIdx : 0);
  EntropyDevice& device = (data[1] & 2) != 0 ? *rig->limited : *rig->plain;
  const size_t memory_bytes = std::min<size_t>(data[2] | data[3] << 8, size - 4);
  rig->queues.LoadWindow(data + 4, memory_bytes);
  if (!rig->queues.SetUpQueues(queue_size)) return 0;
  if (!device.Activate(rig->queues.MakeActivation(features)).ok()) return 0;
  rig->queues.KickAll();
  device.Sync();
  device.Reset();
  return 0;
}
