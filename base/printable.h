#pragma once
// Text from outside (paths, ids, tags, guest bytes, backend errors) on its
// way into a log line: valid UTF-8 passes, and every control character and
// byte that is not part of valid UTF-8 becomes \xNN, so one message stays
// one line and the log stays valid UTF-8.
#include <string>
#include <string_view>

namespace ember {

void AppendPrintable(std::string_view text, std::string& out);
std::string Printable(std::string_view text);

}  // namespace ember
