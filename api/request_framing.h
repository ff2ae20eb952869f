// Where one HTTP request ends in the bytes a client has sent so far, as far
// as the API server needs to know it: the request collector
// (api/request_collector.h) hands a connection to a worker only once its
// next request is complete, so that a client that goes quiet half-way holds
// no worker. Framing follows cpp-httplib 0.11.4's reading: the header
// section ends at the first empty CRLF line; only POST, PUT, PATCH, DELETE
// and PRI requests have a body, of Content-Length bytes.
#pragma once

#include <cstddef>
#include <string_view>

namespace ember {

// The number of leading bytes of `bytes` a worker needs to serve the first
// request without waiting on the client, or 0 while more must arrive. A
// request whose body httplib would not read by a stated length (no or a
// malformed Content-Length, one above `max_body`, an Expect or
// Transfer-Encoding header) is served from its header section: httplib then
// answers it (100 Continue, or a refusal), reading the rest under the
// request's deadline.
size_t BytesToServe(std::string_view bytes, size_t max_body);

}  // namespace ember
