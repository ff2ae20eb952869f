// ember's versions. Firecracker tooling reads a version number to decide
// what it may send (Kata refuses anything below 0.21.1 in `--version`'s
// second word; SDKs read `firecracker_version` from GET /version), so that
// number is the Firecracker API version whose requests and answers ember
// follows, and ember's own release number travels beside it.
#pragma once

#include <string>

namespace ember {
// ember's own release.
inline constexpr const char* kEmberVersion = "0.1.0";
// The Firecracker release whose API ember answers as.
inline constexpr const char* kFirecrackerApiVersion = "1.16.0";

// `--version`'s output, shaped like Firecracker's ("Firecracker v1.16.0"
// and a blank line): the API version is the second word of the first line.
inline std::string VersionText(const std::string& program) {
  return program + " v" + kFirecrackerApiVersion + " (Firecracker API v" + kFirecrackerApiVersion +
         ", " + program + " " + kEmberVersion + ")\n\n";
}
}  // namespace ember
