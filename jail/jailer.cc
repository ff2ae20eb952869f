#include "jail/jailer.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/sys_error.h"
#include "jail/cgroups.h"

extern char** environ;

namespace ember {
namespace {

std::string Errno() { return IoErrorText(); }

uint64_t CpuMicros() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
}

// What the jailer made, removed again in reverse if a later step fails.
// Paths are the host's until the pivot, the jail's after it.
class Undo {
 public:
  void Made(std::string path, bool is_dir) { made_.push_back({std::move(path), is_dir}); }
  // Inside the jail from now on: paths under `root` become jail paths; the
  // others are out of reach.
  void Pivoted(const std::string& root) {
    std::vector<Entry> kept;
    for (Entry& entry : made_) {
      if (entry.path == root) continue;  // the jail root itself: its parent is gone
      if (entry.path.rfind(root + "/", 0) == 0)
        kept.push_back({entry.path.substr(root.size()), entry.is_dir});
    }
    made_ = std::move(kept);
  }
  void Run() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      (void)(it->is_dir ? rmdir(it->path.c_str()) : unlink(it->path.c_str()));
    }
    made_.clear();
  }
  void Forget() { made_.clear(); }

 private:
  struct Entry {
    std::string path;
    bool is_dir;
  };
  std::vector<Entry> made_;
};

// Every directory of `path` that exists must be a real directory, not a
// symlink: a jail reused after its VMM (the jail's owner) was taken over
// could otherwise point the jailer, which runs as root, at host files.
Status MakeDirs(const std::string& path, mode_t mode, Undo& undo) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    if (mkdir(prefix.c_str(), mode) == 0) {
      undo.Made(prefix, /*is_dir=*/true);
      continue;
    }
    if (errno != EEXIST) return Status::Error("Failed to create folder " + prefix + ": " + Errno());
    struct stat info {};
    if (lstat(prefix.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      return Status::Error("Failed to create folder " + prefix +
                           ": it exists and is not a directory (a symlink is refused)");
    }
  }
  return Status::Ok();
}

// Copies `from` to `to` (refusing a symlink or a hard link there), with
// `from`'s mode, owned by uid:gid.
Status CopyFile(const std::string& from, const std::string& to, uid_t uid, gid_t gid, Undo& undo) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::Error("Failed to open " + from + ": " + Errno());
  struct stat source {};
  fstat(in, &source);
  const bool existed = access(to.c_str(), F_OK) == 0;
  // O_NONBLOCK: a FIFO planted there must not hang the jailer.
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                       source.st_mode & 07777);
  if (out < 0) {
    close(in);
    return Status::Error("Failed to copy " + from + " to " + to + ": " + Errno());
  }
  if (!existed) undo.Made(to, /*is_dir=*/false);
  struct stat target {};
  fstat(out, &target);
  Status status = Status::Ok();
  if (!S_ISREG(target.st_mode)) status = Status::Error(to + " exists and is not a regular file");
  if (status.ok() && target.st_nlink > 1) status = Status::Error("Detected hard link at: " + to);
  if (status.ok() && (ftruncate(out, 0) != 0 || fchown(out, uid, gid) != 0 ||
                      fchmod(out, source.st_mode & 07777) != 0)) {
    status = Status::Error("Failed to copy " + from + " to " + to + ": " + Errno());
  }
  char buffer[1 << 16];
  while (status.ok()) {
    ssize_t n = read(in, buffer, sizeof(buffer));
    if (n == 0) break;
    const ssize_t written = n < 0 ? -1 : write(out, buffer, static_cast<size_t>(n));
    if (written != n) {
      // A short write sets no errno: the file system is full.
      status = Status::Error("Failed to copy " + from + " to " + to + ": " +
                             (written >= 0 ? std::string("short write, no space left") : Errno()));
    }
  }
  close(in);
  close(out);
  return status;
}

// The shared libraries `binary` links, as the dynamic loader resolves them
// (ldd); none for a static binary such as Firecracker's.
Result<std::vector<std::string>> SharedLibraries(const std::string& binary) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::Error("pipe: " + Errno());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const char* argv[] = {"/usr/bin/ldd", binary.c_str(), nullptr};
  const char* envp[] = {"PATH=/usr/bin:/bin", nullptr};
  pid_t child = -1;
  const int spawned = posix_spawn(&child, argv[0], &actions, nullptr, const_cast<char**>(argv),
                                  const_cast<char**>(envp));
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return Status::Error("Failed to run /usr/bin/ldd on " + binary + ": " + std::strerror(spawned));
  }
  std::string output;
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0)
    output.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int wait_status = 0;
  waitpid(child, &wait_status, 0);
  std::vector<std::string> libraries;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first, arrow, path;
    words >> first >> arrow >> path;
    if (arrow == "=>" && !path.empty() && path[0] == '/') libraries.push_back(path);
    if (!first.empty() && first[0] == '/') libraries.push_back(first);  // the loader
  }
  return libraries;
}

std::optional<unsigned> MiscMinor(const std::string& name) {
  std::ifstream misc("/proc/misc");
  unsigned minor;
  std::string entry;
  while (misc >> minor >> entry) {
    if (entry == name) return minor;
  }
  return std::nullopt;
}

Status MakeDevice(const std::string& path, unsigned major_number, unsigned minor_number, uid_t uid,
                  gid_t gid, Undo& undo) {
  if (mknod(path.c_str(), S_IFCHR | S_IRUSR | S_IWUSR, makedev(major_number, minor_number)) != 0) {
    return Status::Error("Failed to create " + path + " via mknod inside the jail: " + Errno());
  }
  undo.Made(path, /*is_dir=*/false);
  if (chown(path.c_str(), uid, gid) != 0) {
    return Status::Error("Failed to change owner for " + path + ": " + Errno());
  }
  return Status::Ok();
}

// `pivoted` says whether the jail is the root now (paths change then).
Status EnterJail(const std::string& root, bool& pivoted) {
  pivoted = false;
  if (unshare(CLONE_NEWNS) != 0)
    return Status::Error("Failed to unshare into new mount namespace: " + Errno());
  // Nothing mounted in the jail's namespace from here on reaches the host.
  if (mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    return Status::Error("Failed to make / a slave mount: " + Errno());
  }
  if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Status::Error("Failed to bind mount the jail root directory: " + Errno());
  }
  if (chdir(root.c_str()) != 0)
    return Status::Error("Failed to change the current directory: " + Errno());
  if (mkdir("old_root", 0600) != 0)
    return Status::Error("Failed to create the old_root folder: " + Errno());
  if (syscall(SYS_pivot_root, ".", "old_root") != 0) {
    const Status failed = Status::Error("Failed to pivot_root: " + Errno());
    rmdir("old_root");
    return failed;
  }
  pivoted = true;
  if (chdir("/") != 0) return Status::Error("Failed to change the current directory: " + Errno());
  if (umount2("old_root", MNT_DETACH) != 0)
    return Status::Error("Failed to unmount old_root: " + Errno());
  if (rmdir("old_root") != 0) return Status::Error("Failed to remove old_root: " + Errno());
  return Status::Ok();
}

Status WritePidFile(const std::string& path, pid_t pid) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error("Failed to open file " + path + ": " + Errno());
  const std::string text = std::to_string(pid);
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) return Status::Error("Failed to write to " + path + ": " + Errno());
  return Status::Ok();
}

}  // namespace

Status RunJailer(const JailerArgs& args, const JailerClock& clock) {
  Undo undo;
  auto fail = [&](Status status) {
    undo.Run();
    return status;
  };
  const std::string root = args.chroot_dir();
  const std::string name = args.exec_name();
  Status made = MakeDirs(root, 0755, undo);
  if (!made.ok()) return fail(made);

  // The VMM, owned by its user, and the libraries it links (owned by root:
  // the jailed user reads them, never changes them).
  made = CopyFile(args.exec_file, root + "/" + name, args.uid, args.gid, undo);
  if (!made.ok()) return fail(made);
  // ember loads its API server from libember_api.so beside the binary.
  const std::string module =
      args.exec_file.substr(0, args.exec_file.rfind('/') + 1) + "libember_api.so";
  std::vector<std::string> binaries = {args.exec_file};
  if (access(module.c_str(), R_OK) == 0) {
    made = CopyFile(module, root + "/libember_api.so", 0, 0, undo);
    if (!made.ok()) return fail(made);
    binaries.push_back(module);
  }
  std::vector<std::string> libraries;
  for (const std::string& binary : binaries) {
    Result<std::vector<std::string>> needed = SharedLibraries(binary);
    if (!needed.ok()) return fail(needed.status());
    for (const std::string& library : *needed) {
      if (std::find(libraries.begin(), libraries.end(), library) == libraries.end()) {
        libraries.push_back(library);
      }
    }
  }
  for (const std::string& library : libraries) {
    const std::string target = root + library;
    made = MakeDirs(target.substr(0, target.rfind('/')), 0755, undo);
    if (made.ok()) {
      char resolved[PATH_MAX];
      const std::string source = realpath(library.c_str(), resolved) ? resolved : library;
      made = CopyFile(source, target, 0, 0, undo);
    }
    if (!made.ok()) return fail(made);
  }

  if (args.netns) {
    const int netns = open(args.netns->c_str(), O_RDONLY | O_CLOEXEC);
    if (netns < 0 || setns(netns, CLONE_NEWNET) != 0) {
      const std::string reason = Errno();
      if (netns >= 0) close(netns);
      return fail(
          Status::Error("Failed to join network namespace: " + *args.netns + ": " + reason));
    }
    close(netns);
  }

  const rlimit files{args.no_file, args.no_file};
  if (args.fsize) {
    const rlimit size{*args.fsize, *args.fsize};
    if (setrlimit(RLIMIT_FSIZE, &size) != 0)
      return fail(Status::Error("Failed to set fsize limit: " + Errno()));
  }
  if (setrlimit(RLIMIT_NOFILE, &files) != 0)
    return fail(Status::Error("Failed to set no-file limit: " + Errno()));

  if (!args.cgroups.empty()) {
    CgroupRequest request{args.cgroup_version, args.parent_cgroup.value_or(name), args.id,
                          args.cgroups};
    std::vector<std::string> dirs;
    Status joined = JoinCgroups(request, getpid(), dirs);
    if (!joined.ok()) return fail(joined);
  }

  int dev_null = -1;
  if (args.daemonize) {
    dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (dev_null < 0) return fail(Status::Error("Failed to open /dev/null: " + Errno()));
  }
  const std::optional<unsigned> userfaultfd_minor = MiscMinor("userfaultfd");

  bool pivoted = false;
  Status entered = EnterJail(root, pivoted);
  if (pivoted) undo.Pivoted(root);
  if (!entered.ok()) return fail(entered);

  for (const char* dir : {"/dev", "/dev/net", "/run"}) {
    made = MakeDirs(dir, 0700, undo);
    if (made.ok() && (chmod(dir, 0700) != 0 || chown(dir, args.uid, args.gid) != 0)) {
      made = Status::Error(std::string("Failed to change owner for ") + dir + ": " + Errno());
    }
    if (!made.ok()) return fail(made);
  }
  if (chmod("/", 0700) != 0 || chown("/", args.uid, args.gid) != 0) {
    return fail(Status::Error("Failed to change owner for the jail root: " + Errno()));
  }
  made = MakeDevice("/dev/net/tun", 10, 200, args.uid, args.gid, undo);
  if (made.ok()) made = MakeDevice("/dev/kvm", 10, 232, args.uid, args.gid, undo);
  if (made.ok() && userfaultfd_minor) {
    made = MakeDevice("/dev/userfaultfd", 10, *userfaultfd_minor, args.uid, args.gid, undo);
  }
  if (!made.ok()) return fail(made);
  // Not fatal, as in Firecracker (it only feeds MMDS tokens there).
  if (Status urandom = MakeDevice("/dev/urandom", 1, 9, args.uid, args.gid, undo); !urandom.ok()) {
    std::printf("Warning: %s\n", urandom.message().c_str());
  }

  uint64_t parent_cpu_us = CpuMicros() - clock.start_cpu_us;
  // A process that leaves before the exec (daemonize, new PID namespace)
  // waits until the VMM's exec closes this pipe, or reads its error from
  // it: the launcher's exit status says whether the VMM started.
  int report[2] = {-1, -1};
  if ((args.daemonize || args.new_pid_ns) && pipe2(report, O_CLOEXEC) != 0) {
    return fail(Status::Error("Failed to create a pipe: " + Errno()));
  }
  bool detached = false;  // this process is not the one the launcher started
  auto finish_parent = [&](int status) {
    close(report[1]);
    std::string error;
    char buffer[512];
    ssize_t n;
    while ((n = read(report[0], buffer, sizeof(buffer))) > 0)
      error.append(buffer, static_cast<size_t>(n));
    if (!error.empty()) {
      std::fprintf(stderr, "%s\n", error.c_str());
      _exit(1);
    }
    _exit(status);
  };
  auto fail_late = [&](const Status& status) {
    undo.Run();
    if (detached && report[1] >= 0) {
      (void)!write(report[1], status.message().data(), status.message().size());
      _exit(1);
    }
    return status;
  };
  if (args.daemonize) {
    // Double fork: the VMM is no session leader and cannot get a terminal.
    pid_t child = fork();
    if (child < 0) return fail(Status::Error("Failed to fork: " + Errno()));
    if (child > 0) finish_parent(0);
    detached = true;
    setsid();
    child = fork();
    if (child < 0) return fail_late(Status::Error("Failed to fork: " + Errno()));
    if (child > 0) _exit(0);
    dup2(dev_null, 0);
    dup2(dev_null, 1);
    dup2(dev_null, 2);
  }
  const std::string pid_file = "/" + name + ".pid";
  if (args.new_pid_ns) {
    const bool leader = getsid(0) == getpid();
    const long child = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (child < 0)
      return fail_late(Status::Error("Failed to clone into a new PID namespace: " + Errno()));
    if (child > 0) {
      Status written = WritePidFile(pid_file, static_cast<pid_t>(child));
      if (!written.ok()) {
        kill(static_cast<pid_t>(child), SIGKILL);
        return fail_late(written);
      }
      if (detached) _exit(0);  // the launcher's process waits on the pipe
      finish_parent(0);
    }
    detached = true;
    if (leader) setsid();
  } else {
    Status written = WritePidFile(pid_file, getpid());
    if (!written.ok()) return fail_late(written);
  }
  undo.Forget();  // the jail stands; the VMM's user owns it from here

  std::vector<std::string> argv = {"/" + name,
                                   "--id",
                                   args.id,
                                   "--start-time-us",
                                   std::to_string(clock.start_us),
                                   "--start-time-cpu-us",
                                   std::to_string(CpuMicros()),
                                   "--parent-cpu-time-us",
                                   std::to_string(parent_cpu_us)};
  argv.insert(argv.end(), args.exec_args.begin(), args.exec_args.end());
  std::vector<char*> raw;
  for (std::string& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);
  if (setgid(args.gid) != 0) {
    return fail_late(
        Status::Error("Failed to set gid " + std::to_string(args.gid) + ": " + Errno()));
  }
  // The launcher's supplementary groups (disk, docker, ...) must not follow.
  if (setgroups(0, nullptr) != 0) {
    return fail_late(Status::Error("Failed to drop supplementary groups: " + Errno()));
  }
  if (setuid(args.uid) != 0) {
    return fail_late(
        Status::Error("Failed to set uid " + std::to_string(args.uid) + ": " + Errno()));
  }
  char* empty_environment[] = {nullptr};
  execve(raw[0], raw.data(), empty_environment);
  return fail_late(Status::Error("Failed to exec into ember: " + Errno()));
}

}  // namespace ember
