// API benchmark: starts `ember --api-sock`, measures how long until the
// socket answers (wall time from fork, and the process's CPU time read from
// /proc/<pid>/task/*/schedstat), then request latency (p50, p99, one
// client, one request per keep-alive connection reuse) and throughput (N
// clients on keep-alive connections) for GET / and PUT /machine-config.
//
//   api_bench EMBER_BINARY [--requests N] [--clients N] [--starts N]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends one request on a keep-alive connection and reads one response
// (headers plus Content-Length bytes). Returns the status or -1.
int Exchange(int fd, const std::string& request) {
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) return -1;
  std::string data;
  char buffer[4096];
  size_t header_end = std::string::npos;
  size_t need = 0;
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return -1;
    data.append(buffer, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      size_t length = data.find("Content-Length: ");
      need =
          header_end + 4 +
          (length != std::string::npos && length < header_end ? std::stoul(data.substr(length + 16))
                                                              : 0);
    }
    if (data.size() >= need) return std::stoi(data.substr(9, 3));
  }
}

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}
std::string Put(const std::string& path, const std::string& body) {
  return "PUT " + path +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

uint64_t ProcessCpuNanos(pid_t pid) {
  uint64_t total = 0;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return 0;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream stat(dir + "/" + entry->d_name + "/schedstat");
    uint64_t on_cpu = 0;
    stat >> on_cpu;
    total += on_cpu;
  }
  closedir(tasks);
  return total;
}

struct Started {
  pid_t pid;
  double answer_ms;
  double cpu_ms;
};

Started StartEmber(const std::string& ember, const std::string& socket_path) {
  unlink(socket_path.c_str());
  auto begin = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(ember.c_str(), ember.c_str(), "--api-sock", socket_path.c_str(), "--level", "Warning",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  while (true) {
    int fd = Connect(socket_path);
    if (fd >= 0) {
      int status = Exchange(fd, Get("/"));
      close(fd);
      if (status == 200) break;
    }
    if (Ms(Clock::now() - begin) > 5000) {
      std::fprintf(stderr, "api_bench: ember did not answer within 5 s\n");
      std::exit(1);
    }
  }
  double answer_ms = Ms(Clock::now() - begin);
  return {pid, answer_ms, ProcessCpuNanos(pid) / 1e6};
}

void Stop(pid_t pid) {
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

void Measure(const std::string& socket_path, const std::string& name, const std::string& request,
             int requests, int clients, int expected_status) {
  // Latency: one client, sequential requests on one connection.
  int fd = Connect(socket_path);
  std::vector<double> latencies;
  for (int i = 0; i < requests; ++i) {
    auto begin = Clock::now();
    if (Exchange(fd, request) != expected_status) {
      std::fprintf(stderr, "api_bench: %s answered unexpectedly\n", name.c_str());
      std::exit(1);
    }
    latencies.push_back(Ms(Clock::now() - begin) * 1000);
  }
  close(fd);
  // Throughput: `clients` connections at once.
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  auto begin = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      int conn = Connect(socket_path);
      for (int i = 0; i < requests / clients; ++i) {
        if (Exchange(conn, request) == expected_status) ++done;
      }
      close(conn);
    });
  }
  for (auto& thread : threads) thread.join();
  double seconds = Ms(Clock::now() - begin) / 1000;
  std::printf("%-24s p50 %7.1f us  p99 %7.1f us  %8.0f requests/s (%d clients)\n", name.c_str(),
              Percentile(latencies, 0.50), Percentile(latencies, 0.99), done / seconds, clients);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: api_bench EMBER_BINARY [--requests N] [--clients N] [--starts N]\n");
    return 2;
  }
  std::string ember = argv[1];
  int requests = 20000, clients = 2, starts = 10;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--requests") requests = value;
    if (flag == "--clients") clients = value;
    if (flag == "--starts") starts = value;
  }
  std::string socket_path = "/tmp/ember-api-bench-" + std::to_string(getpid()) + ".sock";

  std::vector<double> answer, cpu;
  for (int i = 0; i < starts; ++i) {
    Started started = StartEmber(ember, socket_path);
    answer.push_back(started.answer_ms);
    cpu.push_back(started.cpu_ms);
    Stop(started.pid);
  }
  std::printf("%-24s median %.2f ms wall, %.2f ms CPU (%d starts)\n", "socket answers after exec",
              Percentile(answer, 0.5), Percentile(cpu, 0.5), starts);

  Started started = StartEmber(ember, socket_path);
  Measure(socket_path, "GET /", Get("/"), requests, clients, 200);
  Measure(socket_path, "PUT /machine-config",
          Put("/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})"), requests, clients,
          204);
  Stop(started.pid);
  return 0;
}
