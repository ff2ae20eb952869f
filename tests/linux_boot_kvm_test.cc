// Boots Debian's cloud kernel with the initramfs from scripts/linux-guest.sh
// through the ember binary, with 1 and 2 vCPUs: init is reached, every vCPU
// and the memory are seen, and the guest's reboot ends ember cleanly.
//
// Where KVM is hardware-backed (kvm_intel, kvm_amd) ember runs directly.
// Elsewhere (PVM cannot boot Linux, or no /dev/kvm) both boots run in one
// outer VM of scripts/nested-kvm.sh, whose kvm_amd is hardware-style. The
// test is never skipped for lack of hardware KVM.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <string>

#include "tests/test_util.h"

namespace ember {
namespace {

constexpr uint32_t kMemMib = 512;
constexpr int kDirectTimeoutMs = 120000;
constexpr int kNestedTimeoutMs = 500000;

bool HardwareKvm() {
  return access("/dev/kvm", R_OK | W_OK) == 0 &&
         (access("/sys/module/kvm_intel", F_OK) == 0 || access("/sys/module/kvm_amd", F_OK) == 0);
}

struct BootOutcome {
  int exit_code = -1;
  std::string console;
  std::string log;
};

void WriteConfig(const std::string& path, uint32_t vcpus) {
  const std::string linux_dir = testing::LinuxGuestDir();
  testing::WriteFile(
      path, R"({"boot-source": {"kernel_image_path": ")" + linux_dir +
                R"(/vmlinuz", "initrd_path": ")" + linux_dir +
                R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off"},
                          "machine-config": {"vcpu_count": )" +
                std::to_string(vcpus) + R"(, "mem_size_mib": )" + std::to_string(kMemMib) + "}}");
}

// Boots with each vCPU count; on hardware KVM directly, else nested.
std::map<uint32_t, BootOutcome> BootLinux(const std::vector<uint32_t>& vcpu_counts) {
  std::map<uint32_t, BootOutcome> outcomes;
  testing::TempDir scratch;
  for (uint32_t vcpus : vcpu_counts)
    WriteConfig(scratch.File("vm-" + std::to_string(vcpus) + ".json"), vcpus);
  if (HardwareKvm()) {
    for (uint32_t vcpus : vcpu_counts) {
      testing::ProcessResult result =
          testing::RunProcess({EMBER_BINARY, "--no-api", "--config-file",
                               scratch.File("vm-" + std::to_string(vcpus) + ".json")},
                              kDirectTimeoutMs);
      outcomes[vcpus] = {result.exit_code, result.out, result.err};
    }
    return outcomes;
  }
  // One outer boot for all cases: each ember run leaves its console, log
  // and exit status in the shared scratch directory.
  std::string script = "set -u\n";
  for (uint32_t vcpus : vcpu_counts) {
    std::string n = std::to_string(vcpus);
    script += std::string(EMBER_BINARY) + " --no-api --config-file \"$NESTED_KVM_SCRATCH/vm-" + n +
              ".json\" > \"$NESTED_KVM_SCRATCH/out-" + n + "\" 2> \"$NESTED_KVM_SCRATCH/err-" + n +
              "\"; echo $? > \"$NESTED_KVM_SCRATCH/rc-" + n + "\"\n";
  }
  testing::WriteFile(scratch.File("run.sh"), script);
  testing::ProcessResult nested =
      testing::RunProcess({std::string(EMBER_SOURCE_DIR) + "/scripts/nested-kvm.sh", "--scratch",
                           scratch.path(), "--", "sh", scratch.File("run.sh")},
                          kNestedTimeoutMs);
  // The harness prints how long each stage took; keep it in the test log.
  std::printf("nested harness (exit %d): %s%s\n", nested.exit_code, nested.err.c_str(),
              nested.out.c_str());
  for (uint32_t vcpus : vcpu_counts) {
    std::string n = std::to_string(vcpus);
    std::string rc = testing::ReadFile(scratch.File("rc-" + n));
    outcomes[vcpus] = {rc.empty() ? -1 : std::stoi(rc), testing::ReadFile(scratch.File("out-" + n)),
                       testing::ReadFile(scratch.File("err-" + n))};
  }
  return outcomes;
}

TEST(LinuxBootKvmTest, DebianKernelReachesInitWithOneAndTwoVcpus) {
  struct stat info {};
  ASSERT_EQ(stat((testing::LinuxGuestDir() + "/vmlinuz").c_str(), &info), 0)
      << "run scripts/linux-guest.sh first";
  std::map<uint32_t, BootOutcome> outcomes = BootLinux({1, 2});
  for (const auto& [vcpus, outcome] : outcomes) {
    SCOPED_TRACE(std::to_string(vcpus) + " vCPU(s)");
    EXPECT_EQ(outcome.exit_code, 0) << outcome.log;
    EXPECT_NE(outcome.console.find("EMBER-LINUX: init reached"), std::string::npos)
        << outcome.console;
    EXPECT_TRUE(std::regex_search(
        outcome.console, std::regex("EMBER-LINUX: nproc=" + std::to_string(vcpus) + "\\r?\\n")))
        << outcome.console;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(outcome.console, match, std::regex("memtotal_kib=([0-9]+)")))
        << outcome.console;
    uint64_t memtotal_kib = std::stoull(match[1]);
    EXPECT_LE(memtotal_kib, kMemMib * 1024u);
    EXPECT_GE(memtotal_kib, kMemMib * 1024u * 8 / 10) << "the kernel keeps under 20% for itself";
    EXPECT_NE(outcome.console.find("EMBER-LINUX: rebooting"), std::string::npos) << outcome.console;
    EXPECT_NE(outcome.log.find("VM stopped: guest reset"), std::string::npos) << outcome.log;
  }
}

}  // namespace
}  // namespace ember
