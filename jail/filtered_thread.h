// A thread that is sandboxed before it runs anything: it installs its own
// seccomp filter first, and the caller learns whether that worked before
// going on (a thread that runs unfiltered is a hole nobody would see).
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "base/status.h"
#include "jail/seccomp.h"

namespace ember {

// Starts a thread named `name` (cut to Linux's 15 characters) that installs
// the filter of `kind` and then runs `body`. Returns once the filter is in;
// if it could not be installed, `body` never runs, the thread is joined and
// the error names `name`.
Result<std::thread> StartFilteredThread(const std::string& name, ThreadKind kind,
                                        std::function<void()> body);

}  // namespace ember
