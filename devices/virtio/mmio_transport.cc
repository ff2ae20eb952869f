#include "devices/virtio/mmio_transport.h"

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "base/hex.h"

namespace ember {
namespace {

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVendorId = 0x52424d45;  // "EMBR"

// Interrupts come straight from the backend through the irqfd, so ember
// never sees them: the used-ring bit stays set once the device runs, and
// the driver checks its queues on every interrupt (which Linux does anyway).
constexpr uint32_t kInterruptVring = VIRTIO_MMIO_INT_VRING;

}  // namespace

VirtioMmioTransport::VirtioMmioTransport(std::string name, std::shared_ptr<VirtioDevice> device,
                                         const GuestMemory& memory, std::vector<UniqueFd> kick_fds,
                                         UniqueFd interrupt_fd)
    : name_(std::move(name)),
      device_(std::move(device)),
      memory_(memory),
      kick_fds_(std::move(kick_fds)),
      interrupt_fd_(std::move(interrupt_fd)),
      queues_(device_->queue_count()) {}

uint32_t VirtioMmioTransport::status() {
  std::lock_guard lock(mutex_);
  return status_ | (needs_reset_ ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
}

void VirtioMmioTransport::NotifyConfigChange() {
  {
    std::lock_guard lock(mutex_);
    ++config_generation_;
  }
  config_interrupt_ = true;
  uint64_t one = 1;
  (void)!::write(interrupt_fd_.get(), &one, sizeof(one));
}

void VirtioMmioTransport::Warn(const std::string& message) {
  EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN, "{}: {}", name_, message);
}

void VirtioMmioTransport::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset >= VIRTIO_MMIO_CONFIG) {
    device_->ReadConfig(offset - VIRTIO_MMIO_CONFIG, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    Warn("register read at " + Hex(offset) + " of width " + std::to_string(data.size()) +
         " (registers are 32-bit)");
    std::memset(data.data(), 0, data.size());
    return;
  }
  uint32_t value = ReadRegister(offset);
  std::memcpy(data.data(), &value, 4);
}

void VirtioMmioTransport::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset >= VIRTIO_MMIO_CONFIG) {
    device_->WriteConfig(offset - VIRTIO_MMIO_CONFIG, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    Warn("register write at " + Hex(offset) + " of width " + std::to_string(data.size()) +
         " ignored (registers are 32-bit)");
    return;
  }
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  WriteRegister(offset, value);
}

VirtQueueState* VirtioMmioTransport::SelectedQueue() {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

uint32_t VirtioMmioTransport::ReadRegister(uint64_t offset) {
  VirtQueueState* queue = SelectedQueue();
  switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
      return kMagic;
    case VIRTIO_MMIO_VERSION:
      return kVersion;
    case VIRTIO_MMIO_DEVICE_ID:
      return device_->device_type();
    case VIRTIO_MMIO_VENDOR_ID:
      return kVendorId;
    case VIRTIO_MMIO_DEVICE_FEATURES:
      if (device_features_select_ > 1) return 0;
      return static_cast<uint32_t>(device_->device_features() >> (32 * device_features_select_));
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
      return queue ? device_->max_queue_size() : 0;
    case VIRTIO_MMIO_QUEUE_READY:
      return queue && queue->ready ? 1 : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
      return interrupt_status_ | (config_interrupt_ ? VIRTIO_MMIO_INT_CONFIG : 0);
    case VIRTIO_MMIO_STATUS:
      return status_ | (needs_reset_ ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
      return queue ? static_cast<uint32_t>(queue->descriptor_address) : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      return queue ? static_cast<uint32_t>(queue->descriptor_address >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      return queue ? static_cast<uint32_t>(queue->available_address) : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
      return queue ? static_cast<uint32_t>(queue->available_address >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
      return queue ? static_cast<uint32_t>(queue->used_address) : 0;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
      return queue ? static_cast<uint32_t>(queue->used_address >> 32) : 0;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
      return 0xffffffff;  // no shared memory regions
    case VIRTIO_MMIO_CONFIG_GENERATION:
      return config_generation_;
    default:
      return 0;
  }
}

void VirtioMmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  if (offset == VIRTIO_MMIO_STATUS) {
    WriteStatus(value);
    return;
  }
  if (offset == VIRTIO_MMIO_INTERRUPT_ACK) {
    interrupt_status_ &= ~value;
    if (value & VIRTIO_MMIO_INT_CONFIG) config_interrupt_ = false;
    if (activated_) interrupt_status_ |= kInterruptVring;
    return;
  }
  if (offset == VIRTIO_MMIO_QUEUE_NOTIFY) {
    // Kicks normally go to the ioeventfd; one that reaches ember (e.g.
    // before KVM has the ioeventfd) is passed on by hand.
    if (value < kick_fds_.size()) {
      uint64_t one = 1;
      (void)!::write(kick_fds_[value].get(), &one, sizeof(one));
    }
    return;
  }
  // Selectors only choose what later reads see: allowed at any time.
  if (offset == VIRTIO_MMIO_DEVICE_FEATURES_SEL) {
    device_features_select_ = value;
    return;
  }
  if (offset == VIRTIO_MMIO_QUEUE_SEL) {
    queue_select_ = value;
    return;
  }
  // Everything else configures the device, which the spec allows only
  // before DRIVER_OK.
  if (status_ & VIRTIO_CONFIG_S_DRIVER_OK) {
    Warn("register " + Hex(offset) + " written after DRIVER_OK: ignored");
    return;
  }
  VirtQueueState* queue = SelectedQueue();
  switch (offset) {
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
      driver_features_select_ = value;
      return;
    case VIRTIO_MMIO_DRIVER_FEATURES:
      if (status_ & VIRTIO_CONFIG_S_FEATURES_OK) {
        Warn("driver features written after FEATURES_OK: ignored");
      } else if (driver_features_select_ <= 1) {
        uint64_t shift = 32 * driver_features_select_;
        driver_features_ =
            (driver_features_ & ~(0xffffffffull << shift)) | (uint64_t{value} << shift);
      }
      return;
    default:
      break;
  }
  if (queue == nullptr) {
    Warn("queue register " + Hex(offset) + " written for missing queue " +
         std::to_string(queue_select_));
    return;
  }
  if (queue->ready && offset != VIRTIO_MMIO_QUEUE_READY) {
    Warn("queue " + std::to_string(queue_select_) + " changed while ready: ignored");
    return;
  }
  auto set_low = [](uint64_t& field, uint32_t v) { field = (field & ~0xffffffffull) | v; };
  auto set_high = [](uint64_t& field, uint32_t v) {
    field = (field & 0xffffffffull) | (uint64_t{v} << 32);
  };
  switch (offset) {
    case VIRTIO_MMIO_QUEUE_NUM:
      // Not cut to 16 bits: 0x10010 is no queue of 16.
      if (value > 0xffff) {
        Warn("queue " + std::to_string(queue_select_) + " size " + std::to_string(value) +
             " is larger than 65535: ignored");
        return;
      }
      queue->size = static_cast<uint16_t>(value);
      return;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
      set_low(queue->descriptor_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      set_high(queue->descriptor_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      set_low(queue->available_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
      set_high(queue->available_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
      set_low(queue->used_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
      set_high(queue->used_address, value);
      return;
    case VIRTIO_MMIO_QUEUE_READY:
      if (value == 0) {
        queue->ready = false;
      } else if (Status valid = ValidateQueue(memory_, static_cast<uint16_t>(queue_select_), *queue,
                                              device_->max_queue_size());
                 !valid.ok()) {
        Warn(valid.message() + ": queue not made ready");
      } else {
        queue->ready = true;
      }
      return;
    default:
      Warn("write to unknown register " + Hex(offset) + " ignored");
      return;
  }
}

void VirtioMmioTransport::ResetLocked() {
  // Also after a failed activation: it may have started some rings (in a
  // backend, on a worker) before it failed.
  if (activated_ || activation_tried_) device_->Reset();
  activated_ = false;
  activation_tried_ = false;
  status_ = 0;
  driver_features_ = 0;
  device_features_select_ = driver_features_select_ = queue_select_ = 0;
  interrupt_status_ = 0;
  needs_reset_ = false;
  config_interrupt_ = false;
  for (VirtQueueState& queue : queues_) queue = VirtQueueState{};
}

void VirtioMmioTransport::WriteStatus(uint32_t value) {
  if (value == 0) {
    ResetLocked();
    return;
  }
  const uint32_t added = value & ~status_;
  if ((status_ & ~value) != 0) {
    Warn("status bits cleared without a reset: ignored");
    return;
  }
  if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
    const uint64_t offered = device_->device_features();
    if ((driver_features_ & ~offered) != 0 || !(driver_features_ & kVirtioFeatureVersion1)) {
      // Not accepting: FEATURES_OK stays clear, which the driver reads back.
      Warn("driver features " + Hex(driver_features_) + " are not a modern subset of " +
           Hex(offered));
      value &= ~VIRTIO_CONFIG_S_FEATURES_OK;
    }
  }
  if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !(value & VIRTIO_CONFIG_S_FEATURES_OK)) {
    Warn("DRIVER_OK without FEATURES_OK: ignored");
    value &= ~VIRTIO_CONFIG_S_DRIVER_OK;
  }
  status_ = value;
  if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && (value & VIRTIO_CONFIG_S_DRIVER_OK)) {
    std::vector<int> kicks;
    for (const UniqueFd& fd : kick_fds_) kicks.push_back(fd.get());
    auto needs_reset = [this] {
      needs_reset_ = true;
      config_interrupt_ = true;
      uint64_t one = 1;
      (void)!::write(interrupt_fd_.get(), &one, sizeof(one));
    };
    activation_tried_ = true;
    Status activated = device_->Activate(
        Activation{driver_features_, memory_, queues_, kicks, interrupt_fd_.get(), needs_reset});
    if (!activated.ok()) {
      EMBER_LOG_LIMITED(log_limit_, SPDLOG_ERROR, "{}: activation failed: {}", name_,
                        activated.message());
      status_ |= VIRTIO_CONFIG_S_NEEDS_RESET;
      return;
    }
    activated_ = true;
    interrupt_status_ |= kInterruptVring;
  }
}

}  // namespace ember
