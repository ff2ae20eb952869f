// Runs the ember binary in the background with its API on a Unix socket,
// and talks HTTP to it the way curl does (one request per connection).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/test_util.h"

namespace ember::testing {

struct HttpResponse {
  int status = 0;  // 0 when the request could not be made
  std::string body;
};

// The fault_message of an error reply (or a note saying there is none).
std::string Fault(const HttpResponse& response);

// One request over AF_UNIX with "Connection: close"; gives up after
// `timeout_ms`.
HttpResponse HttpRequest(const std::string& socket_path, const std::string& method,
                         const std::string& path, const std::string& body = "",
                         int timeout_ms = 10000);

// Connects to the socket and returns the fd (or -1), for tests that speak
// raw bytes.
int ConnectUnix(const std::string& socket_path);

class EmberProcess {
 public:
  // Starts `ember --api-sock <dir>/api.sock <args>` with stdout and stderr
  // in <dir>/stdout and <dir>/stderr, and waits until the socket answers.
  // `wrapper` runs it, e.g. {"/usr/sbin/ip", "netns", "exec", NAME} (it
  // must exec ember, so that pid() is ember's).
  EmberProcess(const TempDir& dir, const std::vector<std::string>& args,
               const std::vector<std::string>& wrapper = {});
  ~EmberProcess();  // SIGTERM, then SIGKILL if it lingers

  bool started() const { return started_; }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = "") const {
    return HttpRequest(socket_, method, path, body);
  }
  std::string Stdout() const { return ReadFile(dir_ + "/stdout"); }
  std::string Stderr() const { return ReadFile(dir_ + "/stderr"); }
  // Waits until stdout contains `text`; false after `timeout_ms`.
  bool WaitForOutput(const std::string& text, int timeout_ms = 20000) const;
  // Waits for the process to end; returns its exit code, or -1 on timeout
  // or death by signal.
  int WaitForExit(int timeout_ms = 20000);
  // After WaitForExit: the signal that killed it, 0 if it exited.
  int killed_by() const { return killed_by_; }
  void Signal(int signal) const;

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  bool started_ = false;
  bool reaped_ = false;
  int exit_code_ = -1;
  int killed_by_ = 0;
};

}  // namespace ember::testing
