// Fuzz target: whole raw HTTP requests through ember's real API server.
// ApiServer::Start serves a Unix socket in a scratch directory (its
// httplib::Server as ember configures it: pre-routing refusals, handlers,
// error and exception handlers, the route table), and a real Vmm, not
// started and without KVM, answers the action channel on this thread as the
// VMM thread does. Each input is written on a fresh connection, half-closed,
// and the answer read until the server closes. Invariants: the server closes
// within a bound; the answer is well-formed HTTP/1.1 responses with only
// ember's headers (no exception text) and JSON bodies (a fault_message on
// errors); no exception reaches the catch-all (api_internal_errors); a fresh
// GET / is answered afterwards (checked every 16 inputs and after silence).
// Paths that requests name (kernel, drives, backend sockets, logger, metrics,
// vsock) are moved into the scratch directory: no input touches the host's
// files. EMBER_FUZZ_API_LOG=<level> shows ember's log (default Off).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "api/action_channel.h"
#include "api/api_server.h"
#include "base/logger.h"
#include "base/metrics.h"
#include "jail/seccomp.h"
#include "vmm/vmm.h"

namespace {

using namespace ember;

// Past the server's 5 s read timeout: after our half-close it has no reason
// to wait at all.
constexpr auto kAnswerBound = std::chrono::seconds(8);
constexpr unsigned kLivenessEvery = 16;

[[noreturn]] void Fail(const std::string& why, std::string_view answer = {}) {
  std::string shown;
  for (unsigned char c : answer.substr(0, 2048)) {
    if (c == '\n' || (c >= 0x20 && c < 0x7f)) {
      shown += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      shown += hex;
    }
  }
  std::fprintf(stderr, "fuzz_api_http: %s\n%s\n", why.c_str(), shown.c_str());
  std::abort();
}

struct Harness {
  std::string dir;      // the API socket and the sandbox
  std::string sandbox;  // where the paths that requests name land
  std::string socket_path;
  std::string log_level = "Off";
  std::unique_ptr<ActionChannel> channel;
  std::unique_ptr<ApiServer> server;
  bool sandbox_touched = false;  // an action may have created or removed files there
  bool logger_changed = false;
  unsigned inputs = 0;
};

Harness* harness = nullptr;

void Plant(const Harness& h) {
  namespace fs = std::filesystem;
  const std::string& s = h.sandbox;
  std::ofstream(s + "/vmlinux", std::ios::binary) << std::string(4096, '\0');
  std::ofstream(s + "/initrd", std::ios::binary) << std::string(512, '\0');
  if (!fs::exists(s + "/rootfs.ext4")) {
    std::ofstream(s + "/rootfs.ext4", std::ios::binary).close();
    fs::resize_file(s + "/rootfs.ext4", 1 << 20);
  }
  fs::create_directories(s + "/dir");
  if (!fs::exists(s + "/fifo")) mkfifo((s + "/fifo").c_str(), 0600);
  // A socket file nobody listens on: a backend's path that exists.
  const std::string sock = s + "/backend.sock";
  if (!fs::exists(sock)) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, sock.c_str(), sock.size() + 1);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      Fail("binding " + sock + ": " + std::strerror(errno));
    }
    close(fd);
  }
}

// Removes what actions created in the sandbox and puts back what they
// removed, so that every input starts from the same files.
void ResetSandbox(Harness& h) {
  static const std::set<std::string> planted = {"vmlinux", "initrd", "rootfs.ext4",
                                                "dir",     "fifo",   "backend.sock"};
  for (const auto& entry : std::filesystem::directory_iterator(h.sandbox)) {
    if (!planted.count(entry.path().filename().string())) {
      std::error_code ignored;
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
  Plant(h);
}

void Cleanup() {
  if (harness == nullptr) return;
  harness->server.reset();
  std::error_code ignored;
  std::filesystem::remove_all(harness->dir, ignored);
}

Harness& Start() {
  if (harness != nullptr) return *harness;
  harness = new Harness();
  Harness& h = *harness;
  // libFuzzer's and the sanitizers' own system calls (reports, the
  // symbolizer) are not in the API threads' filter; seccomp has its tests.
  SetSeccompEnabled(false);
  signal(SIGPIPE, SIG_IGN);  // as main does
  // PUT /network-interfaces opens the TAP it names: here only `lo` exists
  // (when we may have a network namespace of our own).
  (void)unshare(CLONE_NEWNET);
  if (const char* level = std::getenv("EMBER_FUZZ_API_LOG")) h.log_level = level;
  if (!ConfigureLogger({h.log_level}).ok()) Fail("EMBER_FUZZ_API_LOG: unknown level");
  char dir[] = "/tmp/ember-fuzz-api-XXXXXX";
  if (mkdtemp(dir) == nullptr) Fail(std::string("mkdtemp: ") + std::strerror(errno));
  h.dir = dir;
  h.sandbox = h.dir + "/sandbox";
  h.socket_path = h.dir + "/api.sock";
  std::filesystem::create_directories(h.sandbox);
  Plant(h);
  Result<std::unique_ptr<ActionChannel>> channel = ActionChannel::Create();
  if (!channel.ok()) Fail("action channel: " + channel.status().message());
  h.channel = std::move(*channel);
  Result<std::unique_ptr<ApiServer>> server = ApiServer::Start(h.socket_path, *h.channel);
  if (!server.ok()) Fail("starting the API server: " + server.status().message());
  h.server = std::move(*server);
  std::atexit(Cleanup);
  return h;
}

// A path a request named, moved into the sandbox (its last component kept,
// bytes and all); an empty path stays empty.
std::string Sandboxed(const Harness& h, const std::string& path) {
  if (path.empty()) return path;
  std::string name = path.substr(path.rfind('/') + 1);
  if (name.empty() || name == "." || name == "..") name = "_";
  return h.sandbox + "/" + name;
}

void Sandbox(const Harness& h, std::optional<std::string>& path) {
  if (path) path = Sandboxed(h, *path);
}
void Sandbox(const Harness& h, std::string& path) { path = Sandboxed(h, path); }

// What the VMM thread answers: the real Vmm's Handle, on sandboxed paths.
VmmReply Answer(Harness& h, Vmm& vmm, const VmmAction& action) {
  VmmAction sandboxed = action;
  if (auto* put = std::get_if<PutBootSource>(&sandboxed)) {
    Sandbox(h, put->config.kernel_image_path);
    Sandbox(h, put->config.initrd_path);
  } else if (auto* logger = std::get_if<PutLogger>(&sandboxed)) {
    Sandbox(h, logger->config.log_path);
    h.sandbox_touched = h.logger_changed = true;
  } else if (auto* metrics = std::get_if<PutMetrics>(&sandboxed)) {
    Sandbox(h, metrics->path);
    h.sandbox_touched = true;
  } else if (auto* drive = std::get_if<PutDrive>(&sandboxed)) {
    Sandbox(h, drive->config.path_on_host);
    if (drive->config.socket) Sandbox(h, drive->config.socket->socket);
  } else if (auto* patch = std::get_if<PatchDrive>(&sandboxed)) {
    Sandbox(h, patch->update.path_on_host);
  } else if (auto* fs = std::get_if<PutFs>(&sandboxed)) {
    Sandbox(h, fs->config.backend.socket);
  } else if (auto* net = std::get_if<PutNetworkInterface>(&sandboxed)) {
    Sandbox(h, net->config.backend.socket);
  } else if (auto* vsock = std::get_if<PutVsock>(&sandboxed)) {
    Sandbox(h, vsock->config.uds_path);  // (a stale socket there is removed)
    h.sandbox_touched = true;
  }
  return vmm.Handle(sandboxed);
}

// Writes `request` on a fresh connection, half-closes it, and serves the
// action channel until the server closes; returns what it answered.
std::string Exchange(Harness& h, Vmm& vmm, std::string_view request) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, h.socket_path.c_str(), h.socket_path.size() + 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    Fail(std::string("the API socket refuses connections: ") + std::strerror(errno));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + kAnswerBound;
  size_t sent = 0;
  bool writing = true;
  auto finish_writing = [&] {
    shutdown(fd, SHUT_WR);
    writing = false;
  };
  if (request.empty()) finish_writing();
  std::string answer;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      Fail("the server neither finished answering nor closed the connection within 8 s", answer);
    }
    pollfd fds[2] = {{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0},
                     {h.channel->event_fd(), POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      Fail(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents & POLLIN) {
      h.channel->Drain([&](const VmmAction& action) { return Answer(h, vmm, action); });
    }
    if (writing && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      // (The server may close before it has read everything.)
      if (sent == request.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        finish_writing();
      }
    }
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      char buffer[16384];
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        answer.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        break;  // closed (ECONNRESET: with our bytes unread)
      }
    }
  }
  close(fd);
  return answer;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower;
}

// The answer: zero or more responses, back to back. A HEAD request's
// response states a Content-Length and has no body: a response that
// starts where a body would is taken as the next one (bodies are JSON).
// Returns how many responses there were.
size_t CheckAnswer(std::string_view answer) {
  // httplib adds Accept-Ranges to every answer to a HEAD request.
  static const std::set<std::string> kHeaders = {"content-type", "content-length", "connection",
                                                 "keep-alive", "accept-ranges"};
  constexpr std::string_view kStatusLine = "HTTP/1.1 ";
  size_t responses = 0;
  size_t at = 0;
  while (at < answer.size()) {
    const std::string_view rest = answer.substr(at);
    if (rest.substr(0, kStatusLine.size()) != kStatusLine || rest.size() < 13 ||
        !std::isdigit(static_cast<unsigned char>(rest[9])) ||
        !std::isdigit(static_cast<unsigned char>(rest[10])) ||
        !std::isdigit(static_cast<unsigned char>(rest[11])) || rest[12] != ' ') {
      Fail("a response that does not start with an HTTP/1.1 status line", answer);
    }
    const int status = std::atoi(std::string(rest.substr(9, 3)).c_str());
    const size_t head_end = rest.find("\r\n\r\n");
    if (head_end == std::string_view::npos) Fail("a response head that does not end", answer);
    size_t length = 0;
    std::string content_type;
    size_t line = rest.find("\r\n") + 2;
    while (line < head_end + 2) {
      const size_t end = rest.find("\r\n", line);
      const std::string_view field = rest.substr(line, end - line);
      const size_t colon = field.find(':');
      if (colon == std::string_view::npos) Fail("a header line without a colon", answer);
      const std::string name = Lower(field.substr(0, colon));
      // httplib's default exception handling would add EXCEPTION_WHAT.
      if (!kHeaders.count(name)) Fail("a header ember does not send: " + name, answer);
      std::string_view value = field.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-length") length = std::strtoul(std::string(value).c_str(), nullptr, 10);
      if (name == "content-type") content_type = value;
      line = end + 2;
    }
    at += head_end + 4;
    ++responses;
    if (status < 200) continue;  // 100 Continue: the final response follows
    const std::string_view after = answer.substr(at);
    if (after.empty() || after.substr(0, kStatusLine.size()) == kStatusLine) continue;  // HEAD
    if (after.size() < length) Fail("a body shorter than its Content-Length", answer);
    const std::string_view body = after.substr(0, length);
    at += length;
    if (status == 204 && !body.empty()) Fail("a 204 with a body", answer);
    if (body.empty()) continue;
    if (content_type != "application/json") Fail("a body that is not application/json", answer);
    const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) Fail("a body that is not JSON", answer);
    if (status >= 400 && !(json.is_object() && json.contains("fault_message") &&
                           json["fault_message"].is_string())) {
      Fail("an error without a fault_message", answer);
    }
  }
  return responses;
}

void CheckAlive(Harness& h, Vmm& vmm) {
  const std::string answer =
      Exchange(h, vmm, "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n");
  if (answer.rfind("HTTP/1.1 200 ", 0) != 0 || CheckAnswer(answer) != 1 ||
      answer.find("\"app_name\":\"ember\"") == std::string::npos) {
    Fail("the server no longer answers GET /", answer);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = Start();
  // A fresh VMM for every input, as ember's at start-up: a run is
  // reproducible, and nothing a request configured carries over.
  VmmOptions options;
  options.instance_id = "fuzz";
  options.kvm_device = h.sandbox + "/no-kvm";  // InstanceStart fails at the accelerator
  options.console_fd = -1;
  options.stdin_fd = -1;
  Vmm vmm(options);
  if (Status prepared = vmm.Prepare(nullptr); !prepared.ok()) {
    Fail("Vmm::Prepare: " + prepared.message());
  }
  const uint64_t internal_errors = GlobalMetrics().api_internal_errors.Read();

  const std::string answer =
      Exchange(h, vmm, std::string_view(reinterpret_cast<const char*>(data), size));
  CheckAnswer(answer);
  if (GlobalMetrics().api_internal_errors.Read() != internal_errors) {
    Fail(
        "an exception reached a request's catch-all (api_internal_errors); "
        "EMBER_FUZZ_API_LOG=Error shows it",
        answer);
  }
  if (++h.inputs % kLivenessEvery == 0 || answer.empty()) CheckAlive(h, vmm);

  if (h.logger_changed && !ConfigureLogger({h.log_level}).ok()) Fail("resetting the logger");
  if (h.sandbox_touched) ResetSandbox(h);
  h.logger_changed = h.sandbox_touched = false;
  return 0;
}
