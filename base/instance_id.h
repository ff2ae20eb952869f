// The microVM's instance id (`--id` of ember and of ember-jailer): it names
// the jail's directory and appears in every log line, so it is held to
// Firecracker's rule: 1 to 64 ASCII letters, digits and '-'.
#pragma once

#include <string_view>

#include "base/status.h"

namespace ember {

// Firecracker's messages ("Invalid len (65);  the length must be between 1
// and 64", "Invalid char (_) at position 2"); a byte that is not printable
// ASCII is shown as \xNN.
Status ValidateInstanceId(std::string_view id);

}  // namespace ember
