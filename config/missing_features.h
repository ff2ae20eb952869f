// Parts of Firecracker's API that ember has not built yet, one list for
// both edges: the API names them in its unknown-path answer, the config
// file refuses their sections. Keyed by resource: the first path segment
// (/snapshot/create -> "snapshot"), which is also the section's name.
#pragma once

#include <string_view>

namespace ember {

struct MissingFeature {
  std::string_view resource;
  std::string_view what;  // how an answer names it
};

inline constexpr MissingFeature kMissingFeatures[] = {
    {"snapshot", "snapshots"},
    {"balloon", "the balloon device"},
    {"cpu-config", "custom CPU templates"},
    {"hotplug", "memory hotplug"},
};

// The feature for `resource`, or nullptr when ember has it (or it is not
// Firecracker's).
constexpr const MissingFeature* FindMissingFeature(std::string_view resource) {
  for (const MissingFeature& feature : kMissingFeatures) {
    if (feature.resource == resource) return &feature;
  }
  return nullptr;
}

}  // namespace ember
