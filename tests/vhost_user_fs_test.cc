// virtio-fs end to end: the test guest's FUSE client talks through ember's
// virtio-mmio transport and vhost-user frontend to a real virtiofsd.
// Needs /dev/kvm; skips, saying so, only without it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <thread>

#include "tests/backends.h"
#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

std::string Hex32(uint32_t value) {
  char text[16];
  snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

uint32_t ByteSum(const std::string& data) {
  return std::accumulate(data.begin(), data.end(), 0u,
                         [](uint32_t sum, char c) { return sum + static_cast<uint8_t>(c); });
}

class VhostUserFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    share_ = dir_.File("share");
    std::filesystem::create_directories(share_ + "/many");
    WriteFile(share_ + "/hello.txt", std::string("hello from the host\n"));
    std::mt19937 random(42);
    big_.resize(1 << 20);
    for (char& c : big_) c = static_cast<char>(random());
    WriteFile(share_ + "/big.bin", big_);
    for (int i = 1; i <= 100; ++i) {
      std::string name = "file" + std::to_string(i);
      WriteFile(share_ + "/many/" + name, std::to_string(i) + "\n");
      namesum_ += ByteSum(name);
    }
  }
  std::unique_ptr<BackendProcess> StartVirtiofsd() {
    auto backend =
        std::make_unique<BackendProcess>(VirtiofsdCommand(dir_.File("vfs.sock"), share_),
                                         dir_.File("vfs.sock"), dir_.File("virtiofsd.log"));
    EXPECT_TRUE(backend->ready()) << backend->Log();
    return backend;
  }
  json Config(const std::string& tests, uint32_t vcpus) {
    return {
        {"boot-source",
         {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
          {"boot_args", "console=ttyS0 ember.tests=" + tests}}},
        {"machine-config", {{"vcpu_count", vcpus}, {"mem_size_mib", 128}}},
        {"fs", {{{"fs_id", "share"}, {"tag", "hostshare"}, {"socket", dir_.File("vfs.sock")}}}}};
  }
  void ExpectFsResults(const std::string& out) {
    auto has = [&](const std::string& line) { return out.find(line + "\n") != std::string::npos; };
    EXPECT_TRUE(has("ember-guest: fs tag=hostshare queues=1")) << out;
    EXPECT_TRUE(
        has("ember-guest: fs read hello.txt size=20 sum=0x00000731 text=hello from the host\\n"))
        << out;
    EXPECT_TRUE(has("ember-guest: fs read big.bin size=1048576 sum=" + Hex32(ByteSum(big_))))
        << out;
    EXPECT_TRUE(has("ember-guest: fs wrote from-guest.txt size=23")) << out;
    EXPECT_TRUE(has("ember-guest: fs wrote big-out.bin size=1048576 sum=0x07f80000")) << out;
    EXPECT_TRUE(has("ember-guest: fs dir many entries=100 namesum=" + Hex32(namesum_))) << out;
    EXPECT_TRUE(has("ember-guest: fs ok")) << out;
    // What the guest wrote is on the host, byte for byte.
    EXPECT_EQ(ReadFile(share_ + "/from-guest.txt"), "written by ember-guest\n");
    std::string written = ReadFile(share_ + "/big-out.bin");
    ASSERT_EQ(written.size(), 1u << 20);
    bool pattern = true;
    for (size_t i = 0; i < written.size() && pattern; ++i) {
      pattern = static_cast<uint8_t>(written[i]) == static_cast<uint8_t>(i * 7 + 3);
    }
    EXPECT_TRUE(pattern) << "big-out.bin differs from the guest's pattern";
  }

  TempDir dir_;
  std::string share_;
  std::string big_;
  uint32_t namesum_ = 0;
};

class VhostUserFsVcpusTest : public VhostUserFsTest,
                             public ::testing::WithParamInterface<uint32_t> {};

TEST_P(VhostUserFsVcpusTest, GuestReadsWritesAndListsThroughVirtiofsd) {
  auto virtiofsd = StartVirtiofsd();
  WriteFile(dir_.File("vm.json"), Config("virtio,fs", GetParam()).dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 60000);
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("ember-guest: virtio base=0xc0001000 size=0x1000 irq=5 id=26"),
            std::string::npos)
      << result.out;
  ExpectFsResults(result.out);
  EXPECT_NE(result.err.find("fs device share: started with 2 queue(s)"), std::string::npos)
      << result.err;
  EXPECT_TRUE(result.out.find("ember-guest: done\n") != std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Vcpus, VhostUserFsVcpusTest, ::testing::Values(1u, 2u),
                         [](const auto& info) { return std::to_string(info.param) + "vcpu"; });

// Guest RAM on 2 MiB huge pages (machine-config huge_pages "2M"): the
// memfd virtiofsd maps is a hugetlb one, and the whole exchange still
// works. Needs root to size the pool.
TEST_F(VhostUserFsTest, VirtiofsdMapsGuestMemoryOnHugePages) {
  if (geteuid() != 0) GTEST_SKIP() << "not root: resizing the huge page pool needs it";
  HugePagePool pool;
  ASSERT_GE(pool.Resize(64), 64) << "the kernel gave fewer huge pages";
  auto virtiofsd = StartVirtiofsd();
  json config = Config("virtio,fs", 1);
  config["machine-config"]["huge_pages"] = "2M";
  WriteFile(dir_.File("vm.json"), config.dump());
  ProcessResult result =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir_.File("vm.json")}, 60000);
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  ExpectFsResults(result.out);
  EXPECT_TRUE(result.out.find("ember-guest: done\n") != std::string::npos);
}

TEST_F(VhostUserFsTest, ConfiguredThroughTheApi) {
  auto virtiofsd = StartVirtiofsd();
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started());
  json config = Config("fs", 1);
  ASSERT_EQ(ember.Request("PUT", "/boot-source", config["boot-source"].dump()).status, 204);
  ASSERT_EQ(ember.Request("PUT", "/fs/share", config["fs"][0].dump()).status, 204);
  json shown = json::parse(ember.Request("GET", "/vm/config").body);
  EXPECT_EQ(shown["fs"][0]["tag"], "hostshare");
  EXPECT_EQ(shown["fs"][0]["queue_size"], 1024);
  ASSERT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(60000), 0) << ember.Stderr();
  ExpectFsResults(ember.Stdout());
}

TEST_F(VhostUserFsTest, ProblemsNameTheDeviceAndLeaveNoHalfStartedVm) {
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started());
  auto put = [&](const json& body) {
    return ember.Request("PUT", "/fs/" + body["fs_id"].get<std::string>(), body.dump());
  };
  auto fault = [](const HttpResponse& r) { return json::parse(r.body).value("fault_message", ""); };
  HttpResponse missing = put({{"fs_id", "a"}, {"tag", "t"}, {"socket", dir_.File("none.sock")}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(fault(missing).find("fs device a: socket " + dir_.File("none.sock") + ": No such file"),
            std::string::npos)
      << fault(missing);
  WriteFile(dir_.File("plain"), std::string("x"));
  HttpResponse plain = put({{"fs_id", "a"}, {"tag", "t"}, {"socket", dir_.File("plain")}});
  EXPECT_NE(fault(plain).find("is not a socket"), std::string::npos) << fault(plain);
  HttpResponse long_tag = put({{"fs_id", "a"}, {"tag", std::string(40, 't')}, {"socket", "/s"}});
  EXPECT_NE(fault(long_tag).find("tag: must be 1 to 36 bytes"), std::string::npos);
  HttpResponse mismatch =
      ember.Request("PUT", "/fs/b", json{{"fs_id", "a"}, {"tag", "t"}, {"socket", "/s"}}.dump());
  EXPECT_NE(fault(mismatch).find("does not match the id from the body"), std::string::npos);

  // A socket nobody serves: accepted at PUT, refused at InstanceStart.
  {
    auto virtiofsd = StartVirtiofsd();
    ASSERT_EQ(put({{"fs_id", "a"}, {"tag", "t"}, {"socket", dir_.File("vfs.sock")}}).status, 204);
    HttpResponse duplicate = put({{"fs_id", "b"}, {"tag", "t"}, {"socket", dir_.File("vfs.sock")}});
    EXPECT_NE(fault(duplicate).find("the tag \"t\" is used by both a and b"), std::string::npos);
    virtiofsd->Kill(SIGKILL);  // leaves its socket file behind
  }
  ASSERT_EQ(ember.Request("PUT", "/boot-source", Config("fs", 1)["boot-source"].dump()).status,
            204);
  HttpResponse start = ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(start.status, 400);
  EXPECT_NE(fault(start).find("fs device a: connecting to the vhost-user backend at " +
                              dir_.File("vfs.sock") + ": Connection refused"),
            std::string::npos)
      << fault(start);
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Not started");
  EXPECT_EQ(ember.Stdout(), "") << "no guest ran";
}

TEST_F(VhostUserFsTest, BackendDeathLeavesTheVmRunningAndStoppable) {
  auto virtiofsd = StartVirtiofsd();
  WriteFile(dir_.File("vm.json"), Config("fs,ctrlaltdel", 1).dump());
  EmberProcess ember(dir_, {"--config-file", dir_.File("vm.json")});
  ASSERT_TRUE(ember.started());
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del", 60000)) << ember.Stdout();
  virtiofsd->Kill(SIGKILL);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ember.Stderr().find("backend disconnected") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(ember.Stderr().find(
                "fs device share: the vhost-user backend disconnected; the VM keeps running"),
            std::string::npos)
      << ember.Stderr();
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Running");
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
}

size_t CountEntries(const std::string& dir) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++count;
  return count;
}

// A fake backend on `path` that accepts one connection and answers it
// with `reply` (possibly nothing) before hanging up.
void MisbehavingBackendOnce(const std::string& path, const std::string& reply) {
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  unlink(path.c_str());
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  int client = accept(listener, nullptr, nullptr);
  if (!reply.empty()) (void)!write(client, reply.data(), reply.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  close(client);
  close(listener);
  unlink(path.c_str());
}

TEST_F(VhostUserFsTest, ReconnectSurvivesRestartsHangupsAndGarbageWithoutLeaks) {
  auto virtiofsd = StartVirtiofsd();
  json config = Config("fs,ctrlaltdel", 1);
  config["fs"][0]["reconnect_interval_ms"] = 20;
  WriteFile(dir_.File("vm.json"), config.dump());
  EmberProcess ember(
      dir_, {"--config-file", dir_.File("vm.json"), "--metrics-path", dir_.File("metrics.json")});
  ASSERT_TRUE(ember.started());
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del", 60000)) << ember.Stdout();
  const std::string proc = "/proc/" + std::to_string(ember.pid());
  const size_t fds_before = CountEntries(proc + "/fd"),
               threads_before = CountEntries(proc + "/task");
  auto wait_for = [&](const std::string& what, size_t count) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (Occurrences(ember.Stderr(), what) < count &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Occurrences(ember.Stderr(), what) >= count;
  };
  // Restarts.
  for (size_t round = 1; round <= 3; ++round) {
    virtiofsd->Kill(SIGKILL);
    ASSERT_TRUE(wait_for("backend disconnected", round)) << ember.Stderr();
    virtiofsd = StartVirtiofsd();
    ASSERT_TRUE(wait_for("reconnected to the vhost-user backend", round)) << ember.Stderr();
  }
  // A backend that hangs up at once, then one that answers garbage: ember
  // refuses both and keeps trying until the real one is back.
  virtiofsd->Kill(SIGKILL);
  ASSERT_TRUE(wait_for("backend disconnected", 4));
  MisbehavingBackendOnce(dir_.File("vfs.sock"), "");
  MisbehavingBackendOnce(dir_.File("vfs.sock"), std::string(12, '\xff'));
  ASSERT_TRUE(wait_for("reconnect failed", 2)) << ember.Stderr();
  virtiofsd = StartVirtiofsd();
  ASSERT_TRUE(wait_for("reconnected to the vhost-user backend", 4)) << ember.Stderr();
  // Counted before any API request, whose connection may still be closing.
  EXPECT_EQ(CountEntries(proc + "/fd"), fds_before) << "fds leaked across reconnects";
  EXPECT_EQ(CountEntries(proc + "/task"), threads_before);
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["state"], "Running");
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  std::string metrics = ReadFile(dir_.File("metrics.json"));
  EXPECT_NE(metrics.find(R"("disconnects":4)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"("reconnects":4)"), std::string::npos) << metrics;
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
}

}  // namespace
}  // namespace ember::testing
