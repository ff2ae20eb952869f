#include "devices/virtio/mmio_transport.h"

#include <gtest/gtest.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"

namespace ember {
namespace {

class FakeDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return 26; }
  uint16_t queue_count() const override { return 2; }
  uint16_t max_queue_size() const override { return 256; }
  uint64_t device_features() const override { return kVirtioFeatureVersion1 | 1; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0x40 + offset + i);
  }
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}
  Status Activate(const Activation& activation) override {
    ++activations;
    acked = activation.acked_features;
    queues.assign(activation.queues.begin(), activation.queues.end());
    interrupt_fd = activation.interrupt_fd;
    needs_reset = activation.needs_reset;
    return fail_activation ? Status::Error("backend gone") : Status::Ok();
  }
  void Reset() override { ++resets; }

  int activations = 0, resets = 0, interrupt_fd = -1;
  bool fail_activation = false;
  uint64_t acked = 0;
  std::vector<VirtQueueState> queues;
  std::function<void()> needs_reset;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
    ASSERT_TRUE(memory.ok());
    memory_ = std::make_unique<GuestMemory>(std::move(*memory));
    device_ = std::make_shared<FakeDevice>();
    std::vector<UniqueFd> kicks;
    for (int i = 0; i < 2; ++i) {
      kicks.emplace_back(eventfd(0, EFD_NONBLOCK));
      kick_fds_[i] = kicks.back().get();
    }
    UniqueFd interrupt(eventfd(0, EFD_NONBLOCK));
    interrupt_fd_ = interrupt.get();
    transport_ = std::make_unique<VirtioMmioTransport>("test device", device_, *memory_,
                                                       std::move(kicks), std::move(interrupt));
  }
  uint32_t Get(uint64_t offset) {
    uint32_t value = 0;
    transport_->Read(offset, {reinterpret_cast<uint8_t*>(&value), 4});
    return value;
  }
  void Set(uint64_t offset, uint32_t value) {
    transport_->Write(offset, {reinterpret_cast<const uint8_t*>(&value), 4});
  }
  void Negotiate(uint64_t features) {
    Set(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    Set(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    Set(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    Set(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    Set(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
    Set(VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  }
  bool SetUpQueue(uint32_t index, uint32_t size, uint64_t base) {
    Set(VIRTIO_MMIO_QUEUE_SEL, index);
    Set(VIRTIO_MMIO_QUEUE_NUM, size);
    Set(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(base));
    Set(VIRTIO_MMIO_QUEUE_DESC_HIGH, static_cast<uint32_t>(base >> 32));
    Set(VIRTIO_MMIO_QUEUE_AVAIL_LOW, static_cast<uint32_t>(base + 0x1000));
    Set(VIRTIO_MMIO_QUEUE_USED_LOW, static_cast<uint32_t>(base + 0x2000));
    Set(VIRTIO_MMIO_QUEUE_READY, 1);
    return Get(VIRTIO_MMIO_QUEUE_READY) == 1;
  }
  static constexpr uint32_t kRunning = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                       VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;

  std::unique_ptr<GuestMemory> memory_;
  std::shared_ptr<FakeDevice> device_;
  std::unique_ptr<VirtioMmioTransport> transport_;
  int kick_fds_[2];
  int interrupt_fd_;
};

TEST_F(MmioTransportTest, IdentifiesAsModernVirtioMmio) {
  EXPECT_EQ(Get(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
  EXPECT_EQ(Get(VIRTIO_MMIO_VERSION), 2u);
  EXPECT_EQ(Get(VIRTIO_MMIO_DEVICE_ID), 26u);
  Set(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  EXPECT_EQ(Get(VIRTIO_MMIO_DEVICE_FEATURES), 1u);
  Set(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  EXPECT_EQ(Get(VIRTIO_MMIO_DEVICE_FEATURES), 1u) << "VERSION_1 is bit 32";
  Set(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(Get(VIRTIO_MMIO_QUEUE_NUM_MAX), 256u);
  Set(VIRTIO_MMIO_QUEUE_SEL, 2);
  EXPECT_EQ(Get(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u) << "no third queue";
  uint8_t config[4];
  transport_->Read(VIRTIO_MMIO_CONFIG + 2, config);
  EXPECT_EQ(config[0], 0x42);
}

TEST_F(MmioTransportTest, RefusesFeaturesTheDeviceDidNotOffer) {
  Negotiate(kVirtioFeatureVersion1 | (1ull << 5));
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
  Set(VIRTIO_MMIO_STATUS, 0);
  Negotiate(1);  // legacy driver: no VERSION_1
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
  Set(VIRTIO_MMIO_STATUS, 0);
  Negotiate(kVirtioFeatureVersion1);
  EXPECT_NE(Get(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
}

TEST_F(MmioTransportTest, RefusesBadQueues) {
  Negotiate(kVirtioFeatureVersion1);
  EXPECT_FALSE(SetUpQueue(0, 100, 0x100000)) << "not a power of two";
  EXPECT_FALSE(SetUpQueue(0, 512, 0x100000)) << "above QueueNumMax";
  EXPECT_FALSE(SetUpQueue(0, 0, 0x100000)) << "empty";
  EXPECT_FALSE(SetUpQueue(0, 64, 0x100008)) << "misaligned descriptor table";
  EXPECT_FALSE(SetUpQueue(0, 64, 16 * layout::kMiB - 0x1000)) << "outside guest memory";
  EXPECT_FALSE(SetUpQueue(0, 64, layout::kMmioHoleStart)) << "in the MMIO hole";
  EXPECT_TRUE(SetUpQueue(0, 64, 0x100000));
}

TEST_F(MmioTransportTest, ActivatesOnDriverOkWithQueuesAndFeatures) {
  Negotiate(kVirtioFeatureVersion1 | 1);
  ASSERT_TRUE(SetUpQueue(0, 64, 0x100000));
  ASSERT_TRUE(SetUpQueue(1, 128, 0x200000));
  Set(VIRTIO_MMIO_STATUS, kRunning);
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS), kRunning);
  ASSERT_EQ(device_->activations, 1);
  EXPECT_EQ(device_->acked, kVirtioFeatureVersion1 | 1);
  ASSERT_EQ(device_->queues.size(), 2u);
  EXPECT_EQ(device_->queues[1].size, 128);
  EXPECT_EQ(device_->queues[1].descriptor_address, 0x200000u);
  EXPECT_EQ(device_->queues[1].available_address, 0x201000u);
  EXPECT_EQ(device_->queues[1].used_address, 0x202000u);
  EXPECT_EQ(device_->interrupt_fd, interrupt_fd_);
  EXPECT_EQ(Get(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_INT_VRING);
  // Changes after DRIVER_OK are ignored.
  Set(VIRTIO_MMIO_QUEUE_SEL, 0);
  Set(VIRTIO_MMIO_QUEUE_NUM, 8);
  EXPECT_EQ(device_->queues[0].size, 64);
  // A notify that reaches the transport is forwarded to the queue's kick fd.
  Set(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
  uint64_t kicks = 0;
  EXPECT_EQ(read(kick_fds_[1], &kicks, 8), 8);
  EXPECT_EQ(kicks, 1u);
  // Reset stops the device and clears the registers.
  Set(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(device_->resets, 1);
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS), 0u);
  Set(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(Get(VIRTIO_MMIO_QUEUE_READY), 0u);
}

TEST_F(MmioTransportTest, FailedActivationAsksForReset) {
  device_->fail_activation = true;
  Negotiate(kVirtioFeatureVersion1);
  ASSERT_TRUE(SetUpQueue(0, 64, 0x100000));
  Set(VIRTIO_MMIO_STATUS, kRunning);
  EXPECT_NE(Get(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0u);
  // The failed activation may have started some rings: the driver's reset
  // reaches the device to stop them, though it never became active.
  Set(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(device_->resets, 1);
  // A reset with no activation since the last one asks nothing of it.
  Set(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(device_->resets, 1);
}

// QueueNum is a 32-bit register: 0x10010 is refused, not cut to 16.
TEST_F(MmioTransportTest, QueueSizesBeyond16BitsAreRefusedNotTruncated) {
  Negotiate(kVirtioFeatureVersion1);
  EXPECT_FALSE(SetUpQueue(0, 0x10010, 0x100000));
  EXPECT_FALSE(SetUpQueue(1, 0x10000, 0x100000));
  ASSERT_TRUE(SetUpQueue(0, 16, 0x100000));
  Set(VIRTIO_MMIO_STATUS, kRunning);
  ASSERT_EQ(device_->activations, 1);
  EXPECT_EQ(device_->queues[0].size, 16);
}

// A device that finds the driver's rings broken (from its own thread)
// sets DEVICE_NEEDS_RESET with a config interrupt; a config change bumps
// the generation and raises the config interrupt until the driver acks it.
TEST_F(MmioTransportTest, DeviceCanAskForResetAndAnnounceConfigChanges) {
  Negotiate(kVirtioFeatureVersion1);
  ASSERT_TRUE(SetUpQueue(0, 64, 0x100000));
  Set(VIRTIO_MMIO_STATUS, kRunning);
  ASSERT_TRUE(device_->needs_reset);
  const uint32_t generation = Get(VIRTIO_MMIO_CONFIG_GENERATION);
  transport_->NotifyConfigChange();
  EXPECT_EQ(Get(VIRTIO_MMIO_CONFIG_GENERATION), generation + 1);
  EXPECT_EQ(Get(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
  uint64_t raised = 0;
  EXPECT_EQ(read(interrupt_fd_, &raised, 8), 8);
  Set(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
  EXPECT_EQ(Get(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
  std::thread([&] { device_->needs_reset(); }).join();
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS), kRunning | VIRTIO_CONFIG_S_NEEDS_RESET);
  EXPECT_NE(Get(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, 0u);
  Set(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_EQ(Get(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
}

TEST_F(MmioTransportTest, DriverOkWithoutFeaturesOkIsIgnored) {
  Set(VIRTIO_MMIO_STATUS,
      VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK, 0u);
  EXPECT_EQ(device_->activations, 0);
}

TEST_F(MmioTransportTest, IgnoresRegisterAccessesOfTheWrongWidth) {
  uint16_t narrow = 0x7;
  transport_->Write(VIRTIO_MMIO_STATUS, {reinterpret_cast<uint8_t*>(&narrow), 2});
  EXPECT_EQ(Get(VIRTIO_MMIO_STATUS), 0u);
  uint8_t byte = 0xaa;
  transport_->Read(VIRTIO_MMIO_MAGIC_VALUE, {&byte, 1});
  EXPECT_EQ(byte, 0);
  transport_->Read(VIRTIO_MMIO_MAGIC_VALUE + 2, {reinterpret_cast<uint8_t*>(&narrow), 2});
  EXPECT_EQ(narrow, 0);
}

}  // namespace
}  // namespace ember
