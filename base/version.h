#pragma once

namespace ember {
inline constexpr const char* kEmberVersion = "0.1.0";
}  // namespace ember
