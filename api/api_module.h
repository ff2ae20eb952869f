// The C entry points of libember_api.so, the part of ember that links
// cpp-httplib. Debian's cpp-httplib pulls in OpenSSL, zlib and brotli,
// which cost ~2 ms of CPU and ~4 MiB at every exec; ember loads the module
// only when the API is asked for, so a --no-api boot pays nothing for it.
#pragma once

#include "api/action_channel.h"

extern "C" {

// Starts serving on `socket_path`; returns an opaque server, or nullptr
// with a malloc'ed message in *error.
void* ember_api_start(const char* socket_path, ember::ActionChannel* channel, char** error);
// Stops serving and removes the socket file.
void ember_api_stop(void* server);
}
