// ember's seccomp filters, observed from outside: every thread is filtered
// while a guest runs, a forbidden call in any thread kind ends ember with
// status 148 naming the thread and the call, and one kind's filter does not
// limit another. Needs /dev/kvm for the guest.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

std::string GuestPvh() { return std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"; }

// "Seccomp:" of every thread of `pid`, keyed by thread name.
std::vector<std::pair<std::string, std::string>> ThreadSeccompModes(pid_t pid) {
  std::vector<std::pair<std::string, std::string>> modes;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return modes;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(tasks + "/" + entry->d_name + "/status");
    std::string line, name, mode;
    while (std::getline(status, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(6);
      if (line.rfind("Seccomp:", 0) == 0) mode = line.substr(9);
    }
    modes.emplace_back(name, mode);
  }
  closedir(dir);
  return modes;
}

class SeccompTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  }
  void TearDown() override { unsetenv("EMBER_TEST_FORBIDDEN_SYSCALL"); }
  void WriteConfig(const std::string& tests, uint32_t vcpus = 1) {
    WriteFile(dir_.File("vm.json"),
              json{{"boot-source",
                    {{"kernel_image_path", GuestPvh()}, {"boot_args", "ember.tests=" + tests}}},
                   {"machine-config", {{"vcpu_count", vcpus}, {"mem_size_mib", 128}}}}
                  .dump());
  }
  TempDir dir_;
};

TEST_F(SeccompTest, EveryThreadIsFilteredWhileTheGuestRuns) {
  WriteConfig("ctrlaltdel", 2);
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del"));
  // Make sure httplib's workers exist too.
  ASSERT_EQ(ember.Request("GET", "/").status, 200);
  auto modes = ThreadSeccompModes(ember.pid());
  int api = 0;
  std::vector<std::string> vcpus;
  for (const auto& [name, mode] : modes) {
    EXPECT_EQ(mode, "2") << "thread " << name << " is not filtered";
    if (name.rfind("fc_vcpu", 0) == 0) vcpus.push_back(name);
    api += name == "fc_api";
  }
  // Firecracker's names, which Kata Containers parses ("fc_vcpu" + index).
  std::sort(vcpus.begin(), vcpus.end());
  EXPECT_EQ(vcpus, (std::vector<std::string>{"fc_vcpu 0", "fc_vcpu 1"}));
  EXPECT_GE(api, 2) << "the listener and its workers";
  EXPECT_GE(modes.size(), 4u);
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
}

TEST_F(SeccompTest, NoSeccompLeavesThreadsUnfiltered) {
  WriteConfig("ctrlaltdel");
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json"), "--no-seccomp"});
  ASSERT_TRUE(ember.started());
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del"));
  for (const auto& [name, mode] : ThreadSeccompModes(ember.pid())) EXPECT_EQ(mode, "0") << name;
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0);
}

// While the vCPU threads run under their filter (no sockets, no tgkill),
// the API threads still serve and the VMM thread still pauses and resumes.
TEST_F(SeccompTest, OneThreadsFilterDoesNotLimitAnother) {
  WriteConfig("ticks,ctrlaltdel", 2);
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(ember.started());
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: tick 2\n"));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ember.Request("GET", "/machine-config").status, 200);
  ASSERT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  ASSERT_EQ(ember.Request("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del"));
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
}

class ForbiddenCallTest : public SeccompTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ForbiddenCallTest, EndsEmberWith148NamingTheThreadAndCall) {
  const std::string kind = GetParam();
  setenv("EMBER_TEST_FORBIDDEN_SYSCALL", kind.c_str(), 1);
  WriteConfig("cmdline");
  std::vector<std::string> argv = {EMBER_BINARY, "--metrics-path", dir_.File("metrics.json")};
  if (kind == "api") {
    argv.insert(argv.end(), {"--api-sock", dir_.File("api.sock")});
  } else {
    argv.insert(argv.end(), {"--no-api", "--config-file", dir_.File("vm.json")});
  }
  ProcessResult result = RunProcess(argv, 20000);
  EXPECT_EQ(result.exit_code, 148) << result.err;
  EXPECT_NE(result.err.find("ember: seccomp: the " + kind +
                            " thread made a forbidden system call getppid (110)"),
            std::string::npos)
      << result.err;
  EXPECT_NE(ReadFile(dir_.File("metrics.json")).find(R"("seccomp":{"num_faults":1})"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(ThreadKinds, ForbiddenCallTest, ::testing::Values("vcpu", "api", "vmm"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ember::testing
