// ember against a vhost-user backend that misbehaves on purpose
// (tests/hostile_vhost_user_backend.cc): truncated, oversized,
// wrong-request and wrong-flag replies, fds it never asked for, a refusal,
// replies that never come, hang-ups.
//   While InstanceStart negotiates: the start fails with the device and the
//     reason named, ember stays up in "Not started", holds no more fds than
//     before, and a start with a backend that behaves then runs the guest.
//   Once the guest runs (the device's activation, or later): the VM keeps
//     running, the log says why the backend was dropped, and ember
//     reconnects; failed reconnects leak no fds either.
// Needs /dev/kvm; skips, saying so, without it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/backends.h"
#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

// The fds `pid` has open (its /proc/<pid>/fd entries), or -1.
long OpenFds(pid_t pid) {
  std::error_code error;
  long count = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", error), end;
       !error && it != end; it.increment(error)) {
    ++count;
  }
  return error ? -1 : count;
}

// The fewest fds `pid` holds over 300 ms: the API server may still be
// closing the connection of the request before.
long QuietFds(pid_t pid) {
  long fewest = OpenFds(pid);
  for (int i = 0; i < 15; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const long count = OpenFds(pid);
    if (count >= 0 && (fewest < 0 || count < fewest)) fewest = count;
  }
  return fewest;
}

class HostileVhostUserBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  }
  // The hostile backend on net.sock: `args` after the socket.
  std::unique_ptr<BackendProcess> StartBackend(const std::vector<std::string>& args) {
    std::vector<std::string> argv{EMBER_HOSTILE_BACKEND, socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto backend = std::make_unique<BackendProcess>(argv, socket_, dir_.File("backend.log"));
    EXPECT_TRUE(backend->ready()) << backend->Log();
    return backend;
  }
  // The test guest running netloop (it drives the net device until
  // Ctrl-Alt-Del), with a net device (an fs device with `fs`) on the
  // backend's socket.
  void Configure(const EmberProcess& ember, bool fs = false) {
    ASSERT_EQ(
        ember
            .Request("PUT", "/boot-source",
                     json{{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
                          {"boot_args", "console=ttyS0 ember.tests=netloop"}}
                         .dump())
            .status,
        204);
    ASSERT_EQ(ember
                  .Request("PUT", "/machine-config",
                           json{{"vcpu_count", 1}, {"mem_size_mib", 128}}.dump())
                  .status,
              204);
    if (fs) {
      HttpResponse put =
          ember.Request("PUT", "/fs/share",
                        json{{"fs_id", "share"}, {"tag", "share"}, {"socket", socket_}}.dump());
      ASSERT_EQ(put.status, 204) << put.body;
      return;
    }
    HttpResponse put = ember.Request("PUT", "/network-interfaces/eth0",
                                     json{{"iface_id", "eth0"},
                                          {"guest_mac", "52:54:00:00:00:02"},
                                          {"socket", socket_},
                                          {"reconnect_interval_ms", 50}}
                                         .dump());
    ASSERT_EQ(put.status, 204) << put.body;
  }
  static HttpResponse Start(const EmberProcess& ember) {
    return ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  }
  static std::string State(const EmberProcess& ember) {
    HttpResponse info = ember.Request("GET", "/");
    if (info.status != 200) {
      return "<GET / answered " + std::to_string(info.status) + ": " + info.body + ">";
    }
    return json::parse(info.body).value("state", "<no state>");
  }
  static bool Logged(const EmberProcess& ember, const std::string& text, int seconds = 20) {
    return WaitUntil([&] { return ember.Stderr().find(text) != std::string::npos; }, seconds);
  }
  // Waits until ember holds at most `baseline` fds (a connection being
  // tried may hold one more for a moment); the count it settled at.
  static long SettledFds(const EmberProcess& ember, long baseline) {
    long count = OpenFds(ember.pid());
    WaitUntil(
        [&] {
          count = OpenFds(ember.pid());
          return count >= 0 && count <= baseline;
        },
        3);
    return count;
  }
  // The guest keeps running: the API says so, and Ctrl-Alt-Del ends it
  // the usual way.
  static void ExpectRunsAndShutsDown(EmberProcess& ember) {
    EXPECT_EQ(State(ember), "Running") << ember.Stderr();
    EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
    EXPECT_EQ(ember.WaitForExit(30000), 0) << ember.Stderr();
    EXPECT_NE(ember.Stdout().find("ember-guest: netloop sent="), std::string::npos)
        << ember.Stdout();
  }

  TempDir dir_;
  const std::string socket_ = dir_.File("net.sock");
};

struct StartCase {
  const char* name;
  std::vector<std::string> backend;  // mode and options
  int attempts;                      // failed InstanceStarts
  std::string reason;                // after "<device>: vhost-user "
  bool fs = false;
};

class HostileVhostUserStartTest : public HostileVhostUserBackendTest,
                                  public ::testing::WithParamInterface<StartCase> {};

// Each attempt is refused with the device and the reason; ember stays up
// with no fd more than before; once the backend behaves, the VM runs.
TEST_P(HostileVhostUserStartTest, InstanceStartIsRefusedThenWorksWithoutLeakingFds) {
  const StartCase& c = GetParam();
  std::vector<std::string> args = c.backend;
  args.insert(args.end(), {"--hostile", std::to_string(c.attempts)});
  auto backend = StartBackend(args);
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  Configure(ember, c.fs);
  const std::string device = c.fs ? "fs device share" : "net device eth0";
  const long before = QuietFds(ember.pid());
  ASSERT_GT(before, 0);
  for (int attempt = 1; attempt <= c.attempts; ++attempt) {
    HttpResponse start = Start(ember);
    EXPECT_EQ(start.status, 400) << start.body;
    EXPECT_NE(Fault(start).find(device + ": vhost-user " + c.reason), std::string::npos)
        << "attempt " << attempt << ": " << Fault(start);
    EXPECT_EQ(kill(ember.pid(), 0), 0) << "ember is gone";
    EXPECT_EQ(State(ember), "Not started");
  }
  EXPECT_EQ(
      Occurrences(ember.Stderr(), "InstanceStart failed: " + device + ": vhost-user " + c.reason),
      static_cast<size_t>(c.attempts))
      << ember.Stderr();
  const long after = SettledFds(ember, before);
  std::printf("%s: fds before %ld, after %d failed starts %ld; fault: %s\n", c.name, before,
              c.attempts, after, c.reason.c_str());
  EXPECT_EQ(after, before) << "fds leaked by failed starts";
  EXPECT_EQ(Occurrences(backend->Log(), "misbehaving: "), static_cast<size_t>(c.attempts))
      << backend->Log();

  HttpResponse start = Start(ember);
  ASSERT_EQ(start.status, 204) << start.body << ember.Stderr();
  if (c.fs) {
    // netloop finds no net device, and the guest ends at once.
    EXPECT_EQ(ember.WaitForExit(30000), 0) << ember.Stderr();
    EXPECT_NE(ember.Stdout().find("ember-guest: netloop no-device"), std::string::npos)
        << ember.Stdout();
    return;
  }
  EXPECT_EQ(State(ember), "Running");
  EXPECT_TRUE(Logged(ember, device + ": started with")) << ember.Stderr();
  ExpectRunsAndShutsDown(ember);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HostileVhostUserStartTest,
    ::testing::Values(
        StartCase{"short", {"short"}, 3, "GET_FEATURES reply has 4 payload bytes, expected 8"},
        StartCase{"truncated",
                  {"truncated", "--at", "GET_PROTOCOL_FEATURES"},
                  3,
                  "GET_PROTOCOL_FEATURES reply: the backend closed the connection"},
        StartCase{"oversized",
                  {"oversized"},
                  3,
                  "GET_FEATURES reply has 1048576 payload bytes, expected 8"},
        StartCase{"wrong_request",
                  {"wrong-request", "--at", "GET_PROTOCOL_FEATURES"},
                  3,
                  "GET_PROTOCOL_FEATURES reply answers request 3"},
        StartCase{"wrong_flags",
                  {"wrong-flags", "--at", "SET_OWNER"},
                  3,
                  "SET_OWNER reply has bad flags 1"},
        StartCase{"wrong_version", {"wrong-version"}, 3, "GET_FEATURES reply has bad flags 6"},
        StartCase{"fds", {"fds"}, 3, "GET_FEATURES reply came with file descriptors"},
        StartCase{
            "nack", {"nack", "--at", "SET_OWNER"}, 3, "SET_OWNER: the backend refused it (1)"},
        StartCase{"hangup",
                  {"hangup", "--at", "SET_OWNER"},
                  3,
                  "SET_OWNER reply: the backend closed the connection"},
        StartCase{"silent",
                  {"silent"},
                  2,
                  "GET_FEATURES reply: the backend did not answer within 5000 ms"},
        StartCase{"fs_wrong_request",
                  {"wrong-request"},
                  2,
                  "GET_FEATURES reply answers request 3",
                  true}),
    [](const auto& info) { return std::string(info.param.name); });

// A backend that misbehaves while the guest's DRIVER_OK hands it the
// rings: the VM keeps running, the log says why the connection was
// dropped, and ember reconnects (the backend behaves on its second
// connection).
struct LateCase {
  const char* name;
  std::vector<std::string> backend;
  std::string reason;  // logged for the device
};

class HostileVhostUserLateTest : public HostileVhostUserBackendTest,
                                 public ::testing::WithParamInterface<LateCase> {};

TEST_P(HostileVhostUserLateTest, VmKeepsRunningAndEmberReconnects) {
  const LateCase& c = GetParam();
  std::vector<std::string> args = c.backend;
  args.insert(args.end(), {"--hostile", "1"});
  auto backend = StartBackend(args);
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  Configure(ember);
  HttpResponse start = Start(ember);
  ASSERT_EQ(start.status, 204) << start.body << ember.Stderr();
  EXPECT_TRUE(Logged(ember, "net device eth0: " + c.reason)) << ember.Stderr();
  EXPECT_TRUE(
      Logged(ember, "net device eth0: the vhost-user backend disconnected; the VM keeps running"))
      << ember.Stderr();
  EXPECT_EQ(State(ember), "Running");
  EXPECT_TRUE(Logged(ember, "net device eth0: reconnected to the vhost-user backend"))
      << ember.Stderr() << backend->Log();
  EXPECT_EQ(Occurrences(backend->Log(), "misbehaving: "), 1u) << backend->Log();
  ExpectRunsAndShutsDown(ember);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HostileVhostUserLateTest,
    ::testing::Values(
        LateCase{"hangup_at_mem_table",
                 {"hangup", "--at", "SET_MEM_TABLE"},
                 "the vhost-user backend did not take the rings (net device eth0: vhost-user "
                 "SET_MEM_TABLE reply: the backend closed the connection); dropping the "
                 "connection"},
        LateCase{"silent_at_mem_table",
                 {"silent", "--at", "SET_MEM_TABLE"},
                 "the vhost-user backend did not take the rings (net device eth0: vhost-user "
                 "SET_MEM_TABLE reply: the backend did not answer within 5000 ms); dropping the "
                 "connection"},
        LateCase{"fds_at_vring_enable",
                 {"fds", "--at", "SET_VRING_ENABLE"},
                 "the vhost-user backend did not take the rings (net device eth0: vhost-user "
                 "SET_VRING_ENABLE reply came with file descriptors); dropping the connection"},
        LateCase{"hangup_after_rings_start",
                 {"hangup-after", "--at", "SET_VRING_ENABLE", "--count", "2"},
                 "started with 2 queue(s)"}),
    [](const auto& info) { return std::string(info.param.name); });

// The backend goes away under a running guest and what comes back on the
// socket misbehaves on every connection: every reconnect fails, saying
// why, the VM keeps running, and ember's fds do not grow; a backend that
// behaves is then taken again.
TEST_F(HostileVhostUserBackendTest, FailedReconnectsLeakNoFds) {
  auto backend = StartBackend({"fds", "--hostile", "0"});  // honest
  EmberProcess ember(dir_, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  Configure(ember);
  ASSERT_EQ(Start(ember).status, 204) << ember.Stderr();
  ASSERT_TRUE(Logged(ember, "net device eth0: started with")) << ember.Stderr();
  const long before = QuietFds(ember.pid());
  ASSERT_GT(before, 0);

  backend->Kill(SIGKILL);
  ASSERT_TRUE(Logged(ember, "the vhost-user backend disconnected; the VM keeps running"))
      << ember.Stderr();
  backend = StartBackend({"fds"});  // hostile on every connection
  const std::string failed =
      "net device eth0: reconnect failed: net device eth0: vhost-user GET_FEATURES reply came "
      "with file descriptors";
  ASSERT_TRUE(WaitUntil([&] { return Occurrences(ember.Stderr(), failed) >= 20; }))
      << ember.Stderr();
  const long after_20 = SettledFds(ember, before);
  ASSERT_TRUE(WaitUntil([&] { return Occurrences(ember.Stderr(), failed) >= 60; }))
      << ember.Stderr();
  const long after_60 = SettledFds(ember, before);
  EXPECT_EQ(State(ember), "Running");
  std::printf("fds connected %ld, after 20 failed reconnects %ld, after 60 %ld\n", before, after_20,
              after_60);
  EXPECT_EQ(after_20, before);
  EXPECT_EQ(after_60, before);

  backend->Kill(SIGKILL);
  backend = StartBackend({"fds", "--hostile", "0"});
  ASSERT_TRUE(Logged(ember, "net device eth0: reconnected to the vhost-user backend"))
      << ember.Stderr();
  const long reconnected = SettledFds(ember, before);
  std::printf("fds after the reconnect %ld\n", reconnected);
  EXPECT_EQ(reconnected, before);
  ExpectRunsAndShutsDown(ember);
}

}  // namespace
}  // namespace ember::testing
