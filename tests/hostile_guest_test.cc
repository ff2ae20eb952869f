// The hostile test guest (ember.tests=hostile, tests/guest/hostile.c)
// against ember with every kind of device attached: virtio-fs on a real
// virtiofsd, virtio-net on a real DPDK testpmd, a drive on a file, vsock,
// entropy and, as root, a TAP interface in a network namespace. Per seed
// the guest writes random values at random offsets and widths to every
// device and runs a bogus driver on every virtio slot (poisoned rings,
// wrong init sequences, resets), then the ordinary net, blk and rng tests
// run in the same VM. ember must end on its own with status 0 (no signal,
// no hang), the guest must reach its done line, the devices must work
// after the abuse, and testpmd must still be running. virtiofsd (QEMU
// 7.2's C daemon) exits by design on the first broken ring it sees
// (libvhost-user's vu_panic, "fv_panic: libvhost-user: ..." in its log):
// that is allowed, and then ember must have said the backend went away
// and kept the VM running. Prints one line per seed for the record.
// Needs /dev/kvm; skips, saying so, only without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/backends.h"
#include "tests/test_util.h"

namespace ember::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kSeeds[] = {1, 2, 3, 4, 5};
// About 1 s of hostile guest per seed under PVM's instruction emulator (more on a loaded host).
constexpr uint32_t kRounds = 8;
constexpr int kTimeoutMs = 60000;

struct EmberRun {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  double seconds = 0;
  std::string out, err;
};

// Runs `wrapper` + ember --no-api --boot-timer --config-file `config`, with
// stdout and stderr in files of `dir`, and waits for it (SIGKILL at the
// time limit, which counts as a hang).
EmberRun RunEmber(const TempDir& dir, const std::vector<std::string>& wrapper,
                  const std::string& config) {
  std::vector<std::string> argv = wrapper;
  for (const char* arg : {EMBER_BINARY, "--no-api", "--boot-timer", "--config-file"}) {
    argv.push_back(arg);
  }
  argv.push_back(config);
  const std::string out = dir.File("stdout"), err = dir.File("stderr");
  const auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  EmberRun run;
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (Clock::now() - start > std::chrono::milliseconds(kTimeoutMs)) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!run.timed_out) {
    if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  }
  run.out = ReadFile(out);
  run.err = ReadFile(err);
  return run;
}

// Whether `pid` is a live process (not gone, not a zombie).
bool Running(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

bool HasLine(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

// The numbers of the guest's "hostile done" line, or "?" for each.
std::string Field(const std::string& out, const std::string& name) {
  std::smatch match;
  std::regex pattern("hostile done .*\\b" + name + "=([0-9]+)");
  return std::regex_search(out, match, pattern) ? match[1].str() : "?";
}

class HostileGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/kvm", R_OK | W_OK) != 0)
      GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
    prefix_ = "emberhostile" + std::to_string(getpid());
  }
  void TearDown() override {
    if (testpmd_) testpmd_->Kill(SIGINT);
    RemoveDpdkRuntime(prefix_);
  }

  json Config(uint32_t seed, const TempDir& run, bool tap) const {
    json ifaces = json::array(
        {{{"iface_id", "eth0"}, {"guest_mac", "52:54:00:00:00:02"}, {"socket", net_socket_}}});
    if (tap) {
      ifaces.push_back(
          {{"iface_id", "eth1"}, {"guest_mac", "06:00:ac:10:00:02"}, {"host_dev_name", "tap0"}});
    }
    return {{"boot-source",
             {{"kernel_image_path", std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"},
              {"boot_args", "console=ttyS0 ember.tests=virtio,hostile,net,blk,rng ember.hostile=" +
                                std::to_string(seed) + "," + std::to_string(kRounds)}}},
            {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}},
            {"drives",
             {{{"drive_id", "scratch"},
               {"path_on_host", drive_},
               {"is_root_device", false},
               {"is_read_only", false}}}},
            {"fs", {{{"fs_id", "share"}, {"tag", "hostshare"}, {"socket", run.File("vfs.sock")}}}},
            {"network-interfaces", ifaces},
            {"vsock", {{"guest_cid", 3}, {"uds_path", run.File("v.sock")}}},
            {"entropy", json::object()}};
  }

  TempDir dir_;
  std::string prefix_;
  std::string net_socket_;
  std::string drive_;
  std::unique_ptr<BackendProcess> testpmd_;
};

TEST_F(HostileGuestTest, NoSeedCrashesOrHangsEmberAndTheDevicesWorkAfter) {
  net_socket_ = dir_.File("net.sock");
  testpmd_ = std::make_unique<BackendProcess>(TestpmdCommand(prefix_, {net_socket_}, "macswap"),
                                              net_socket_, dir_.File("testpmd.log"), 30000);
  ASSERT_TRUE(testpmd_->ready()) << testpmd_->Log();
  drive_ = dir_.File("scratch.img");
  WriteFile(drive_, std::string(1 << 20, '\0'));
  const std::string share = dir_.File("share");
  std::filesystem::create_directories(share);
  WriteFile(share + "/hello.txt", std::string("hello from the host\n"));
  // As root, a TAP too (in a namespace of its own, which ember runs in).
  std::unique_ptr<TapNamespace> netns;
  if (geteuid() == 0) {
    netns = std::make_unique<TapNamespace>("ember-hostile");
    ASSERT_EQ(netns->error(), "");
  }
  const std::vector<std::string> wrapper = netns ? netns->Exec() : std::vector<std::string>{};

  std::vector<std::string> rows;
  const auto start = Clock::now();
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir run;
    BackendProcess virtiofsd(VirtiofsdCommand(run.File("vfs.sock"), share), run.File("vfs.sock"),
                             run.File("virtiofsd.log"));
    ASSERT_TRUE(virtiofsd.ready()) << virtiofsd.Log();
    WriteFile(run.File("vm.json"), Config(seed, run, netns != nullptr).dump());
    EmberRun ember = RunEmber(run, wrapper, run.File("vm.json"));
    const std::string tail =
        ember.err.substr(ember.err.size() > 4000 ? ember.err.size() - 4000 : 0);

    EXPECT_FALSE(ember.timed_out) << "ember hung; stdout:\n" << ember.out << "\nstderr:\n" << tail;
    EXPECT_EQ(ember.signal, 0) << "ember died of signal " << ember.signal << "\n" << tail;
    EXPECT_EQ(ember.exit_code, 0) << tail;
    EXPECT_NE(ember.out.find("ember-guest: hostile done seed=" + std::to_string(seed) + " writes="),
              std::string::npos)
        << ember.out << tail;
    EXPECT_NE(ember.err.find("VM stopped: guest reset through the i8042"), std::string::npos)
        << tail;
    // The devices work for a proper driver after the hostile one.
    EXPECT_TRUE(HasLine(ember.out, "ember-guest: net mac=52:54:00:00:00:02 status=1")) << ember.out;
    EXPECT_TRUE(HasLine(ember.out, "ember-guest: net ok")) << ember.out;
    EXPECT_TRUE(HasLine(ember.out, "ember-guest: blk drives=1 ok")) << ember.out;
    EXPECT_TRUE(HasLine(ember.out, "ember-guest: rng bytes=64,64 nonzero=yes differ=yes"))
        << ember.out;
    EXPECT_TRUE(HasLine(ember.out, "ember-guest: done")) << ember.out;

    // The backends: testpmd runs on; virtiofsd runs on, refused the
    // guest's rings by exiting (then ember noticed and went on), or left
    // when ember, done, hung up on it ("Unexpected poll revents").
    EXPECT_TRUE(Running(testpmd_->pid())) << testpmd_->Log();
    std::string fs_state = "alive";
    if (!Running(virtiofsd.pid())) {
      const std::string log = virtiofsd.Log();
      const size_t panic = log.find("fv_panic: libvhost-user: ");
      if (panic != std::string::npos) {
        fs_state = "exited (" + log.substr(panic + 25, log.find('\n', panic) - panic - 25) + ")";
        EXPECT_NE(ember.err.find("fs device share: the vhost-user backend disconnected; the VM "
                                 "keeps running"),
                  std::string::npos)
            << tail;
      } else {
        EXPECT_NE(log.find("virtio_loop: Unexpected poll revents"), std::string::npos)
            << "virtiofsd ended neither refusing a ring nor after ember hung up:\n"
            << log;
        fs_state = "alive until ember hung up";
      }
    }
    char row[512];
    snprintf(row, sizeof(row), "%4u  %6s  %5s  %5s  %8s  %4d  %6d  %6.2f  %s", seed,
             Field(ember.out, "writes").c_str(), Field(ember.out, "reads").c_str(),
             Field(ember.out, "inits").c_str(), Field(ember.out, "ms").c_str(), ember.exit_code,
             ember.signal, ember.seconds, fs_state.c_str());
    rows.push_back(row);
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  printf(
      "hostile guest, %u rounds per seed, devices: drive, virtio-fs (virtiofsd), "
      "virtio-net (testpmd)%s, vsock, entropy\n",
      kRounds, netns ? ", TAP" : "");
  printf("seed  writes  reads  inits  guest_ms  exit  signal  wall_s  virtiofsd\n");
  for (const std::string& row : rows) printf("%s\n", row.c_str());
  printf("%zu seeds in %.1f s; testpmd %s\n", rows.size(), total,
         Running(testpmd_->pid()) ? "still running" : "GONE");
  EXPECT_TRUE(Running(testpmd_->pid())) << testpmd_->Log();
}

}  // namespace
}  // namespace ember::testing
