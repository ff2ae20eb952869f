// Boots the test guest (tests/guest) through the ember binary on this
// machine's KVM, in each of the three formats ember loads, and asserts every
// line the guest prints. Needs /dev/kvm; skips, saying so, only without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>

#include "tests/test_util.h"

namespace ember {
namespace {

using testing::ProcessResult;
using testing::TempDir;

constexpr int kTimeoutMs = 60000;

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }

std::string GuestPath(const std::string& format) {
  if (format == "bzimage") return std::string(EMBER_GUEST_DIR) + "/guest.bzImage";
  return std::string(EMBER_GUEST_DIR) + "/guest-" + format + ".elf";
}

struct BootRequest {
  std::string kernel;
  std::string boot_args = "console=ttyS0";
  uint32_t vcpus = 1;
  uint32_t mem_mib = 128;
  std::string initrd;        // path or empty
  std::string extra_config;  // extra top-level JSON members, with a leading comma
  std::vector<std::string> flags;
};

ProcessResult Boot(const TempDir& dir, const BootRequest& request) {
  std::string config = R"({"boot-source": {"kernel_image_path": ")" + request.kernel +
                       R"(", "boot_args": ")" + request.boot_args + "\"";
  if (!request.initrd.empty()) config += R"(, "initrd_path": ")" + request.initrd + "\"";
  config += R"(}, "machine-config": {"vcpu_count": )" + std::to_string(request.vcpus) +
            R"(, "mem_size_mib": )" + std::to_string(request.mem_mib) + "}" + request.extra_config +
            "}";
  testing::WriteFile(dir.File("vm.json"), config);
  std::vector<std::string> argv = {EMBER_BINARY, "--no-api", "--config-file", dir.File("vm.json")};
  argv.insert(argv.end(), request.flags.begin(), request.flags.end());
  return testing::RunProcess(argv, kTimeoutMs);
}

bool HasLine(const std::string& output, const std::string& line) {
  return output.find(line + "\n") != std::string::npos;
}

struct BootCase {
  std::string format;
  uint32_t vcpus;
};

class GuestBootKvmTest : public ::testing::TestWithParam<BootCase> {
 protected:
  void SetUp() override {
    if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: KVM boot tests need it";
  }
  TempDir dir_;
};

TEST_P(GuestBootKvmTest, GuestReportsWhatEmberBuilt) {
  const BootCase& c = GetParam();
  // An initrd with a known checksum.
  std::vector<uint8_t> initrd(6000);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i * 31 + 7);
  testing::WriteFile(dir_.File("initrd.img"), initrd);
  uint32_t sum = std::accumulate(initrd.begin(), initrd.end(), 0u);
  char sum_hex[16];
  snprintf(sum_hex, sizeof(sum_hex), "0x%08x", sum);

  BootRequest request;
  request.kernel = GuestPath(c.format);
  request.boot_args = "console=ttyS0 ember.tests=cmdline,e820,initrd,cpuid,mptable,smp,timer";
  request.vcpus = c.vcpus;
  request.initrd = dir_.File("initrd.img");
  request.flags = {"--boot-timer"};
  ProcessResult result = Boot(dir_, request);

  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::string& out = result.out;
  EXPECT_TRUE(out.rfind("ember-guest: entry=" + c.format + "\n", 0) == 0) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: cmdline=" + request.boot_args)) << out;
  // 128 MiB: base memory up to the MP table, then 1 MiB to the end.
  EXPECT_TRUE(HasLine(out, "ember-guest: e820 addr=0x0 size=0x9fc00 type=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: e820 addr=0x100000 size=0x7f00000 type=1")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: e820 entries=2 ram_kib=130687")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: initrd size=6000 sum=" + std::string(sum_hex))) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: cpuid hypervisor=1 apic_id=0 hv=KVMKVMKVM")) << out;
  EXPECT_TRUE(
      HasLine(out, "ember-guest: mptable cpus=" + std::to_string(c.vcpus) + " ioapic=0xfec00000"))
      << out;
  for (uint32_t ap = 1; ap < c.vcpus; ++ap) {
    EXPECT_TRUE(HasLine(out, "ember-guest: ap apic_id=" + std::to_string(ap) + " up")) << out;
  }
  EXPECT_TRUE(HasLine(out, "ember-guest: smp online=" + std::to_string(c.vcpus))) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: boot-timer written")) << out;
  EXPECT_TRUE(HasLine(out, "ember-guest: done")) << out;
  EXPECT_NE(result.err.find("Guest-boot-time ="), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("VM stopped: guest reset through the i8042"), std::string::npos)
      << result.err;
}

INSTANTIATE_TEST_SUITE_P(FormatsAndVcpus, GuestBootKvmTest,
                         ::testing::Values(BootCase{"pvh", 1}, BootCase{"pvh", 2},
                                           BootCase{"elf64", 1}, BootCase{"elf64", 2},
                                           BootCase{"bzimage", 1}, BootCase{"bzimage", 2}),
                         [](const auto& info) {
                           return info.param.format + "_" + std::to_string(info.param.vcpus) +
                                  "vcpu";
                         });

class EmberKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: KVM boot tests need it";
  }
  TempDir dir_;
};

TEST_F(EmberKvmTest, MemoryAboveTheHoleIsSplitInE820) {
  BootRequest request;
  request.kernel = GuestPath("pvh");
  request.boot_args = "ember.tests=e820";
  request.mem_mib = 4096;
  ProcessResult result = Boot(dir_, request);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(HasLine(result.out, "ember-guest: e820 addr=0x100000 size=0xbff00000 type=1"))
      << result.out;
  EXPECT_TRUE(HasLine(result.out, "ember-guest: e820 addr=0x100000000 size=0x40000000 type=1"))
      << result.out;
  EXPECT_TRUE(HasLine(result.out, "ember-guest: e820 entries=3 ram_kib=4193919")) << result.out;
}

TEST_F(EmberKvmTest, ConsoleCanGoToAFile) {
  BootRequest request;
  request.kernel = GuestPath("elf64");
  request.extra_config = R"(, "serial": {"serial_out_path": ")" + dir_.File("console.log") + "\"}";
  ProcessResult result = Boot(dir_, request);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");
  std::string console = testing::ReadFile(dir_.File("console.log"));
  EXPECT_TRUE(HasLine(console, "ember-guest: entry=elf64")) << console;
  EXPECT_TRUE(HasLine(console, "ember-guest: done")) << console;
}

// A regular console or log file grows by at most --output-file-limit bytes
// (later output dropped and counted), and a symlink planted at either path
// is refused rather than followed.
TEST_F(EmberKvmTest, ConsoleAndLogFilesStopAtTheirLimitAndFollowNoSymlink) {
  BootRequest request;
  request.kernel = GuestPath("elf64");
  request.extra_config = R"(, "serial": {"serial_out_path": ")" + dir_.File("console.log") + "\"}";
  request.flags = {"--output-file-limit",
                   "32",
                   "--log-path",
                   dir_.File("ember.log"),
                   "--level",
                   "Debug",
                   "--metrics-path",
                   dir_.File("metrics.json")};
  ProcessResult result = Boot(dir_, request);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string console = testing::ReadFile(dir_.File("console.log"));
  EXPECT_EQ(console.size(), 32u) << console;
  EXPECT_EQ(console.rfind("ember-guest: ", 0), 0u) << console;
  uint64_t missed = 0;
  std::istringstream lines(testing::ReadFile(dir_.File("metrics.json")));
  for (std::string line; std::getline(lines, line);) {
    missed += nlohmann::json::parse(line)["uart"]["missed_write_count"].get<uint64_t>();
  }
  EXPECT_GT(missed, 0u) << "the guest wrote more than 32 bytes";
  EXPECT_EQ(testing::ReadFile(dir_.File("ember.log")),
            "ember: the log file reached its size limit\n");

  ASSERT_EQ(symlink(dir_.File("target").c_str(), dir_.File("console-link").c_str()), 0);
  request.extra_config = R"(, "serial": {"serial_out_path": ")" + dir_.File("console-link") + "\"}";
  request.flags = {};
  ProcessResult console_link = Boot(dir_, request);
  EXPECT_EQ(console_link.exit_code, 1);
  EXPECT_NE(console_link.err.find("serial.serial_out_path: " + dir_.File("console-link")),
            std::string::npos)
      << console_link.err;
  ASSERT_EQ(symlink(dir_.File("target").c_str(), dir_.File("log-link").c_str()), 0);
  request.extra_config = "";
  request.flags = {"--log-path", dir_.File("log-link")};
  ProcessResult log_link = Boot(dir_, request);
  EXPECT_EQ(log_link.exit_code, 1);
  EXPECT_NE(log_link.err.find(dir_.File("log-link")), std::string::npos) << log_link.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("target"))) << "a symlink was followed";
}

// stdout is a pipe nobody reads: the guest's 256 KiB fill it, the rest is
// dropped and counted (uart.missed_write_count), and the guest still
// resets and ember exits 0; a blocking write would wedge the vCPU instead.
TEST_F(EmberKvmTest, ConsoleReaderThatStallsCostsOutputNotTheGuest) {
  testing::WriteFile(dir_.File("vm.json"),
                     R"({"boot-source": {"kernel_image_path": ")" + GuestPath("pvh") +
                         R"(", "boot_args": "console=ttyS0 ember.tests=flood"}})");
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    int err = open(dir_.File("stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(err, 2);
    execl(EMBER_BINARY, EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json").c_str(),
          "--metrics-path", dir_.File("metrics.json").c_str(), nullptr);
    _exit(127);
  }
  close(pipe_fds[1]);
  int status = -1;
  for (int i = 0; i < 120000 && waitpid(pid, &status, WNOHANG) == 0; ++i) usleep(1000);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << "ember did not finish with its console reader stalled";
  }
  const std::string err = testing::ReadFile(dir_.File("stderr"));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  EXPECT_NE(err.find("VM stopped: guest reset"), std::string::npos) << err;
  uint64_t missed = 0;
  std::istringstream lines(testing::ReadFile(dir_.File("metrics.json")));
  for (std::string line; std::getline(lines, line);) {
    missed += nlohmann::json::parse(line)["uart"]["missed_write_count"].get<uint64_t>();
  }
  EXPECT_GT(missed, 0u) << "the pipe holds less than the guest wrote";
  EXPECT_LT(missed, 256u * 1024) << "what the pipe holds was written";
  char start[64] = {};
  ASSERT_GT(read(pipe_fds[0], start, sizeof(start) - 1), 0);
  EXPECT_NE(std::string(start).find("ember-guest: entry=pvh"), std::string::npos) << start;
  close(pipe_fds[0]);
}

TEST_F(EmberKvmTest, LogsWhichKvmBacksTheDevice) {
  BootRequest request;
  request.kernel = GuestPath("pvh");
  ProcessResult result = Boot(dir_, request);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(std::regex_search(result.err, std::regex("KVM backed by (hardware|PVM)")))
      << result.err;
}

// Bad input: one clear line, exit status 1, no guest output.
std::string ExpectRefused(const TempDir& dir, const BootRequest& request) {
  ProcessResult result = Boot(dir, request);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find("ember: error: "), std::string::npos) << result.err;
  return result.err;
}

TEST_F(EmberKvmTest, RefusesMissingTruncatedAndNonKernelImages) {
  BootRequest request;
  request.kernel = dir_.File("absent");
  EXPECT_NE(ExpectRefused(dir_, request)
                .find("Boot source error: The kernel file cannot be opened: No such file or "
                      "directory (os error 2) (kernel_image_path " +
                      dir_.File("absent") + ")"),
            std::string::npos);

  for (const std::string format : {"pvh", "bzimage"}) {
    std::string image = testing::ReadFile(GuestPath(format));
    testing::WriteFile(dir_.File("truncated"), image.substr(0, image.size() / 2));
    request.kernel = dir_.File("truncated");
    EXPECT_NE(ExpectRefused(dir_, request).find("truncated"), std::string::npos) << format;
  }

  testing::WriteFile(dir_.File("text"), std::string("#!/bin/sh\necho not a kernel\n"));
  request.kernel = dir_.File("text");
  EXPECT_NE(ExpectRefused(dir_, request).find("not a kernel"), std::string::npos);

  request.kernel = dir_.path();
  EXPECT_NE(ExpectRefused(dir_, request).find("not a regular file"), std::string::npos);
}

TEST_F(EmberKvmTest, RefusesInitrdThatDoesNotFit) {
  BootRequest request;
  request.kernel = GuestPath("elf64");
  request.mem_mib = 4;
  testing::WriteFile(dir_.File("big.img"), std::vector<uint8_t>(8 << 20, 1));
  request.initrd = dir_.File("big.img");
  std::string err = ExpectRefused(dir_, request);
  EXPECT_NE(err.find("boot-source.initrd_path"), std::string::npos) << err;
  EXPECT_NE(err.find("does not fit"), std::string::npos) << err;
}

TEST_F(EmberKvmTest, RefusesBadConfigFiles) {
  BootRequest request;
  request.kernel = GuestPath("pvh");
  request.extra_config = R"(, "machine-config2": {})";
  EXPECT_NE(ExpectRefused(dir_, request).find("machine-config2: unknown field"), std::string::npos);
  request.extra_config = "";
  request.vcpus = 0;
  EXPECT_NE(
      ExpectRefused(dir_, request).find("machine-config.vcpu_count: must be between 1 and 32"),
      std::string::npos);
  ProcessResult no_file = testing::RunProcess(
      {EMBER_BINARY, "--no-api", "--config-file", dir_.File("nope.json")}, kTimeoutMs);
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_NE(no_file.err.find("cannot be opened"), std::string::npos);
  ProcessResult bad_flag = testing::RunProcess({EMBER_BINARY, "--frobnicate"}, kTimeoutMs);
  EXPECT_EQ(bad_flag.exit_code, 1);
  EXPECT_NE(bad_flag.err.find("unknown argument --frobnicate"), std::string::npos);
}

// ACPI, in every entry format: the guest finds the RSDP where it searches
// (and where start_info or boot_params says it is), every checksum holds,
// the MADT lists both vCPUs and no virtio device is described; then it
// powers off through the FADT's sleep control register and ember exits 0.
TEST_F(EmberKvmTest, GuestFindsAcpiTablesAndPowersOff) {
  for (const std::string format : {"pvh", "elf64", "bzimage"}) {
    SCOPED_TRACE(format);
    BootRequest request;
    request.kernel = GuestPath(format);
    request.boot_args = "console=ttyS0 ember.tests=acpi,poweroff";
    request.vcpus = 2;
    ProcessResult result = Boot(dir_, request);
    ASSERT_FALSE(result.timed_out) << result.out << result.err;
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const std::string& out = result.out;
    EXPECT_TRUE(
        HasLine(out, "ember-guest: acpi rsdp=0xe0000 tables=2 cpus=2 virtio=0 checksums=ok"))
        << out;
    EXPECT_EQ(out.find("mismatch"), std::string::npos) << out;
    EXPECT_TRUE(HasLine(out, "ember-guest: poweroff port=0x600 value=0x34")) << out;
    EXPECT_EQ(out.find("poweroff failed"), std::string::npos) << out;
    EXPECT_EQ(out.find("ember-guest: done"), std::string::npos) << "stopped before done\n" << out;
    EXPECT_NE(result.err.find("VM stopped: guest powered off through ACPI"), std::string::npos)
        << result.err;
  }
}

TEST_F(EmberKvmTest, AcpiCanBeTurnedOffInMachineConfig) {
  testing::WriteFile(dir_.File("vm.json"), R"({"boot-source": {"kernel_image_path": ")" +
                                               GuestPath("pvh") +
                                               R"(", "boot_args": "ember.tests=acpi,mptable"},
                        "machine-config": {"vcpu_count": 2, "mem_size_mib": 128, "acpi": false}})");
  ProcessResult result = testing::RunProcess(
      {EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, kTimeoutMs);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(HasLine(result.out, "ember-guest: acpi rsdp missing")) << result.out;
  EXPECT_TRUE(HasLine(result.out, "ember-guest: mptable cpus=2 ioapic=0xfec00000")) << result.out;
}

}  // namespace
}  // namespace ember
