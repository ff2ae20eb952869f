// ember-jailer with Firecracker's jailer command line: the refusals and
// their messages, and a jailed ember booting the test guest on KVM, seen
// from outside (/proc): its uid/gid and seccomp, a root that holds only the
// jail, the cgroup limit, rlimits, no inherited fds, the network namespace;
// daemonized in a new PID namespace; and a jail where /dev/kvm cannot be
// opened. Needs root (and /dev/kvm for the boots); skips, saying so.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

const std::string kJailer = EMBER_JAILER_BINARY;
constexpr uint32_t kNobody = 65534;

ProcessResult Jailer(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kJailer};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, 30000);
}

std::string StatusField(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "";
}

class JailerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "not root: the jailer mounts, mknods and changes uid";
  }
  // Firecracker's rules: the jail of `id` is <base>/ember/<id>/root.
  std::string Root(const std::string& id) const {
    return std::filesystem::canonical(base_.path()).string() + "/ember/" + id + "/root";
  }
  // What a platform puts in the jail before starting it (Kata bind-mounts).
  void PlaceGuest(const std::string& root) {
    std::filesystem::create_directories(root);
    std::filesystem::copy_file(std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf",
                               root + "/guest.elf");
    chmod((root + "/guest.elf").c_str(), 0644);
  }
  std::vector<std::string> Base(const std::string& id) const {
    return {"--id",  id,      "--exec-file", EMBER_BINARY,        "--uid",
            "65534", "--gid", "65534",       "--chroot-base-dir", base_.path()};
  }
  TempDir base_;
};

TEST_F(JailerTest, RefusesBadArgumentsWithFirecrackersMessages) {
  auto refused = [&](const std::vector<std::string>& args, const std::string& message) {
    ProcessResult result = Jailer(args);
    EXPECT_EQ(result.exit_code, 1) << message;
    EXPECT_NE(result.err.find(message), std::string::npos) << "got: " << result.err;
  };
  auto with = [&](std::vector<std::string> args, const std::string& flag,
                  const std::string& value) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == flag) {
        args[i + 1] = value;
        return args;
      }
    }
    args.push_back(flag);
    args.push_back(value);
    return args;
  };
  const std::vector<std::string> good = Base("vm-1");
  refused(with(good, "--id", "../x"), "Invalid instance ID: Invalid char (.) at position 0");
  refused(with(good, "--id", "a_b"), "Invalid instance ID: Invalid char (_) at position 1");
  refused(with(good, "--id", ""),
          "Invalid instance ID: Invalid len (0);  the length must be between 1 and 64");
  refused(with(good, "--id", std::string(65, 'a')), "Invalid len (65)");
  refused(with(good, "--exec-file", "/no/such/ember"),
          "Failed to canonicalize path /no/such/ember: No such file or directory (os error 2)");
  refused(with(good, "--exec-file", "/bin/true"),
          "The filename of `--exec-file` option must contain \"ember\" or \"firecracker\": true");
  refused(with(good, "--uid", "nobody"), "Invalid uid: nobody");
  refused(with(good, "--gid", "-1"), "Invalid gid: -1");
  refused(with(good, "--chroot-base-dir", "/no/such/dir"),
          "Failed to canonicalize path /no/such/dir");
  refused(with(good, "--cgroup", "memory"), "Invalid format for cgroups: memory");
  refused(with(good, "--cgroup", "../x.max=1"), "Cgroup invalid file: ../x.max=1");
  refused(with(good, "--parent-cgroup", "/abs"), "Parent cgroup path is invalid.");
  refused(with(good, "--resource-limit", "cpu=1"), "Invalid resource argument: cpu");
  refused(with(good, "--resource-limit", "no-file=many"), "Invalid limit value for resource: many");
  refused(with(good, "--cgroup-version", "3"), "Invalid cgroup version: 3");
  refused({"--id", "x"},
          "Failed to parse arguments: Argument 'exec-file' required, but not found.");
  refused({"--foo"}, "Failed to parse arguments: Found argument 'foo' which wasn't expected");
  refused(
      with(good, "--netns", "--daemonize"),
      "Failed to parse arguments: The argument 'netns' requires a value, but none was supplied.");
  std::vector<std::string> twice = good;
  twice.insert(twice.end(), {"--uid", "1"});
  refused(twice, "Failed to parse arguments: The argument 'uid' was provided more than once.");
  // A step that fails after the jail was begun leaves nothing behind.
  refused(with(good, "--netns", "/no/such/netns"),
          "Failed to join network namespace: /no/such/netns");
  EXPECT_FALSE(std::filesystem::exists(base_.path() + "/ember")) << "a half-made jail was left";
  EXPECT_EQ(Jailer({"--version"}).exit_code, 0);
  ProcessResult help = Jailer({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--chroot-base-dir"), std::string::npos);
}

TEST_F(JailerTest, JailedEmberBootsTheGuestAndHoldsNothingElse) {
  if (access("/dev/kvm", R_OK | W_OK) != 0)
    GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  const std::string id = "jail-" + std::to_string(getpid());
  const std::string root = Root(id);
  PlaceGuest(root);
  const std::string netns = "ember-jail-" + std::to_string(getpid());
  ASSERT_EQ(RunProcess({"/usr/sbin/ip", "netns", "add", netns}, 10000).exit_code, 0);
  const std::string cgroup = "/sys/fs/cgroup/memory/ember/" + id;
  // However the test ends: the namespace and the cgroup go (the cgroup once
  // its process is gone, which the test waits for).
  struct Cleanup {
    std::string netns, cgroup;
    ~Cleanup() {
      rmdir(cgroup.c_str());
      rmdir(cgroup.substr(0, cgroup.rfind('/')).c_str());
      RunProcess({"/usr/sbin/ip", "netns", "del", netns}, 10000);
    }
  } cleanup{netns, cgroup};
  const bool cgroup_v1_memory = std::filesystem::exists("/sys/fs/cgroup/memory/cgroup.procs");
  // An fd the jailer's parent leaks (no O_CLOEXEC): the VMM must not have it.
  int leaked[2];
  ASSERT_EQ(pipe(leaked), 0);
  struct stat leaked_info {};
  fstat(leaked[0], &leaked_info);

  std::vector<std::string> args = Base(id);
  args.insert(args.end(),
              {"--netns", "/var/run/netns/" + netns, "--resource-limit", "no-file=1024"});
  if (cgroup_v1_memory) args.insert(args.end(), {"--cgroup", "memory.limit_in_bytes=536870912"});
  args.insert(args.end(), {"--", "--api-sock", "/run/api.sock"});
  const std::string out = base_.File("out");
  pid_t jailer = fork();
  if (jailer == 0) {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv = {const_cast<char*>(kJailer.c_str())};
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(leaked[0]);
  close(leaked[1]);
  const std::string api = root + "/run/api.sock";
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(api); }, 20)) << ReadFile(out);
  // The jailer became ember (no daemonize, no PID namespace): same pid.
  EXPECT_EQ(ReadFile(root + "/ember.pid"), std::to_string(jailer));
  json boot{{"kernel_image_path", "/guest.elf"},
            {"boot_args", "console=ttyS0 ember.tests=cmdline,ctrlaltdel"}};
  EXPECT_EQ(HttpRequest(api, "PUT", "/boot-source", boot.dump()).status, 204);
  EXPECT_EQ(HttpRequest(api, "PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204)
      << ReadFile(out);
  ASSERT_TRUE(WaitUntil(
      [&] { return ReadFile(out).find("waiting for ctrl-alt-del") != std::string::npos; }, 30))
      << ReadFile(out);

  const std::string proc = "/proc/" + std::to_string(jailer);
  EXPECT_EQ(StatusField(jailer, "Uid").substr(0, 5), "65534") << StatusField(jailer, "Uid");
  EXPECT_EQ(StatusField(jailer, "Gid").substr(0, 5), "65534") << StatusField(jailer, "Gid");
  EXPECT_EQ(StatusField(jailer, "Seccomp"), "2");
  EXPECT_EQ(StatusField(jailer, "Groups"), "");
  // Its root is the jail: the guest is there, the host's files are not.
  EXPECT_TRUE(std::filesystem::exists(proc + "/root/guest.elf"));
  ASSERT_TRUE(std::filesystem::exists("/etc/passwd"));
  EXPECT_FALSE(std::filesystem::exists(proc + "/root/etc/passwd"));
  EXPECT_FALSE(std::filesystem::exists(proc + "/root/usr/bin"));
  EXPECT_TRUE(std::filesystem::exists(proc + "/root/dev/kvm"));
  // Limits, fds, network namespace.
  EXPECT_NE(ReadFile(proc + "/limits").find("Max open files            1024                 1024"),
            std::string::npos)
      << ReadFile(proc + "/limits");
  for (const auto& entry : std::filesystem::directory_iterator(proc + "/fd")) {
    std::error_code error;
    const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
    EXPECT_NE(target, "pipe:[" + std::to_string(leaked_info.st_ino) + "]") << "an inherited fd";
  }
  struct stat ns_inside {
  }, ns_wanted{};
  ASSERT_EQ(stat((proc + "/ns/net").c_str(), &ns_inside), 0);
  ASSERT_EQ(stat(("/var/run/netns/" + netns).c_str(), &ns_wanted), 0);
  EXPECT_EQ(ns_inside.st_ino, ns_wanted.st_ino) << "the netns was not joined";
  if (cgroup_v1_memory) {
    EXPECT_EQ(ReadFile(cgroup + "/memory.limit_in_bytes"), "536870912\n");
    EXPECT_NE(ReadFile(cgroup + "/tasks").find(std::to_string(jailer)), std::string::npos);
  }

  EXPECT_EQ(HttpRequest(api, "PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status,
            204);
  int status = 0;
  ASSERT_TRUE(WaitUntil([&] { return waitpid(jailer, &status, WNOHANG) == jailer; }, 20));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("ember-guest: ctrl-alt-del received"), std::string::npos)
      << ReadFile(out);
}

TEST_F(JailerTest, DaemonizedInANewPidNamespace) {
  const std::string id = "daemon-" + std::to_string(getpid());
  const std::string root = Root(id);
  std::vector<std::string> args = Base(id);
  args.insert(args.end(), {"--daemonize", "--new-pid-ns", "--", "--api-sock", "/run/api.sock"});
  ProcessResult jailer = Jailer(args);
  ASSERT_EQ(jailer.exit_code, 0) << jailer.err;
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(root + "/ember.pid"); }, 10));
  const pid_t pid = std::stoi(ReadFile(root + "/ember.pid"));
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(root + "/run/api.sock"); }, 20));
  // Pid 1 of its own namespace.
  EXPECT_EQ(StatusField(pid, "NSpid"), std::to_string(pid) + "\t1");
  HttpResponse info = HttpRequest(root + "/run/api.sock", "GET", "/");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(json::parse(info.body)["id"], id) << "the jailer passes --id";
  // A session of its own (the double fork leaves it no session leader, so
  // it can never take a terminal), as Firecracker's jailer does.
  EXPECT_NE(getsid(pid), getsid(0));
  EXPECT_NE(getsid(pid), pid);
  kill(pid, SIGTERM);
  EXPECT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }, 20));
}

TEST_F(JailerTest, ADaemonizedJailerStillReportsALateFailure) {
  // A stale pid file in a reused jail: the step after the forks fails, and
  // the launcher hears it (exit 1 and the reason), not a silent 0.
  const std::string id = "stale";
  const std::string root = Root(id);
  std::filesystem::create_directories(root);
  WriteFile(root + "/ember.pid", "1");
  std::vector<std::string> args = Base(id);
  args.insert(args.end(), {"--daemonize", "--", "--no-api", "--config-file", "/none.json"});
  ProcessResult result = Jailer(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("Failed to open file /ember.pid: File exists"), std::string::npos)
      << result.err;
}

TEST_F(JailerTest, AJailWithoutDevicesSaysWhyKvmCannotOpen) {
  // A base on a nodev mount: /dev/kvm in the jail exists but cannot be opened.
  // Room for the sanitizer build's ember (about 100 MiB) too.
  ASSERT_EQ(mount("tmpfs", base_.path().c_str(), "tmpfs", MS_NODEV, "size=512m"), 0);
  const std::string id = "nodev";
  const std::string root = Root(id);
  PlaceGuest(root);
  WriteFile(root + "/vm.json", R"({"boot-source": {"kernel_image_path": "/guest.elf"}})");
  std::vector<std::string> args = Base(id);
  args.insert(args.end(), {"--", "--no-api", "--config-file", "/vm.json"});
  ProcessResult result = Jailer(args);
  umount2(base_.path().c_str(), MNT_DETACH);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("no permission to open /dev/kvm (Permission denied)"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace ember::testing
