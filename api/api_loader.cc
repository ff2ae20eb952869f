#include "api/api_loader.h"

#include <dlfcn.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "api/api_module.h"
#include "base/sys_error.h"

namespace ember {
namespace {

constexpr const char* kModuleName = "libember_api.so";

Result<std::string> ModulePath() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string path;
  if (n > 0) {
    path.assign(self, static_cast<size_t>(n));
  } else if (const char* executed = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
             executed != nullptr && executed[0] == '/') {
    path = executed;  // no /proc (a jail): the path ember was started by
  } else {
    return ErrnoStatus("finding the ember binary");
  }
  return path.substr(0, path.rfind('/') + 1) + kModuleName;
}

}  // namespace

Result<std::unique_ptr<LoadedApiServer>> LoadedApiServer::Start(const std::string& socket_path,
                                                                ActionChannel& channel) {
  EMBER_ASSIGN_OR_RETURN(std::string module, ModulePath());
  std::unique_ptr<LoadedApiServer> loaded(new LoadedApiServer());
  loaded->library_ = dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (loaded->library_ == nullptr) {
    return Status::Error(std::string("loading the API module: ") + dlerror());
  }
  auto start =
      reinterpret_cast<decltype(&ember_api_start)>(dlsym(loaded->library_, "ember_api_start"));
  loaded->stop_ =
      reinterpret_cast<decltype(&ember_api_stop)>(dlsym(loaded->library_, "ember_api_stop"));
  if (start == nullptr || loaded->stop_ == nullptr) {
    return Status::Error("the API module " + module + " lacks its entry points");
  }
  char* error = nullptr;
  loaded->server_ = start(socket_path.c_str(), &channel, &error);
  if (loaded->server_ == nullptr) {
    std::string message = error != nullptr ? error : "unknown error";
    std::free(error);
    return Status::Error(message);
  }
  return loaded;
}

LoadedApiServer::~LoadedApiServer() {
  if (server_ != nullptr) stop_(server_);
  // The module stays loaded: httplib's thread-locals and atexit handlers
  // may still point into it.
}

}  // namespace ember
