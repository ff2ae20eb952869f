// Making room for a listening Unix socket at a path (the API socket, a
// vhost-user server socket): only a stale socket file, left by a process
// that is gone, is ever replaced.
#pragma once

#include <string>

#include "base/status.h"

namespace ember {

// If `path` exists: refuses anything that is not a socket, and a socket some
// live process accepts on; removes a stale one. `what` starts each error
// ("api socket", "net device eth0: socket").
Status RemoveStaleSocket(const std::string& path, const std::string& what);

}  // namespace ember
