// BytesToServe: when the request collector may hand a connection to a
// worker (api/request_framing.h).
#include "api/request_framing.h"

#include <gtest/gtest.h>

#include <string>

namespace ember {
namespace {

constexpr size_t kMaxBody = 51200;

size_t Serve(const std::string& bytes) { return BytesToServe(bytes, kMaxBody); }

TEST(RequestFramingTest, AHeaderSectionIsCompleteAtItsEmptyLine) {
  EXPECT_EQ(Serve(""), 0u);
  EXPECT_EQ(Serve("GET / HTTP/1.1\r\nHost: x\r\n"), 0u);
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(Serve(get), get.size());
  EXPECT_EQ(Serve(get + "GET /vm"), get.size()) << "a pipelined request waits its turn";
  EXPECT_EQ(Serve("GET / HTTP/1.1\r\n\r\n"), 18u);
  // Lines ending in a bare LF count as httplib counts them (skipped).
  const std::string bare = "GET / HTTP/1.1\nHost: x\n\r\n";
  EXPECT_EQ(Serve(bare), bare.size());
  EXPECT_EQ(Serve("\r\nGET / HTTP/1.1"), 2u) << "an empty request line is refused at once";
}

TEST(RequestFramingTest, ABodyOfAStatedLengthIsWaitedFor) {
  const std::string head = "PUT /vm HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
  EXPECT_EQ(Serve(head), 0u);
  EXPECT_EQ(Serve(head + "hell"), 0u);
  EXPECT_EQ(Serve(head + "hello"), head.size() + 5);
  EXPECT_EQ(Serve(head + "helloGET / HTTP/1.1\r\n\r\n"), head.size() + 5);
  const std::string odd = "PATCH /vm HTTP/1.1\r\ncOnTeNt-LeNgTh:\t 3 \r\n\r\n";
  EXPECT_EQ(Serve(odd + "abc"), odd.size() + 3);
  const std::string zero = "PUT /vm HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(Serve(zero), zero.size());
  const std::string twice = "PUT /vm HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n";
  EXPECT_EQ(Serve(twice + "ab"), twice.size() + 2) << "the first one counts, as in httplib";
}

// Whatever httplib reads by other rules, or refuses, goes to it with the
// header section: it answers (100 Continue, a 400 or a 413) under the
// request's deadline.
TEST(RequestFramingTest, OtherBodiesAreLeftToHttplib) {
  for (const std::string& head : {
           std::string("PUT /vm HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nHost: x\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nContent-Length: 51201\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"),
           std::string("PUT /vm HTTP/1.1\r\nContent-Length:\r\n\r\n"),
           std::string("GET /vm HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
           std::string("OPTIONS / HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
       }) {
    EXPECT_EQ(Serve(head), head.size()) << head;
  }
  const std::string at_limit = "POST /x HTTP/1.1\r\nContent-Length: 51200\r\n\r\n";
  EXPECT_EQ(Serve(at_limit), 0u) << "the largest body ember takes is still waited for";
}

}  // namespace
}  // namespace ember
