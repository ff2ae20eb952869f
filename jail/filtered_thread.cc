#include "jail/filtered_thread.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <future>
#include <memory>
#include <system_error>

namespace ember {

Result<std::thread> StartFilteredThread(const std::string& name, ThreadKind kind,
                                        std::function<void()> body) {
  // Shared: the thread may still be inside set_value when the caller returns.
  auto filtered = std::make_shared<std::promise<Status>>();
  std::future<Status> filter_result = filtered->get_future();
  std::thread thread;
  try {
    // Named from inside, before the body runs: threads the body starts
    // (httplib's workers) inherit the name, which the parent setting it
    // afterwards would race.
    thread = std::thread([short_name = name.substr(0, 15), kind, filtered, body = std::move(body)] {
      pthread_setname_np(pthread_self(), short_name.c_str());
      Status status = InstallThreadFilter(kind);
      const bool ok = status.ok();
      filtered->set_value(std::move(status));
      if (!ok) return;
      // An exception ends this thread's work with its reason in the log,
      // never the process (std::terminate would also be refused its tgkill
      // on some threads and name the wrong cause).
      try {
        body();
      } catch (const std::exception& error) {
        SPDLOG_ERROR("thread {} stopped: internal error: {}", short_name, error.what());
      }
    });
  } catch (const std::system_error& error) {
    return Status::Error("starting the " + name + " thread: " + error.what());
  }
  Status status = filter_result.get();
  if (!status.ok()) {
    thread.join();
    return status.Context(name);
  }
  return thread;
}

}  // namespace ember
