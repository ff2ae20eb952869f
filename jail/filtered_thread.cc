#include "jail/filtered_thread.h"

#include <pthread.h>

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
    thread = std::thread([kind, filtered, body = std::move(body)] {
      Status status = InstallThreadFilter(kind);
      const bool ok = status.ok();
      filtered->set_value(std::move(status));
      if (ok) body();
    });
  } catch (const std::system_error& error) {
    return Status::Error("starting the " + name + " thread: " + error.what());
  }
  pthread_setname_np(thread.native_handle(), name.substr(0, 15).c_str());
  Status status = filter_result.get();
  if (!status.ok()) {
    thread.join();
    return status.Context(name);
  }
  return thread;
}

}  // namespace ember
