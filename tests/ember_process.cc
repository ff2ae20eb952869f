#include "tests/ember_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

int ConnectUnix(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

HttpResponse HttpRequest(const std::string& socket_path, const std::string& method,
                         const std::string& path, const std::string& body, int timeout_ms) {
  HttpResponse response;
  int fd = ConnectUnix(socket_path);
  if (fd < 0) return response;
  std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "PATCH") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) before reading it all
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd pfd{fd, POLLIN, 0};
  while (poll(&pfd, 1, MillisLeft(deadline)) > 0) {
    char buffer[8192];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    raw.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0) return response;
  response.status = std::stoi(raw.substr(9, 3));
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end != std::string::npos) response.body = raw.substr(header_end + 4);
  return response;
}

std::string Fault(const HttpResponse& response) {
  try {
    return nlohmann::json::parse(response.body).at("fault_message").get<std::string>();
  } catch (const std::exception&) {
    return "<no fault_message in: " + response.body + ">";
  }
}

EmberProcess::EmberProcess(const TempDir& dir, const std::vector<std::string>& args,
                           const std::vector<std::string>& wrapper)
    : dir_(dir.path()), socket_(dir.File("api.sock")) {
  std::vector<std::string> argv = wrapper;
  for (const std::string& arg : {std::string(EMBER_BINARY), std::string("--api-sock"), socket_}) {
    argv.push_back(arg);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = fork();
  if (pid_ == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open((dir_ + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> raw;
    for (const std::string& arg : argv) raw.push_back(const_cast<char*>(arg.c_str()));
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    int fd = ConnectUnix(socket_);
    if (fd >= 0) {
      close(fd);
      started_ = true;
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      killed_by_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

EmberProcess::~EmberProcess() {
  if (pid_ <= 0 || reaped_) return;
  kill(pid_, SIGTERM);
  if (WaitForExit(5000) == -1 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool EmberProcess::WaitForOutput(const std::string& text, int timeout_ms) const {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (Stdout().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

int EmberProcess::WaitForExit(int timeout_ms) {
  if (reaped_) return exit_code_;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      killed_by_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

void EmberProcess::Signal(int signal) const {
  if (!reaped_) kill(pid_, signal);
}

}  // namespace ember::testing
