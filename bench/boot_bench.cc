// boot_bench: run a command N times and measure how fast it produces output
// and exits, how much CPU it burns and how much memory it peaks at.
//
//   boot_bench [options] -- CMD [ARGS...]
//
// Per run (fork + exec, child's stdout on a pipe):
//   first_output  wall time from just before fork() to the first stdout byte
//   marker        (with --marker STR) wall time until STR appeared on stdout
//   exit          wall time from just before fork() to the child's exit
//   cpu           user + system time of the child (wait4 rusage)
//   peak_rss      ru_maxrss of the child (wait4 rusage), KiB
// The report gives the median of each over the successful runs.
//
// A run fails when it exceeds the timeout (it is killed, with its process
// group), is killed by a signal, exits with a status not accepted by
// --ok-status, never writes to stdout, or misses --expect/--marker text.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kMaxKeptOutput = 1 << 20;  // bytes of stdout kept per run for matching

struct Options {
  int runs = 20;
  int warmup = 1;
  double timeout_s = 10.0;
  std::string name;
  bool json = false;
  bool quiet = false;
  bool stdin_null = false;
  std::vector<int> ok_status{0};
  std::string expect;
  std::string marker;
  std::string stderr_path;  // empty: /dev/null
  std::string stdout_path;  // empty: discarded
  std::vector<char*> argv;  // null-terminated
};

struct Run {
  bool ok = false;
  std::string error;
  double first_output_ms = -1;
  double marker_ms = -1;
  double exit_ms = -1;
  double cpu_ms = -1;
  long peak_rss_kib = -1;
  int exit_status = -1;  // exit code, or -signal
};

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

timespec ms_to_timespec(double ms) {
  if (ms < 0) ms = 0;
  const auto ns = static_cast<long long>(ms * 1e6);
  return timespec{static_cast<time_t>(ns / 1000000000LL), static_cast<long>(ns % 1000000000LL)};
}

double tv_ms(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) * 1e3 + static_cast<double>(tv.tv_usec) / 1e3;
}

[[noreturn]] void usage(int code) {
  std::FILE* f = code == 0 ? stdout : stderr;
  std::fprintf(f,
               "usage: boot_bench [options] -- CMD [ARGS...]\n"
               "\n"
               "Runs CMD repeatedly (fork/exec, stdout on a pipe) and reports medians of\n"
               "time to first stdout byte, time to exit, CPU time and peak RSS.\n"
               "\n"
               "options:\n"
               "  -n, --runs N         measured runs (default 20)\n"
               "  -w, --warmup N       unmeasured runs first (default 1)\n"
               "  -t, --timeout SEC    per-run limit, then SIGKILL (default 10)\n"
               "      --name NAME      label for the report (default: CMD's basename)\n"
               "      --ok-status LIST exit codes counted as success, e.g. 0,1 (default 0)\n"
               "      --expect STR     a run fails unless STR appears on its stdout\n"
               "      --marker STR     also time until STR appears on stdout (implies --expect)\n"
               "      --stderr FILE    append the children's stderr to FILE (default /dev/null)\n"
               "      --stdout FILE    append the children's stdout to FILE (default: dropped)\n"
               "      --stdin-null     stdin is /dev/null (default: an empty pipe kept open)\n"
               "      --json           print a JSON object instead of the one-line summary\n"
               "  -q, --quiet          no per-run progress on stderr\n"
               "  -h, --help           this text\n"
               "\n"
               "exit status: 0 all runs ok, 1 some run failed, 2 usage error\n");
  std::exit(code);
}

bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(std::string(s).c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < -1000000 || v > 1000000) return false;
  out = static_cast<int>(v);
  return true;
}

Options parse_args(int argc, char** argv) {
  Options o;
  int i = 1;
  auto value = [&](const char* opt) -> std::string {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "boot_bench: %s needs a value\n", opt);
      usage(2);
    }
    return argv[++i];
  };
  auto int_value = [&](const char* opt, int min) {
    int v = 0;
    std::string s = value(opt);
    if (!parse_int(s, v) || v < min) {
      std::fprintf(stderr, "boot_bench: bad value '%s' for %s\n", s.c_str(), opt);
      usage(2);
    }
    return v;
  };
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") {
      ++i;
      break;
    } else if (a == "-n" || a == "--runs") {
      o.runs = int_value("--runs", 1);
    } else if (a == "-w" || a == "--warmup") {
      o.warmup = int_value("--warmup", 0);
    } else if (a == "-t" || a == "--timeout") {
      std::string s = value("--timeout");
      char* end = nullptr;
      o.timeout_s = std::strtod(s.c_str(), &end);
      if (*end != '\0' || !(o.timeout_s > 0) || o.timeout_s > 86400) {
        std::fprintf(stderr, "boot_bench: bad timeout '%s'\n", s.c_str());
        usage(2);
      }
    } else if (a == "--name") {
      o.name = value("--name");
    } else if (a == "--ok-status") {
      std::string s = value("--ok-status");
      o.ok_status.clear();
      std::size_t pos = 0;
      while (pos <= s.size()) {
        std::size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        int v = 0;
        if (!parse_int(std::string_view(s).substr(pos, comma - pos), v) || v < 0 || v > 255) {
          std::fprintf(stderr, "boot_bench: bad --ok-status '%s'\n", s.c_str());
          usage(2);
        }
        o.ok_status.push_back(v);
        pos = comma + 1;
      }
    } else if (a == "--expect") {
      o.expect = value("--expect");
    } else if (a == "--marker") {
      o.marker = value("--marker");
    } else if (a == "--stderr") {
      o.stderr_path = value("--stderr");
    } else if (a == "--stdout") {
      o.stdout_path = value("--stdout");
    } else if (a == "--stdin-null") {
      o.stdin_null = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (a == "-h" || a == "--help") {
      usage(0);
    } else {
      std::fprintf(stderr, "boot_bench: unknown option '%s'\n", argv[i]);
      usage(2);
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "boot_bench: no command given (put it after --)\n");
    usage(2);
  }
  for (; i < argc; ++i) o.argv.push_back(argv[i]);
  o.argv.push_back(nullptr);
  if (o.name.empty()) {
    std::string_view c = o.argv[0];
    std::size_t slash = c.rfind('/');
    o.name = std::string(slash == std::string_view::npos ? c : c.substr(slash + 1));
  }
  return o;
}

// pidfd_open(2) via syscall(): glibc only wraps it from 2.36 on.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// The child: wire up fds and exec. Only async-signal-safe calls here.
[[noreturn]] void exec_child(const Options& o, int out_w, int in_r, int err_fd) {
  setpgid(0, 0);  // own process group, so a timeout can kill everything it spawned
  if (dup2(in_r, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
      dup2(err_fd, STDERR_FILENO) < 0) {
    _exit(126);
  }
  // fds above 2 are O_CLOEXEC in the parent; nothing else to close.
  signal(SIGPIPE, SIG_DFL);
  execvp(o.argv[0], o.argv.data());
  _exit(127);
}

Run run_once(const Options& o, int err_fd, int out_log_fd) {
  Run r;
  int out[2] = {-1, -1};
  int in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  if (o.stdin_null) {
    in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  } else if (pipe2(in, O_CLOEXEC) != 0) {
    in[0] = -1;
  }
  if (in[0] < 0) {
    r.error = std::string("stdin: ") + std::strerror(errno);
    close_fd(out[0]);
    close_fd(out[1]);
    return r;
  }

  const double t0 = now_ms();
  const pid_t pid = fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    close_fd(out[0]);
    close_fd(out[1]);
    close_fd(in[0]);
    close_fd(in[1]);
    return r;
  }
  if (pid == 0) exec_child(o, out[1], in[0], err_fd);

  setpgid(pid, pid);  // also from the parent, to avoid the race with the child
  close_fd(out[1]);
  close_fd(in[0]);  // in[1] stays open (idle stdin) until the run is over
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  int pidfd = open_pidfd(pid);

  const double deadline = t0 + o.timeout_s * 1e3;
  std::string kept;  // start of stdout, for --expect/--marker
  std::size_t scanned = 0;
  bool exited = false, timed_out = false;
  int status = 0;
  rusage ru{};
  char buf[65536];

  // Read whatever the pipe holds, stamping it with time t (when poll woke
  // up); false at EOF.
  auto drain = [&](double t) {
    for (;;) {
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n > 0) {
        if (r.first_output_ms < 0) r.first_output_ms = t - t0;
        if (out_log_fd >= 0) {
          ssize_t ignored = write(out_log_fd, buf, static_cast<std::size_t>(n));
          (void)ignored;
        }
        if (kept.size() < kMaxKeptOutput) {
          kept.append(buf, static_cast<std::size_t>(std::min<std::size_t>(
                               static_cast<std::size_t>(n), kMaxKeptOutput - kept.size())));
        }
        if (!o.marker.empty() && r.marker_ms < 0) {
          std::size_t from = scanned >= o.marker.size() ? scanned - o.marker.size() + 1 : 0;
          if (kept.find(o.marker, from) != std::string::npos) r.marker_ms = t - t0;
          scanned = kept.size();
        }
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return true;  // EAGAIN
    }
  };

  auto reap = [&](int flags, double t) {
    pid_t w;
    do {
      w = wait4(pid, &status, flags, &ru);
    } while (w < 0 && errno == EINTR);
    if (w == pid) {
      exited = true;
      r.exit_ms = t - t0;
    }
  };

  bool eof = false;
  while (!exited) {
    const double left = deadline - now_ms();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t nfds = 0;
    if (!eof) fds[nfds++] = {out[0], POLLIN, 0};
    if (pidfd >= 0) fds[nfds++] = {pidfd, POLLIN, 0};
    // Without a pidfd, poll in 1 ms steps for the exit.
    const timespec ts = ms_to_timespec(pidfd >= 0 ? left : std::min(left, 1.0));
    int pr = nfds ? ppoll(fds, nfds, &ts, nullptr) : nanosleep(&ts, nullptr);
    const double t = now_ms();
    if (pr < 0 && errno != EINTR) {
      r.error = std::string("poll: ") + std::strerror(errno);
      timed_out = true;  // kill it below
      break;
    }
    if (!eof && !drain(t)) eof = true;
    reap(WNOHANG, t);
  }

  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    reap(0, now_ms());
    if (r.error.empty()) r.error = "timeout";
    r.exit_ms = -1;
  } else if (!eof) {
    drain(r.exit_ms + t0);  // output written just before the exit
  }
  close_fd(out[0]);
  close_fd(in[1]);
  close_fd(pidfd);
  // Whatever it left behind in its process group goes too.
  kill(-pid, SIGKILL);

  if (exited) {
    r.cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
    r.peak_rss_kib = ru.ru_maxrss;
  }
  if (!r.error.empty()) return r;

  if (WIFSIGNALED(status)) {
    r.exit_status = -WTERMSIG(status);
    r.error = std::string("killed by signal ") + std::to_string(WTERMSIG(status));
    return r;
  }
  r.exit_status = WEXITSTATUS(status);
  if (r.exit_status == 127 && r.first_output_ms < 0) {
    r.error = "exit status 127 (command not found?)";
    return r;
  }
  if (std::find(o.ok_status.begin(), o.ok_status.end(), r.exit_status) == o.ok_status.end()) {
    r.error = "exit status " + std::to_string(r.exit_status);
    return r;
  }
  if (r.first_output_ms < 0) {
    r.error = "no output on stdout";
    return r;
  }
  if (!o.expect.empty() && kept.find(o.expect) == std::string::npos) {
    r.error = "expected text not in stdout";
    return r;
  }
  if (!o.marker.empty() && r.marker_ms < 0) {
    r.error = "marker not in stdout";
    return r;
  }
  r.ok = true;
  return r;
}

template <typename T>
double median(std::vector<T> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? static_cast<double>(v[n / 2])
               : (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2;
}

struct Stat {
  double median = -1, min = -1, max = -1;
};

template <typename T>
Stat stat_of(const std::vector<T>& v) {
  Stat s;
  if (v.empty()) return s;
  s.median = median(v);
  s.min = static_cast<double>(*std::min_element(v.begin(), v.end()));
  s.max = static_cast<double>(*std::max_element(v.begin(), v.end()));
  return s;
}

std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", c);
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_num(double v, int decimals = 3) {
  if (v < 0) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string json_stat(const Stat& s, int decimals = 3) {
  return "{\"median\":" + json_num(s.median, decimals) + ",\"min\":" + json_num(s.min, decimals) +
         ",\"max\":" + json_num(s.max, decimals) + "}";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (!o.marker.empty() && o.expect.empty()) o.expect = o.marker;

  int err_fd = -1;
  if (o.stderr_path.empty()) {
    err_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  } else {
    err_fd = open(o.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (err_fd < 0) {
    std::fprintf(stderr, "boot_bench: cannot open %s: %s\n",
                 o.stderr_path.empty() ? "/dev/null" : o.stderr_path.c_str(), std::strerror(errno));
    return 2;
  }
  int out_log_fd = -1;
  if (!o.stdout_path.empty()) {
    out_log_fd = open(o.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_log_fd < 0) {
      std::fprintf(stderr, "boot_bench: cannot open %s: %s\n", o.stdout_path.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }

  std::vector<Run> runs;
  const int total = o.warmup + o.runs;
  for (int i = 0; i < total; ++i) {
    const bool warm = i < o.warmup;
    Run r = run_once(o, err_fd, out_log_fd);
    if (!o.quiet) {
      if (r.ok) {
        char marker[64] = "";
        if (r.marker_ms >= 0) std::snprintf(marker, sizeof marker, ", marker %.3f ms", r.marker_ms);
        std::fprintf(stderr,
                     "boot_bench: %s %s %d: first_output %.3f ms%s, exit %.3f ms, cpu %.3f ms, "
                     "peak_rss %ld KiB\n",
                     o.name.c_str(), warm ? "warmup" : "run", warm ? i + 1 : i - o.warmup + 1,
                     r.first_output_ms, marker, r.exit_ms, r.cpu_ms, r.peak_rss_kib);
      } else {
        std::fprintf(stderr, "boot_bench: %s %s %d: FAILED (%s)\n", o.name.c_str(),
                     warm ? "warmup" : "run", warm ? i + 1 : i - o.warmup + 1, r.error.c_str());
      }
    }
    if (!warm) runs.push_back(std::move(r));
  }

  std::vector<double> first, marker, exit_t, cpu;
  std::vector<long> rss;
  int failed = 0;
  for (const Run& r : runs) {
    if (!r.ok) {
      ++failed;
      continue;
    }
    first.push_back(r.first_output_ms);
    if (r.marker_ms >= 0) marker.push_back(r.marker_ms);
    exit_t.push_back(r.exit_ms);
    cpu.push_back(r.cpu_ms);
    rss.push_back(r.peak_rss_kib);
  }
  const int ok = static_cast<int>(runs.size()) - failed;
  const Stat s_first = stat_of(first), s_marker = stat_of(marker), s_exit = stat_of(exit_t),
             s_cpu = stat_of(cpu), s_rss = stat_of(rss);

  if (o.json) {
    std::string j = "{\"name\":" + json_str(o.name) + ",\"command\":[";
    for (std::size_t k = 0; k + 1 < o.argv.size(); ++k) {
      if (k) j += ",";
      j += json_str(o.argv[k]);
    }
    j += "],\"runs\":" + std::to_string(runs.size()) + ",\"ok\":" + std::to_string(ok) +
         ",\"failed\":" + std::to_string(failed) + ",\"warmup\":" + std::to_string(o.warmup) +
         ",\"timeout_s\":" + json_num(o.timeout_s) + ",\"first_output_ms\":" + json_stat(s_first);
    if (!o.marker.empty())
      j += ",\"marker\":" + json_str(o.marker) + ",\"marker_ms\":" + json_stat(s_marker);
    j += ",\"exit_ms\":" + json_stat(s_exit) + ",\"cpu_ms\":" + json_stat(s_cpu) +
         ",\"peak_rss_kib\":" + json_stat(s_rss, 0) + ",\"per_run\":[";
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const Run& r = runs[k];
      if (k) j += ",";
      j += "{\"ok\":" + std::string(r.ok ? "true" : "false");
      if (!r.ok) j += ",\"error\":" + json_str(r.error);
      j += ",\"exit_status\":" +
           (r.exit_status == -1 && !r.ok ? std::string("null") : std::to_string(r.exit_status)) +
           ",\"first_output_ms\":" + json_num(r.first_output_ms);
      if (!o.marker.empty()) j += ",\"marker_ms\":" + json_num(r.marker_ms);
      j += ",\"exit_ms\":" + json_num(r.exit_ms) + ",\"cpu_ms\":" + json_num(r.cpu_ms) +
           ",\"peak_rss_kib\":" +
           (r.peak_rss_kib < 0 ? std::string("null") : std::to_string(r.peak_rss_kib)) + "}";
    }
    j += "]}";
    std::printf("%s\n", j.c_str());
  } else {
    // One line of key=value pairs: readable, and easy to pick apart in shell.
    // Medians over the successful runs; "n/a" when no run succeeded.
    auto num = [](double v, int decimals) {
      if (v < 0) return std::string("n/a");
      char b[64];
      std::snprintf(b, sizeof b, "%.*f", decimals, v);
      return std::string(b);
    };
    std::string line = "name=" + o.name + " runs=" + std::to_string(runs.size()) +
                       " ok=" + std::to_string(ok) + " failed=" + std::to_string(failed) +
                       " first_output_ms=" + num(s_first.median, 3);
    if (!o.marker.empty()) line += " marker_ms=" + num(s_marker.median, 3);
    line += " exit_ms=" + num(s_exit.median, 3) + " cpu_ms=" + num(s_cpu.median, 3) +
            " peak_rss_kib=" + num(s_rss.median, 0);
    std::printf("%s\n", line.c_str());
  }
  return failed ? 1 : 0;
}
