// Drives the real ember binary over its API socket with real HTTP. Tests
// that boot the test guest need /dev/kvm and skip, saying so, without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/ember_process.h"

namespace ember::testing {
namespace {

using nlohmann::json;

std::string GuestPvh() { return std::string(EMBER_GUEST_DIR) + "/guest-pvh.elf"; }

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ember_ = std::make_unique<EmberProcess>(dir_, std::vector<std::string>{});
    ASSERT_TRUE(ember_->started()) << ember_->Stderr();
  }
  void ExpectFault(const HttpResponse& response, const std::string& fragment) {
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_NE(Fault(response).find(fragment), std::string::npos) << Fault(response);
  }
  void PutGuest(const std::string& tests, uint32_t vcpus = 1) {
    ASSERT_EQ(ember_
                  ->Request("PUT", "/boot-source",
                            json{{"kernel_image_path", GuestPvh()},
                                 {"boot_args", "console=ttyS0 ember.tests=" + tests}}
                                .dump())
                  .status,
              204);
    ASSERT_EQ(ember_
                  ->Request("PUT", "/machine-config",
                            json{{"vcpu_count", vcpus}, {"mem_size_mib", 128}}.dump())
                  .status,
              204);
  }
  HttpResponse Start() {
    return ember_->Request("PUT", "/actions", R"({"action_type": "InstanceStart"})");
  }
  std::string State() { return json::parse(ember_->Request("GET", "/").body).at("state"); }

  TempDir dir_;
  std::unique_ptr<EmberProcess> ember_;
};

TEST_F(ApiTest, InstanceInfoAndVersion) {
  HttpResponse info = ember_->Request("GET", "/");
  ASSERT_EQ(info.status, 200);
  json body = json::parse(info.body);
  EXPECT_EQ(body["id"], "anonymous-instance");
  EXPECT_EQ(body["state"], "Not started");
  EXPECT_EQ(body["app_name"], "ember");
  EXPECT_TRUE(body["vmm_version"].is_string());
  HttpResponse version = ember_->Request("GET", "/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_EQ(json::parse(version.body)["firecracker_version"], body["vmm_version"]);
}

TEST_F(ApiTest, MachineConfigPutPatchGet) {
  json defaults = json::parse(ember_->Request("GET", "/machine-config").body);
  EXPECT_EQ(defaults["vcpu_count"], 1);
  EXPECT_EQ(defaults["mem_size_mib"], 128);
  EXPECT_EQ(
      ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 256})").status,
      204);
  EXPECT_EQ(ember_->Request("PATCH", "/machine-config", R"({"mem_size_mib": 512})").status, 204);
  json config = json::parse(ember_->Request("GET", "/machine-config").body);
  EXPECT_EQ(config["vcpu_count"], 2);
  EXPECT_EQ(config["mem_size_mib"], 512);
  EXPECT_EQ(config["smt"], false);
  // PUT replaces: both fields are required.
  ExpectFault(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 2})"),
              "mem_size_mib: is required");
  // smt with an odd count is checked against the merged configuration.
  EXPECT_EQ(ember_->Request("PATCH", "/machine-config", R"({"vcpu_count": 3})").status, 204);
  ExpectFault(ember_->Request("PATCH", "/machine-config", R"({"smt": true})"),
              "vcpu_count: must be 1 or even when smt is enabled, got 3");
}

TEST_F(ApiTest, BootSourceAppearsInVmConfig) {
  // Before it is configured, Firecracker shows an empty boot source.
  json before = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(before["boot-source"],
            json({{"kernel_image_path", ""}, {"initrd_path", nullptr}, {"boot_args", nullptr}}))
      << before.dump();
  EXPECT_TRUE(before["vsock"].is_null()) << before.dump();
  const std::string kernel = dir_.File("k");
  WriteFile(kernel, std::string("not yet checked"));
  EXPECT_EQ(
      ember_
          ->Request("PUT", "/boot-source",
                    json{{"kernel_image_path", kernel}, {"boot_args", "console=ttyS0"}}.dump())
          .status,
      204);
  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["boot-source"]["kernel_image_path"], kernel);
  EXPECT_EQ(config["boot-source"]["boot_args"], "console=ttyS0");
  EXPECT_TRUE(config["boot-source"]["initrd_path"].is_null());
  EXPECT_EQ(config["machine-config"]["vcpu_count"], 1);
}

// PUT /boot-source opens the kernel and initrd as Firecracker does, and a
// refused boot source leaves the one before it in place.
TEST_F(ApiTest, BootSourceFilesAreCheckedAtPutTime) {
  const std::string kernel = dir_.File("k");
  WriteFile(kernel, std::string("k"));
  ASSERT_EQ(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", kernel}}.dump()).status,
      204);
  ExpectFault(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", dir_.File("nope")}}.dump()),
      "Boot source error: The kernel file cannot be opened: No such file or directory (os error "
      "2)");
  ExpectFault(
      ember_->Request("PUT", "/boot-source",
                      json{{"kernel_image_path", kernel}, {"initrd_path", dir_.File("no")}}.dump()),
      "Boot source error: The initrd file cannot be opened due to invalid path or invalid "
      "permissions. No such file or directory (os error 2)");
  // A FIFO nobody writes to is refused at once, not waited on.
  ASSERT_EQ(mkfifo(dir_.File("fifo").c_str(), 0600), 0);
  ExpectFault(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", dir_.File("fifo")}}.dump()),
      "The kernel file cannot be opened: not a regular file");
  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["boot-source"]["kernel_image_path"], kernel) << "the good one stays";
}

TEST_F(ApiTest, EveryErrorIsA400WithAFaultMessage) {
  ExpectFault(ember_->Request("GET", "/nowhere"),
              "Invalid request method and/or path: GET /nowhere");
  ExpectFault(ember_->Request("DELETE", "/machine-config"),
              "Invalid request method and/or path: DELETE /machine-config");
  ExpectFault(ember_->Request("POST", "/actions", "{}"), "Invalid request method and/or path");
  ExpectFault(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 1,)"), "invalid JSON");
  ExpectFault(ember_->Request("PUT", "/machine-config", ""), "Empty PUT request.");
  ExpectFault(ember_->Request("PATCH", "/machine-config", ""), "Empty PATCH request.");
  ExpectFault(ember_->Request("PATCH", "/machine-config", "{}"), "Empty PATCH request.");
  ExpectFault(ember_->Request("GET", "/machine-config", "{}"), "GET request cannot have a body.");
  ExpectFault(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 1e999999})"),
              "invalid JSON: [json.exception.out_of_range.406] number overflow");
  ExpectFault(
      ember_->Request("PUT", "/machine-config", R"({"vcpu_count": "2", "mem_size_mib": 1})"),
      "vcpu_count: must be an integer between 1 and 32, got a string");
  ExpectFault(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 64, "mem_size_mib": 1})"),
              "vcpu_count: must be between 1 and 32, got 64");
  ExpectFault(ember_->Request("PUT", "/machine-config",
                              R"({"vcpu_count": 1, "mem_size_mib": 1, "cpus": 2})"),
              "cpus: unknown field");
  ExpectFault(ember_->Request("PUT", "/boot-source", R"({"boot_args": "x"})"),
              "kernel_image_path: is required");
  ExpectFault(ember_->Request("PUT", "/boot-source", R"(["/k"])"), "must be a JSON object");
  ExpectFault(ember_->Request("PUT", "/actions", R"({"action_type": "Reboot"})"),
              "action_type: unknown action \"Reboot\"");
  ExpectFault(ember_->Request("PATCH", "/vm", R"({"state": "Sleeping"})"),
              "state: must be \"Paused\" or \"Resumed\"");
  ExpectFault(ember_->Request("PUT", "/logger", R"({"level": "Loud"})"),
              "level: unknown log level");
  ExpectFault(ember_->Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})"),
              "The requested operation is not supported before starting the microVM.");
  std::string huge = R"({"kernel_image_path": ")" + std::string(60000, 'k') + "\"}";
  ExpectFault(ember_->Request("PUT", "/boot-source", huge), "exceeds the 51200-byte limit");
  // The server is still fine afterwards.
  EXPECT_EQ(ember_->Request("GET", "/").status, 200);
}

TEST_F(ApiTest, RulesBeforeStart) {
  ExpectFault(ember_->Request("PATCH", "/vm", R"({"state": "Paused"})"),
              "not supported before starting the microVM");
  ExpectFault(ember_->Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})"),
              "not supported before starting the microVM");
  ExpectFault(Start(), "boot-source: must be configured");
  EXPECT_EQ(State(), "Not started");
}

TEST_F(ApiTest, FailedStartLeavesTheVmConfigurable) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  // A kernel that opened at PUT time but is gone at InstanceStart.
  const std::string kernel = dir_.File("vanishing");
  WriteFile(kernel, ReadFile(GuestPvh()));
  ASSERT_EQ(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", kernel}}.dump()).status,
      204);
  ASSERT_EQ(unlink(kernel.c_str()), 0);
  ExpectFault(Start(), "boot-source.kernel_image_path: " + kernel + ": No such file");
  EXPECT_EQ(State(), "Not started");
  // One that is no kernel at all.
  WriteFile(kernel, std::string(4096, 'x'));
  ASSERT_EQ(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", kernel}}.dump()).status,
      204);
  EXPECT_EQ(Start().status, 400);
  EXPECT_EQ(State(), "Not started");
  // Fix the configuration and start for real.
  PutGuest("cmdline");
  EXPECT_EQ(Start().status, 204);
  EXPECT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
  EXPECT_NE(ember_->Stdout().find("ember-guest: done"), std::string::npos);
}

TEST_F(ApiTest, RulesAfterStartAndCtrlAltDelReachesTheGuest) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  PutGuest("ctrlaltdel");
  HttpResponse started = Start();
  ASSERT_EQ(started.status, 204) << started.body;
  ASSERT_TRUE(ember_->WaitForOutput("ember-guest: waiting for ctrl-alt-del")) << ember_->Stdout();
  EXPECT_EQ(State(), "Running");
  ExpectFault(Start(), "not supported after starting the microVM");
  ExpectFault(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})"),
              "not supported after starting the microVM");
  ExpectFault(
      ember_->Request("PUT", "/boot-source", json{{"kernel_image_path", GuestPvh()}}.dump()),
      "not supported after starting the microVM");
  ExpectFault(ember_->Request("PUT", "/logger", R"({"level": "Debug"})"),
              "not supported after starting the microVM");
  EXPECT_EQ(ember_->Request("GET", "/machine-config").status, 200);
  EXPECT_EQ(ember_->Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
  std::string out = ember_->Stdout();
  EXPECT_NE(out.find("ember-guest: ctrl-alt-del received\nember-guest: done\n"), std::string::npos)
      << out;
  struct stat info {};
  EXPECT_NE(stat(ember_->socket().c_str(), &info), 0) << "the socket is removed on exit";
}

TEST_F(ApiTest, ConcurrentClientsGetCorrectAnswers) {
  constexpr int kThreads = 8, kRequests = 100;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kRequests; ++i) {
        if (t % 2 == 0) {
          HttpResponse r = ember_->Request("GET", "/");
          if (r.status == 200 && json::parse(r.body)["state"] == "Not started") ++good;
        } else {
          HttpResponse r =
              ember_->Request("PUT", "/machine-config",
                              json{{"vcpu_count", 1 + (i % 4)}, {"mem_size_mib", 128 + t}}.dump());
          if (r.status == 204) ++good;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(good.load(), kThreads * kRequests);
}

// Bytes that are not UTF-8 reach the answers (the path is quoted in the
// fault message, the JSON parser quotes the body): they are replaced, the
// answer is a 400 with valid JSON, and the API (and any VM) lives on.
TEST_F(ApiTest, BytesThatAreNotUtf8GetA400AndTheApiLivesOn) {
  const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD
  for (const std::string& path : {std::string("/\x92"), std::string("/machine-config\xff\xfe")}) {
    HttpResponse response = ember_->Request("GET", path);
    EXPECT_EQ(response.status, 400) << response.body;
    EXPECT_TRUE(json::accept(response.body)) << response.body;
    EXPECT_NE(Fault(response).find(replacement), std::string::npos) << Fault(response);
  }
  HttpResponse body =
      ember_->Request("PUT", "/boot-source", "{\"kernel_image_path\": \"\xff\xc3\"}");
  EXPECT_EQ(body.status, 400) << body.body;
  EXPECT_TRUE(json::accept(body.body)) << body.body;
  EXPECT_EQ(ember_->Request("GET", "/").status, 200) << ember_->Stderr();
}

// Bodies httplib would read without a limit (chunked, compressed) and
// requests with too many header fields are refused before any body is read.
TEST_F(ApiTest, ChunkedCompressedAndHeaderFloodedRequestsAreRefused) {
  auto raw = [&](const std::string& request) {
    int fd = ConnectUnix(ember_->socket());
    EXPECT_GE(fd, 0);
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string answer;
    char buffer[4096];
    // The first answer is all we want; it ends with its JSON body.
    while (answer.find("}") == std::string::npos) {
      ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      answer.append(buffer, static_cast<size_t>(n));
    }
    close(fd);
    return answer;
  };
  std::string chunked =
      raw("PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 400", 0), 0u) << chunked;
  EXPECT_NE(chunked.find("Transfer-Encoding is not accepted"), std::string::npos) << chunked;
  std::string compressed =
      raw("PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
          "Content-Encoding: gzip\r\n\r\nhello");
  EXPECT_NE(compressed.find("Content-Encoding is not accepted"), std::string::npos) << compressed;
  std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  std::string flooded = raw(many + "\r\n");
  EXPECT_NE(flooded.find("more than 64 header fields"), std::string::npos) << flooded;
  // A PUT without a length would be read until the client closes: refused
  // as Firecracker refuses a PUT without a body. A GET's body is refused
  // too, not parsed as a next request.
  std::string lengthless =
      raw("PUT /machine-config HTTP/1.1\r\nHost: x\r\n\r\n{\"vcpu_count\": 1}");
  EXPECT_NE(lengthless.find("Empty PUT request."), std::string::npos) << lengthless;
  std::string get_body =
      raw("GET /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"
          "GET / HTTP/1");
  EXPECT_EQ(get_body.rfind("HTTP/1.1 400", 0), 0u) << get_body;
  EXPECT_NE(get_body.find("GET request cannot have a body."), std::string::npos) << get_body;
  EXPECT_EQ(ember_->Request("GET", "/").status, 200);
}

// Sends `bytes` on a fresh connection; -1 when that fails.
int SendOnNewConnection(const std::string& socket, const std::string& bytes) {
  int fd = ConnectUnix(socket);
  if (fd < 0) return -1;
  if (send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends on `fd` until it closes or `limit` passes.
std::string ReadUntilClosed(int fd, std::chrono::seconds limit = std::chrono::seconds(10)) {
  timeval timeout{static_cast<time_t>(limit.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string answer;
  char buffer[4096];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  return answer;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

// More clients than ember has workers (16) and queue slots (16) send half a
// request and go quiet: the request collector holds their bytes, no worker
// waits on them, and others are answered at once.
TEST_F(ApiTest, StalledClientsDoNotBlockOthers) {
  std::vector<int> stalled;
  for (int i = 0; i < 40; ++i) {
    const std::string half =
        i % 2 == 0 ? "PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"vcpu"
                   : "GET /machine-con";
    int fd = SendOnNewConnection(ember_->socket(), half);
    ASSERT_GE(fd, 0);
    stalled.push_back(fd);
  }
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ember_->Request("GET", "/").status, 200);
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_LT(elapsed, std::chrono::seconds(2)) << "others waited on the stalled clients";
  // A stalled request that is finished later is answered.
  std::string rest = "_count\": 1, \"mem_size_mib\": 128}";
  rest += std::string(100 - std::strlen("{\"vcpu") - rest.size(), ' ');  // the stated length
  ASSERT_EQ(send(stalled[0], rest.data(), rest.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(rest.size()));
  char answer[512] = {};
  ASSERT_GT(recv(stalled[0], answer, sizeof(answer) - 1, 0), 0);
  EXPECT_EQ(std::string(answer).rfind("HTTP/1.1 204", 0), 0u) << answer;
  // One never finished is refused when its 5 s are up, and closed.
  const std::string refused = ReadUntilClosed(stalled[1]);
  EXPECT_EQ(refused.rfind("HTTP/1.1 400", 0), 0u) << refused;
  EXPECT_NE(refused.find("the request did not arrive in full within 5 s"), std::string::npos)
      << refused;
  for (int fd : stalled) close(fd);
}

// Clients that keep their connections open and idle hold no worker: 40 of
// them do not make another wait (Firecracker's SDKs keep theirs alive).
TEST_F(ApiTest, IdleKeepAliveClientsDoNotStarveOthers) {
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) {
    int fd = SendOnNewConnection(ember_->socket(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_GE(fd, 0);
    char buffer[4096];
    ASSERT_GT(recv(fd, buffer, sizeof(buffer), 0), 0) << "answered, connection kept alive";
    idle.push_back(fd);
  }
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ember_->Request("GET", "/").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2))
      << "a client waited for the idle ones (keep-alive timeout 5 s)";
  for (int fd : idle) close(fd);
}

// ember holds at most 128 connections: past that, the one idle the longest
// is closed to make room, and the newcomer is answered.
TEST_F(ApiTest, PastTheConnectionCapTheLongestIdleMakesRoom) {
  std::vector<int> idle;
  for (int i = 0; i < 128; ++i) {
    int fd = ConnectUnix(ember_->socket());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the oldest
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // all accepted
  EXPECT_EQ(ember_->Request("GET", "/").status, 200);
  EXPECT_EQ(ReadUntilClosed(idle[0], std::chrono::seconds(2)), "") << "closed without a word";
  char byte;
  EXPECT_EQ(recv(idle[0], &byte, 1, MSG_DONTWAIT), 0) << "the oldest idle one was closed";
  EXPECT_EQ(recv(idle[127], &byte, 1, MSG_DONTWAIT), -1) << "a newer one is still open";
  for (int fd : idle) close(fd);
}

// Requests sent back to back in one write, then a half-close: each is
// answered, in order, and the connection closes after the last.
TEST_F(ApiTest, PipelinedRequestsThenAHalfCloseAreAllAnswered) {
  const std::string put = R"({"vcpu_count": 2, "mem_size_mib": 256})";
  const std::string requests =
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: " +
      std::to_string(put.size()) + "\r\n\r\n" + put +
      "GET /machine-config HTTP/1.1\r\nHost: x\r\n\r\n";
  int fd = SendOnNewConnection(ember_->socket(), requests);
  ASSERT_GE(fd, 0);
  shutdown(fd, SHUT_WR);
  const std::string answers = ReadUntilClosed(fd);
  close(fd);
  EXPECT_EQ(Count(answers, "HTTP/1.1 200 OK"), 2u) << answers;
  EXPECT_EQ(Count(answers, "HTTP/1.1 204"), 1u) << answers;
  EXPECT_LT(answers.find("HTTP/1.1 204"), answers.rfind("HTTP/1.1 200")) << answers;
  EXPECT_NE(answers.find(R"("vcpu_count":2)"), std::string::npos) << answers;
}

// curl sends "Expect: 100-continue" before larger bodies and waits for the
// interim answer: it comes, then the final one.
TEST_F(ApiTest, ExpectContinueGetsTheInterimAnswerThenTheFinalOne) {
  const std::string body = R"({"vcpu_count": 1, "mem_size_mib": 128})";
  int fd = SendOnNewConnection(
      ember_->socket(), "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_GE(fd, 0);
  char interim[256] = {};
  ASSERT_GT(recv(fd, interim, sizeof(interim) - 1, 0), 0);
  EXPECT_EQ(std::string(interim), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(send(fd, body.data(), body.size(), MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
  char answer[512] = {};
  ASSERT_GT(recv(fd, answer, sizeof(answer) - 1, 0), 0);
  EXPECT_EQ(std::string(answer).rfind("HTTP/1.1 204", 0), 0u) << answer;
  close(fd);
}

long RssKib(pid_t pid) {
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::stol(status.substr(at + 6));
}

// A header section that never ends is cut off with its connection after a
// request's byte budget (64 KiB plus the largest body), its memory with it.
TEST_F(ApiTest, AnEndlessHeaderSectionIsCutOffAndCostsNoMemory) {
  const long rss_before = RssKib(ember_->pid());
  int fd = ConnectUnix(ember_->socket());
  ASSERT_GE(fd, 0);
  timeval limit{10, 0};  // a bug must fail the test, not hang it
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  std::string line = "X-Flood: " + std::string(90, 'y') + "\r\n";
  std::string chunk = "GET / HTTP/1.1\r\n";
  while (chunk.size() < 64 * 1024) chunk += line;
  size_t sent = 0;
  while (sent < 64 * 1024 * 1024) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
    chunk = line + line + line;  // more header lines, never the blank one
    while (chunk.size() < 64 * 1024) chunk += line;
  }
  close(fd);
  EXPECT_LT(sent, 8u * 1024 * 1024) << "ember kept reading the header section";
  const long rss_after = RssKib(ember_->pid());
  EXPECT_LT(rss_after - rss_before, 4096) << rss_before << " KiB before, " << rss_after << " after";
  EXPECT_EQ(ember_->Request("GET", "/").status, 200);
  std::printf("endless headers: cut off after %zu bytes sent; RSS %ld -> %ld KiB\n", sent,
              rss_before, rss_after);
}

TEST_F(ApiTest, MetricsAndLoggerResources) {
  std::string metrics = dir_.File("metrics.json"), log = dir_.File("ember.log");
  ExpectFault(ember_->Request("PUT", "/logger", json{{"log_path", dir_.File("no/such")}}.dump()),
              "Logger error: Failed to open target file: No such file or directory (os error 2)");
  EXPECT_EQ(
      ember_->Request("PUT", "/logger", json{{"log_path", log}, {"level", "Info"}}.dump()).status,
      204);
  EXPECT_EQ(ember_->Request("PUT", "/metrics", json{{"metrics_path", metrics}}.dump()).status, 204);
  ExpectFault(ember_->Request("PUT", "/metrics", json{{"metrics_path", metrics}}.dump()),
              "Metrics error: Cannot initialize the metrics system due to bad user input: "
              "Reinitialization of metrics not allowed.");
  EXPECT_EQ(ember_->Request("PUT", "/machine-config", R"({"vcpu_count": 0})").status, 400);
  EXPECT_EQ(ember_->Request("GET", "/").status, 200);
  // Device PUTs count as puts of their resource (the socket is missing: a
  // fail), not as invalid requests.
  EXPECT_EQ(ember_
                ->Request("PUT", "/network-interfaces/eth0",
                          json{{"iface_id", "eth0"}, {"socket", dir_.File("none.sock")}}.dump())
                .status,
            400);
  EXPECT_EQ(
      ember_
          ->Request(
              "PUT", "/fs/share",
              json{{"fs_id", "share"}, {"tag", "t"}, {"socket", dir_.File("none.sock")}}.dump())
          .status,
      400);
  EXPECT_EQ(ember_->Request("PUT", "/nonexistent").status, 400);
  // Firecracker flushes only a running VM's metrics.
  ExpectFault(ember_->Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})"),
              "The requested operation is not supported before starting the microVM.");
  // The logger now writes to its file.
  ExpectFault(Start(), "boot-source");
  EXPECT_NE(ReadFile(log).find("InstanceStart failed"), std::string::npos) << ReadFile(log);
  // ember writes a last line as it exits.
  ember_->Signal(SIGINT);
  EXPECT_EQ(ember_->WaitForExit(), 0);
  std::string lines = ReadFile(metrics);
  ASSERT_FALSE(lines.empty());
  json line = json::parse(lines.substr(0, lines.find('\n')));
  EXPECT_GT(line["utc_timestamp_ms"].get<uint64_t>(), 0u);
  EXPECT_EQ(line["put_api_requests"]["machine_cfg_fails"], 1);
  EXPECT_EQ(line["put_api_requests"]["metrics_count"], 2);
  EXPECT_EQ(line["get_api_requests"]["instance_info_count"], 1);
  EXPECT_EQ(line["put_api_requests"]["network_count"], 1);
  EXPECT_EQ(line["put_api_requests"]["network_fails"], 1);
  EXPECT_EQ(line["put_api_requests"]["fs_count"], 1);
  EXPECT_EQ(line["put_api_requests"]["fs_fails"], 1);
  EXPECT_EQ(line["api_server"]["invalid_requests_count"], 1) << "only PUT /nonexistent";
  EXPECT_GT(line["api_server"]["process_startup_time_us"].get<uint64_t>(), 0u);
  EXPECT_EQ(line["logger"]["missed_log_count"], 0);
}

TEST_F(ApiTest, FlushMetricsOnARunningVm) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: FlushMetrics needs a running VM";
  PutGuest("ctrlaltdel");
  ASSERT_EQ(Start().status, 204);
  ASSERT_TRUE(ember_->WaitForOutput("ember-guest: waiting for ctrl-alt-del")) << ember_->Stdout();
  // Without a metrics file there is nothing to write: Firecracker says 204.
  EXPECT_EQ(ember_->Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  ExpectFault(ember_->Request("PUT", "/metrics", json{{"metrics_path", dir_.File("m")}}.dump()),
              "not supported after starting the microVM");
  EXPECT_EQ(ember_->Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
}

// Counters restart from zero after each flush.
TEST(MetricsTest, CountersRestartAfterEachFlushKvm) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: FlushMetrics needs a running VM";
  TempDir dir;
  const std::string metrics = dir.File("metrics.json");
  EmberProcess ember(dir, {"--metrics-path", metrics});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_EQ(ember
                .Request("PUT", "/boot-source",
                         json{{"kernel_image_path", GuestPvh()},
                              {"boot_args", "console=ttyS0 ember.tests=ctrlaltdel"}}
                             .dump())
                .status,
            204);
  ASSERT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  ASSERT_TRUE(ember.WaitForOutput("ember-guest: waiting for ctrl-alt-del")) << ember.Stdout();
  EXPECT_EQ(ember.Request("GET", "/").status, 200);
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "FlushMetrics"})").status, 204);
  std::string lines = ReadFile(metrics);
  size_t first_end = lines.find('\n');
  ASSERT_NE(first_end, std::string::npos) << lines;
  json first = json::parse(lines.substr(0, first_end));
  json second = json::parse(lines.substr(first_end + 1, lines.find('\n', first_end + 1)));
  EXPECT_EQ(first["get_api_requests"]["instance_info_count"], 1);
  EXPECT_EQ(first["put_api_requests"]["actions_count"], 1) << "InstanceStart; this flush not yet";
  EXPECT_EQ(second["get_api_requests"]["instance_info_count"], 0);
  EXPECT_EQ(second["put_api_requests"]["actions_count"], 1) << "the first flush";
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
}

// Valid device requests (all of them succeed before boot: a drive on a
// file, vhost-user net and fs in server mode, whose sockets are made at
// InstanceStart, and vsock) count as requests of their resource, as the
// route table says, and none as an invalid request.
TEST_F(ApiTest, ValidDeviceRequestsCountAsTheirResourceNotAsInvalid) {
  std::string metrics = dir_.File("metrics.json");
  WriteFile(dir_.File("disk.img"), std::string(1 << 20, '\0'));
  WriteFile(dir_.File("disk2.img"), std::string(1 << 20, '\0'));
  ASSERT_EQ(ember_->Request("PUT", "/metrics", json{{"metrics_path", metrics}}.dump()).status, 204);
  struct Request {
    std::string method, path;
    json body;
  };
  const std::vector<Request> requests = {
      {"PUT",
       "/drives/rootfs",
       {{"drive_id", "rootfs"},
        {"path_on_host", dir_.File("disk.img")},
        {"is_root_device", true},
        {"is_read_only", false}}},
      {"PATCH",
       "/drives/rootfs",
       {{"drive_id", "rootfs"}, {"path_on_host", dir_.File("disk2.img")}}},
      {"PUT",
       "/network-interfaces/eth0",
       {{"iface_id", "eth0"}, {"socket", dir_.File("net.sock")}, {"socket_mode", "server"}}},
      {"PUT",
       "/fs/share",
       {{"fs_id", "share"},
        {"tag", "share"},
        {"socket", dir_.File("fs.sock")},
        {"socket_mode", "server"}}},
      {"PUT", "/vsock", {{"guest_cid", 3}, {"uds_path", dir_.File("v.sock")}}},
  };
  for (const Request& request : requests) {
    HttpResponse answer = ember_->Request(request.method, request.path, request.body.dump());
    ASSERT_EQ(answer.status, 204) << request.method << " " << request.path << ": " << answer.body;
  }
  // What ember now holds is what was sent.
  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  ASSERT_EQ(config["drives"].size(), 1u) << config.dump();
  EXPECT_EQ(config["drives"][0]["path_on_host"], dir_.File("disk2.img"));
  EXPECT_EQ(config["network-interfaces"].size(), 1u) << config.dump();
  EXPECT_EQ(config["fs"].size(), 1u) << config.dump();
  EXPECT_EQ(config["vsock"]["uds_path"], dir_.File("v.sock"));

  // The line ember writes as it exits (FlushMetrics needs a running VM).
  ember_->Signal(SIGINT);
  ASSERT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
  std::string lines = ReadFile(metrics);
  ASSERT_FALSE(lines.empty());
  json line = json::parse(lines.substr(0, lines.find('\n')));
  const json& put = line["put_api_requests"];
  const json& patch = line["patch_api_requests"];
  for (const char* resource : {"drive", "network", "fs", "vsock"}) {
    EXPECT_EQ(put[std::string(resource) + "_count"], 1) << resource << ": " << put.dump();
    EXPECT_EQ(put[std::string(resource) + "_fails"], 0) << resource << ": " << put.dump();
  }
  EXPECT_EQ(patch["drive_count"], 1) << patch.dump();
  EXPECT_EQ(patch["drive_fails"], 0) << patch.dump();
  EXPECT_EQ(line["get_api_requests"]["vm_config_count"], 1);
  EXPECT_EQ(put["metrics_count"], 1);
  EXPECT_EQ(line["api_server"]["invalid_requests_count"], 0) << line["api_server"].dump();
}

TEST(ApiSocketTest, StaleSocketIsReplacedAndRemovedOnExit) {
  TempDir dir;
  // A socket file nobody listens on, as a crashed process leaves behind.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, dir.File("api.sock").c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  close(fd);
  EmberProcess ember(dir, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  EXPECT_EQ(ember.Request("GET", "/").status, 200);
  // A second ember on the same socket is refused.
  ProcessResult second = RunProcess({EMBER_BINARY, "--api-sock", dir.File("api.sock")}, 10000);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is in use by another process"), std::string::npos) << second.err;
  // Cleanly (the socket is removed), then ended by SIGTERM as Firecracker is.
  ember.Signal(SIGTERM);
  ember.WaitForExit();
  EXPECT_EQ(ember.killed_by(), SIGTERM);
  struct stat info {};
  EXPECT_NE(stat(dir.File("api.sock").c_str(), &info), 0);
}

TEST(ApiSocketTest, PathThatIsNotASocketIsRefused) {
  TempDir dir;
  WriteFile(dir.File("api.sock"), std::string("precious"));
  ProcessResult result = RunProcess({EMBER_BINARY, "--api-sock", dir.File("api.sock")}, 10000);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("exists and is not a socket"), std::string::npos) << result.err;
  EXPECT_EQ(ReadFile(dir.File("api.sock")), "precious");
}

TEST(ApiSocketTest, ConfigFileAndApiTogether) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: booting needs it";
  TempDir dir;
  WriteFile(dir.File("vm.json"),
            json{{"boot-source",
                  {{"kernel_image_path", GuestPvh()}, {"boot_args", "ember.tests=ctrlaltdel"}}}}
                .dump());
  EmberProcess ember(dir, {"--config-file", dir.File("vm.json"), "--id", "vm-7"});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  ASSERT_TRUE(ember.WaitForOutput("waiting for ctrl-alt-del"));
  json info = json::parse(ember.Request("GET", "/").body);
  EXPECT_EQ(info["state"], "Running");
  EXPECT_EQ(info["id"], "vm-7");
  EXPECT_EQ(
      json::parse(ember.Request("GET", "/vm/config").body)["boot-source"]["kernel_image_path"],
      GuestPvh());
  EXPECT_EQ(ember.Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember.WaitForExit(), 0);
}

// A config-file start that fails while an API client waits for an answer:
// ember still exits (the waiting request gets its answer) instead of
// hanging in the API server's shutdown. The start waits 2 s for a
// server-mode backend that never comes, so the request is surely queued.
TEST(ApiSocketTest, FailedConfigFileStartExitsWhileAClientWaits) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  TempDir dir;
  WriteFile(dir.File("vm.json"), json{{"boot-source", {{"kernel_image_path", GuestPvh()}}},
                                      {"network-interfaces",
                                       {{{"iface_id", "eth0"},
                                         {"socket", dir.File("net.sock")},
                                         {"socket_mode", "server"},
                                         {"connect_timeout_ms", 2000}}}}}
                                     .dump());
  ProcessResult result;
  std::thread ember([&] {
    result = RunProcess(
        {EMBER_BINARY, "--api-sock", dir.File("api.sock"), "--config-file", dir.File("vm.json")},
        20000);
  });
  HttpResponse answer;
  for (int i = 0; i < 1000 && answer.status == 0; ++i) {
    if (access(dir.File("api.sock").c_str(), F_OK) == 0) {
      answer = HttpRequest(dir.File("api.sock"), "GET", "/", "", 15000);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ember.join();
  EXPECT_FALSE(result.timed_out) << "ember hung after the failed start: " << result.err;
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("no vhost-user backend connected"), std::string::npos) << result.err;
  EXPECT_EQ(answer.status, 400) << "the waiting request is answered: " << answer.body;
  EXPECT_NE(answer.body.find("shutting down"), std::string::npos) << answer.body;
}

// The same with a config file whose kernel is garbage, the way a truncated
// download fails: the boot fails at once while clients keep sending
// requests, and ember exits 1 within 10 s whatever state each request was
// in (refused, queued, answered), never hanging in the server's shutdown.
TEST(ApiSocketTest, GarbageKernelInAConfigFileExitsWhileClientsSendRequests) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: InstanceStart needs it";
  TempDir dir;
  WriteFile(dir.File("garbage"), std::string(100000, 'x'));
  WriteFile(dir.File("vm.json"),
            json{{"boot-source", {{"kernel_image_path", dir.File("garbage")}}},
                 {"machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 256}}}}
                .dump());
  std::atomic<bool> exited{false};
  std::atomic<int> answered{0}, shutting_down{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      while (!exited) {
        if (access(dir.File("api.sock").c_str(), F_OK) != 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          continue;
        }
        HttpResponse r = c % 2 == 0
                             ? HttpRequest(dir.File("api.sock"), "GET", "/", "", 15000)
                             : HttpRequest(dir.File("api.sock"), "PUT", "/machine-config",
                                           R"({"vcpu_count": 1, "mem_size_mib": 128})", 15000);
        if (r.status != 0) ++answered;
        if (r.body.find("shutting down") != std::string::npos) ++shutting_down;
      }
    });
  }
  auto begin = std::chrono::steady_clock::now();
  ProcessResult result = RunProcess(
      {EMBER_BINARY, "--api-sock", dir.File("api.sock"), "--config-file", dir.File("vm.json")},
      10000);
  auto elapsed = std::chrono::steady_clock::now() - begin;
  exited = true;
  for (auto& client : clients) client.join();
  EXPECT_FALSE(result.timed_out) << "ember hung after the failed boot: " << result.err;
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("cannot start the VM"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("not a kernel"), std::string::npos) << result.err;
  struct stat info {};
  EXPECT_NE(stat(dir.File("api.sock").c_str(), &info), 0) << "the socket is removed on exit";
  std::printf("requests answered while ember failed: %d (%d with 'shutting down')\n",
              answered.load(), shutting_down.load());
}

// Firecracker's thread names, which Kata Containers reads from
// /proc/<pid>/task/*/comm to find each vCPU thread ("fc_vcpu" and the
// index) and put it in its cgroup; the API threads are fc_api and the
// VMM (main) thread keeps the process name, ember.
TEST_F(ApiTest, ThreadsCarryFirecrackersNames) {
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: vCPU threads need it";
  PutGuest("ctrlaltdel", 2);
  HttpResponse started = Start();
  ASSERT_EQ(started.status, 204) << started.body;
  ASSERT_TRUE(ember_->WaitForOutput("ember-guest: waiting for ctrl-alt-del")) << ember_->Stdout();
  const std::string tasks = "/proc/" + std::to_string(ember_->pid()) + "/task";
  std::vector<std::string> vcpus;
  std::string main_name;
  int api = 0;
  std::string all;
  for (const auto& entry : std::filesystem::directory_iterator(tasks)) {
    std::string comm = ReadFile(entry.path().string() + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    all += "[" + comm + "] ";
    if (entry.path().filename() == std::to_string(ember_->pid())) main_name = comm;
    if (comm.rfind("fc_vcpu", 0) == 0) vcpus.push_back(comm);
    api += comm == "fc_api";
  }
  std::sort(vcpus.begin(), vcpus.end());
  EXPECT_EQ(vcpus, (std::vector<std::string>{"fc_vcpu 0", "fc_vcpu 1"})) << all;
  EXPECT_GE(api, 1) << all;
  EXPECT_EQ(main_name, "ember") << all;
  EXPECT_EQ(ember_->Request("PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204);
  EXPECT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
}

// PUT /entropy (Firecracker's virtio-rng): the guest reads random bytes
// from it, and the rate limiter's bucket holds the second read until it
// refills, which the guest does not notice beyond the wait.
TEST_F(ApiTest, EntropyDeviceGivesTheGuestRandomBytes) {
  ExpectFault(ember_->Request("PUT", "/entropy", R"({"rate": 1})"), "rate: unknown field");
  ExpectFault(
      ember_->Request("PUT", "/entropy", R"({"rate_limiter": {"bandwidth": {"size": -1}}})"),
      "rate_limiter.bandwidth.size");
  EXPECT_TRUE(json::parse(ember_->Request("GET", "/vm/config").body)["entropy"].is_null());
  const json limiter = {{"bandwidth", {{"size", 64}, {"refill_time", 100}}}};
  ASSERT_EQ(ember_->Request("PUT", "/entropy", json{{"rate_limiter", limiter}}.dump()).status, 204);
  json config = json::parse(ember_->Request("GET", "/vm/config").body);
  EXPECT_EQ(config["entropy"]["rate_limiter"]["bandwidth"]["size"], 64) << config.dump();
  if (!HaveKvm()) GTEST_SKIP() << "/dev/kvm is absent: the guest needs it";
  PutGuest("virtio,rng");
  ASSERT_EQ(Start().status, 204);
  ASSERT_EQ(ember_->WaitForExit(), 0) << ember_->Stderr();
  const std::string out = ember_->Stdout();
  EXPECT_NE(out.find(" id=4\n"), std::string::npos) << "a virtio-mmio slot holds device 4: " << out;
  EXPECT_NE(out.find("ember-guest: rng bytes=64,64 nonzero=yes differ=yes\n"), std::string::npos)
      << out;
}

// MMDS over the API: PUT replaces, PATCH merges (RFC 7396), GET reads;
// the size limit answers 413; mmds-config names TAP interfaces only.
TEST_F(ApiTest, MmdsDataAndConfig) {
  EXPECT_EQ(ember_->Request("GET", "/mmds").body, "{}");
  ExpectFault(ember_->Request("PATCH", "/mmds", R"({"a": 1})"),
              "The MMDS data store is not initialized.");
  ASSERT_EQ(
      ember_->Request("PUT", "/mmds", R"({"latest": {"meta-data": {"ami-id": "ami-1"}}})").status,
      204);
  ASSERT_EQ(
      ember_->Request("PATCH", "/mmds", R"({"latest": {"meta-data": {"hostname": "h"}}})").status,
      204);
  ASSERT_EQ(
      ember_->Request("PATCH", "/mmds", R"({"latest": {"meta-data": {"ami-id": null}}})").status,
      204);
  EXPECT_EQ(json::parse(ember_->Request("GET", "/mmds").body),
            json::parse(R"({"latest": {"meta-data": {"hostname": "h"}}})"));
  // The body fits the API's 51200 bytes; merged with what is there, the
  // data does not fit the store's (the same number by default).
  HttpResponse too_big =
      ember_->Request("PATCH", "/mmds", json{{"k", std::string(51180, 'x')}}.dump());
  EXPECT_EQ(too_big.status, 413) << too_big.body;
  EXPECT_NE(Fault(too_big).find("MMDS limit exceeded error"), std::string::npos) << too_big.body;

  ExpectFault(ember_->Request("PUT", "/mmds/config", R"({"network_interfaces": []})"),
              "The list of network interface IDs that allow forwarding MMDS requests is empty.");
  ExpectFault(ember_->Request("PUT", "/mmds/config", R"({"version": "V1"})"),
              "network_interfaces: is required");
  ExpectFault(ember_->Request("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})"),
              "does not correspond to any existing network interface. (eth0)");
  ExpectFault(ember_->Request("PUT", "/mmds/config",
                              R"({"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"})"),
              "The MMDS IPv4 address is not link local.");
  ExpectFault(ember_->Request("PUT", "/mmds/config",
                              R"({"network_interfaces": ["eth0"], "version": "V3"})"),
              "version: must be \"V1\" or \"V2\"");
  // A vhost-user interface cannot carry it: its frames never pass through ember.
  ASSERT_EQ(ember_
                ->Request("PUT", "/network-interfaces/eth0",
                          json{{"iface_id", "eth0"},
                               {"socket", dir_.File("net.sock")},
                               {"socket_mode", "server"}}
                              .dump())
                .status,
            204);
  ExpectFault(ember_->Request("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})"),
              "eth0 is a vhost-user interface");
  EXPECT_TRUE(json::parse(ember_->Request("GET", "/vm/config").body)["mmds-config"].is_null());
}

// --metadata fills MMDS at start, --mmds-size-limit bounds it, and the
// config file's mmds-config is checked like PUT /mmds/config.
TEST(MmdsCliTest, MetadataFileAndSizeLimit) {
  TempDir dir;
  WriteFile(dir.File("meta.json"), std::string(R"({"a": "b"})"));
  EmberProcess ember(dir, {"--metadata", dir.File("meta.json"), "--mmds-size-limit", "100"});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  EXPECT_EQ(json::parse(ember.Request("GET", "/mmds").body), json({{"a", "b"}}));
  HttpResponse big = ember.Request("PUT", "/mmds", json{{"k", std::string(200, 'x')}}.dump());
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_EQ(json::parse(ember.Request("GET", "/mmds").body), json({{"a", "b"}}));

  WriteFile(dir.File("bad.json"), std::string("{not json"));
  ProcessResult bad = RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir.File("vm.json"),
                                  "--metadata", dir.File("bad.json")},
                                 10000);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--metadata " + dir.File("bad.json") + ": invalid JSON"),
            std::string::npos)
      << bad.err;
  WriteFile(dir.File("vm.json"), json{{"boot-source", {{"kernel_image_path", GuestPvh()}}},
                                      {"mmds-config", {{"network_interfaces", {"eth9"}}}}}
                                     .dump());
  ProcessResult unknown =
      RunProcess({EMBER_BINARY, "--no-api", "--config-file", dir.File("vm.json")}, 10000);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("mmds-config: The list of network interface IDs provided contains"),
            std::string::npos)
      << unknown.err;
}

// Kata reads the second word of `--version`'s first line as a semantic
// version (>= 0.21.1); SDKs read GET /version. Both carry the Firecracker API
// version ember answers as, and ember's own version is beside it.
TEST(CliTest, VersionReadsAsFirecrackerToolingReadsIt) {
  ProcessResult version = RunProcess({EMBER_BINARY, "--version"}, 10000);
  ASSERT_EQ(version.exit_code, 0);
  const std::string first = version.out.substr(0, version.out.find('\n'));
  std::vector<std::string> words;
  for (size_t at = 0; at != std::string::npos;) {
    size_t space = first.find(' ', at);
    words.push_back(first.substr(at, space == std::string::npos ? space : space - at));
    at = space == std::string::npos ? space : space + 1;
  }
  ASSERT_GE(words.size(), 2u) << version.out;
  EXPECT_EQ(words[0], "ember");
  ASSERT_EQ(words[1].rfind("v", 0), 0u) << version.out;
  const std::string semver = words[1].substr(1);
  unsigned major = 0, minor = 0, patch = 0;
  ASSERT_EQ(std::sscanf(semver.c_str(), "%u.%u.%u", &major, &minor, &patch), 3) << semver;
  EXPECT_GE(std::make_tuple(major, minor, patch), std::make_tuple(0u, 21u, 1u));
  EXPECT_NE(version.out.find("Firecracker API v" + semver), std::string::npos) << version.out;
  // Older Kata splits the whole output on spaces: its second word is the same.
  EXPECT_EQ(version.out.substr(0, version.out.find(' ', 6)), "ember " + words[1]);

  TempDir dir;
  EmberProcess ember(dir, {});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  json answer = json::parse(ember.Request("GET", "/version").body);
  EXPECT_EQ(answer["firecracker_version"], semver) << answer.dump();
  ASSERT_TRUE(answer["ember_version"].is_string());
  EXPECT_NE(version.out.find("ember " + answer["ember_version"].get<std::string>() + ")"),
            std::string::npos)
      << version.out;
  ProcessResult jailer = RunProcess({EMBER_JAILER_BINARY, "--version"}, 10000);
  EXPECT_EQ(jailer.out.rfind("ember-jailer v" + semver + " ", 0), 0u) << jailer.out;
}

TEST(CliTest, InstanceIdFollowsFirecrackersRule) {
  ProcessResult underscore = RunProcess({EMBER_BINARY, "--id", "a_b", "--no-api"}, 10000);
  EXPECT_EQ(underscore.exit_code, 1);
  EXPECT_NE(underscore.err.find("--id: Invalid instance ID: Invalid char (_) at position 1"),
            std::string::npos)
      << underscore.err;
  ProcessResult newline = RunProcess({EMBER_BINARY, "--id", "a\nb", "--no-api"}, 10000);
  EXPECT_NE(newline.err.find("Invalid char (\\x0a) at position 1"), std::string::npos)
      << newline.err;
  ProcessResult longer = RunProcess({EMBER_BINARY, "--id", std::string(65, 'a')}, 10000);
  EXPECT_NE(longer.err.find("Invalid len (65);  the length must be between 1 and 64"),
            std::string::npos)
      << longer.err;
  TempDir dir;
  EmberProcess ember(dir, {"--id", "vm-0123"});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  EXPECT_EQ(json::parse(ember.Request("GET", "/").body)["id"], "vm-0123");
}

// flintlock stops VMs with SIGHUP: ember stops cleanly, writes its last
// metrics line and exits with Firecracker's 156.
TEST(SignalTest, SighupStopsCleanlyWithFirecrackersCode) {
  TempDir dir;
  EmberProcess ember(dir, {"--metrics-path", dir.File("metrics.json")});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  EXPECT_EQ(ember.Request("GET", "/").status, 200);
  ember.Signal(SIGHUP);
  EXPECT_EQ(ember.WaitForExit(), 156) << ember.Stderr();
  std::string lines = ReadFile(dir.File("metrics.json"));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(
      json::parse(lines.substr(0, lines.find('\n')))["get_api_requests"]["instance_info_count"], 1);
  struct stat info {};
  EXPECT_NE(stat(ember.socket().c_str(), &info), 0) << "the socket is removed on exit";
}

// Kata points the log and metrics at named pipes. Opening them waits for
// no reader, and a reader that never reads costs lines (counted), never a
// stalled VMM or API.
TEST(LoggerTest, LogAndMetricsFifosWithoutAReaderNeverStallEmber) {
  TempDir dir;
  const std::string log = dir.File("log.fifo"), metrics = dir.File("metrics.fifo");
  ASSERT_EQ(mkfifo(log.c_str(), 0600), 0);
  ASSERT_EQ(mkfifo(metrics.c_str(), 0600), 0);
  EmberProcess ember(dir, {"--log-path", log, "--level", "Debug", "--metrics-path", metrics});
  ASSERT_TRUE(ember.started()) << ember.Stderr();
  // Each request logs a line (at Debug): far more than a pipe holds (64 KiB).
  const std::string long_path = "/" + std::string(2000, 'x');
  for (int i = 0; i < 400; ++i) EXPECT_EQ(ember.Request("GET", long_path).status, 400);
  EXPECT_EQ(ember.Request("GET", "/").status, 200);
  // A reader comes late: it gets whole lines.
  int reader = open(log.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  std::string got(4096, '\0');
  ssize_t n = read(reader, got.data(), got.size());
  close(reader);
  ASSERT_GT(n, 0);
  EXPECT_EQ(got.rfind("20", 0), 0u) << "a line starts with its timestamp: " << got;
  EXPECT_NE(got.find("The API server received a GET request"), std::string::npos) << got;
  // The metrics pipe keeps the last line while a reader holds it open.
  int metrics_reader = open(metrics.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(metrics_reader, 0);
  ember.Signal(SIGINT);
  EXPECT_EQ(ember.WaitForExit(), 0) << ember.Stderr();
  std::string lines;
  char buffer[65536];
  while ((n = read(metrics_reader, buffer, sizeof(buffer))) > 0) lines.append(buffer, n);
  close(metrics_reader);
  ASSERT_FALSE(lines.empty());
  json last = json::parse(lines.substr(0, lines.find('\n')));
  EXPECT_GT(last["logger"]["missed_log_count"].get<uint64_t>(), 0u) << last.dump();
}

TEST(CliTest, VersionHelpAndUnknownFlags) {
  ProcessResult version = RunProcess({EMBER_BINARY, "--version"}, 10000);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("ember v", 0), 0u) << version.out;
  ProcessResult help = RunProcess({EMBER_BINARY, "--help"}, 10000);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--api-sock"), std::string::npos);
  ProcessResult unknown = RunProcess({EMBER_BINARY, "--bogus"}, 10000);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown argument --bogus"), std::string::npos);
  EXPECT_NE(unknown.err.find("Usage: ember"), std::string::npos);
  ProcessResult missing = RunProcess({EMBER_BINARY, "--api-sock"}, 10000);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--api-sock: needs a value"), std::string::npos);
  ProcessResult no_api = RunProcess({EMBER_BINARY, "--no-api"}, 10000);
  EXPECT_EQ(no_api.exit_code, 1);
  EXPECT_NE(no_api.err.find("--no-api needs --config-file"), std::string::npos);
}

}  // namespace
}  // namespace ember::testing
