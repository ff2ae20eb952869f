// Boots Debian's cloud kernel with the initramfs from scripts/linux-guest.sh
// through the ember binary: init is reached, every vCPU and the memory are
// seen, and the guest's reboot ends ember cleanly. Needs a hardware-backed
// KVM (kvm_intel or kvm_amd); PVM cannot boot Linux (see README.md).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "tests/test_util.h"

namespace ember {
namespace {

constexpr int kTimeoutMs = 120000;

bool HardwareKvm() {
  return access("/sys/module/kvm_intel", F_OK) == 0 || access("/sys/module/kvm_amd", F_OK) == 0;
}

class LinuxBootKvmTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is absent";
    if (!HardwareKvm()) {
      GTEST_SKIP() << "KVM here is not hardware-backed (PVM cannot boot Linux); "
                      "these Linux tests run here once the nested harness lands";
    }
    kernel_ = testing::LinuxGuestDir() + "/vmlinuz";
    initrd_ = testing::LinuxGuestDir() + "/initramfs.cpio.gz";
    struct stat info {};
    ASSERT_EQ(stat(kernel_.c_str(), &info), 0) << "run scripts/linux-guest.sh first";
    ASSERT_EQ(stat(initrd_.c_str(), &info), 0) << "run scripts/linux-guest.sh first";
  }
  std::string kernel_, initrd_;
  testing::TempDir dir_;
};

TEST_P(LinuxBootKvmTest, ReachesInitSeesVcpusAndMemoryAndRebootsCleanly) {
  const uint32_t vcpus = GetParam();
  const uint32_t mem_mib = 512;
  testing::WriteFile(
      dir_.File("vm.json"),
      R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"(", "initrd_path": ")" + initrd_ +
          R"(", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off"},
                         "machine-config": {"vcpu_count": )" +
          std::to_string(vcpus) + R"(, "mem_size_mib": )" + std::to_string(mem_mib) + "}}");
  testing::ProcessResult result = testing::RunProcess(
      {EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, kTimeoutMs);
  ASSERT_FALSE(result.timed_out) << result.out;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("EMBER-LINUX: init reached"), std::string::npos) << result.out;
  EXPECT_TRUE(std::regex_search(
      result.out, std::regex("EMBER-LINUX: nproc=" + std::to_string(vcpus) + "\r?\n")))
      << result.out;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result.out, match, std::regex("memtotal_kib=([0-9]+)")))
      << result.out;
  uint64_t memtotal_kib = std::stoull(match[1]);
  EXPECT_LE(memtotal_kib, mem_mib * 1024u);
  EXPECT_GE(memtotal_kib, mem_mib * 1024u * 8 / 10) << "the kernel keeps under 20% for itself";
  EXPECT_NE(result.out.find("EMBER-LINUX: rebooting"), std::string::npos) << result.out;
}

INSTANTIATE_TEST_SUITE_P(Vcpus, LinuxBootKvmTest, ::testing::Values(1u, 2u),
                         [](const auto& info) { return std::to_string(info.param) + "vcpu"; });

}  // namespace
}  // namespace ember
