// A vhost-user backend that misbehaves on purpose, for the tests of how
// ember's frontend takes it. It listens on a socket and serves one
// frontend connection after another. An honest connection offers
// VIRTIO_F_VERSION_1 and PROTOCOL_FEATURES with REPLY_ACK (so ember waits
// for an answer to every request), answers everything and moves no
// packets. A hostile one behaves the same up to the chosen request, then:
//
//   short          replies with 4 payload bytes (the size field says so)
//   truncated      the size field says 8, 4 bytes come, then it hangs up
//   oversized      the size field says 0x100000
//   wrong-request  the reply names another request (SET_OWNER, 3)
//   wrong-flags    the reply lacks the reply flag (flags 0x1)
//   wrong-version  the reply has protocol version 2 (flags 0x6)
//   fds            a correct reply with an eventfd attached
//   nack           REPLY_ACK answers 1 (a failure)
//   silent         never answers (the connection stays open)
//   hangup         closes the connection instead of answering
//   hangup-after   answers, then closes the connection
//
//   hostile_vhost_user_backend SOCKET MODE [--at REQUEST] [--count K]
//                              [--honest-first N] [--hostile N]
//
// REQUEST is a request name as the spec spells it without VHOST_USER_
// (GET_FEATURES, the default; SET_OWNER, SET_MEM_TABLE, SET_VRING_ENABLE,
// ...); the misbehaviour comes at its K-th occurrence on the connection
// (default 1). The first N connections (--honest-first, default 0) are
// honest, the next --hostile N (default: all) hostile, any after honest
// again. Every connection and request is logged on stdout.
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vhost_user_backend_wire.h"

namespace {

using namespace ember::testing::wire;

struct RequestName {
  const char* name;
  uint32_t code;
};
constexpr RequestName kRequests[] = {
    {"GET_FEATURES", 1},    {"SET_FEATURES", 2},           {"SET_OWNER", 3},
    {"SET_MEM_TABLE", 5},   {"SET_VRING_NUM", 8},          {"SET_VRING_ADDR", 9},
    {"SET_VRING_BASE", 10}, {"GET_VRING_BASE", 11},        {"SET_VRING_KICK", 12},
    {"SET_VRING_CALL", 13}, {"GET_PROTOCOL_FEATURES", 15}, {"SET_PROTOCOL_FEATURES", 16},
    {"GET_QUEUE_NUM", 17},  {"SET_VRING_ENABLE", 18},      {"GET_MAX_MEM_SLOTS", 36},
    {"ADD_MEM_REG", 37},
};

const char* kModes[] = {"short",       "truncated",     "oversized",   "wrong-request",
                        "wrong-flags", "wrong-version", "fds",         "nack",
                        "silent",      "hangup",        "hangup-after"};

// One message: the header's three words, `payload`, and `fd` attached
// when it is not -1.
bool Send(int fd, uint32_t request, uint32_t flags, uint32_t size,
          const std::vector<uint8_t>& payload, int attached = -1) {
  uint32_t header[3] = {request, flags, size};
  iovec iov[2] = {{header, sizeof(header)}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (attached >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &attached, sizeof(int));
  }
  return sendmsg(fd, &message, MSG_NOSIGNAL) ==
         static_cast<ssize_t>(sizeof(header) + payload.size());
}

std::vector<uint8_t> U64(uint64_t value) {
  std::vector<uint8_t> bytes(8);
  std::memcpy(bytes.data(), &value, 8);
  return bytes;
}

// The honest answer to `request` (whose payload is `payload`).
std::vector<uint8_t> HonestReply(uint32_t request, const std::vector<uint8_t>& payload) {
  switch (request) {
    case kGetFeatures:
      return U64(kVersion1 | kProtocolFeatures);
    case kGetProtocolFeatures:
      return U64(kProtocolReplyAck);
    case kGetQueueNum:
      return U64(1);
    case kGetMaxMemSlots:
      return U64(8);
    case kGetVringBase: {
      uint32_t index = 0;
      if (payload.size() >= 4) std::memcpy(&index, payload.data(), 4);
      return U64(index);  // the ring's index, then 0 as its base
    }
    default:
      return U64(0);  // REPLY_ACK: success
  }
}

bool IsGet(uint32_t request) {
  return request == kGetFeatures || request == kGetProtocolFeatures || request == kGetQueueNum ||
         request == kGetMaxMemSlots || request == kGetVringBase;
}

struct Options {
  std::string mode;
  uint32_t at = kGetFeatures;
  int count = 1;
};

// Serves one connection until it ends (or the misbehaviour ends it).
void Serve(int frontend, bool hostile, const Options& options) {
  int seen = 0;
  uint32_t header[3];
  while (ReadAll(frontend, header, sizeof(header))) {
    std::vector<uint8_t> payload(header[2]);
    if (header[2] > 4096 || !ReadAll(frontend, payload.data(), payload.size())) break;
    const uint32_t request = header[0];
    std::printf("request %u\n", request);
    const bool answer = IsGet(request) || (header[1] & kFlagNeedReply);
    std::vector<uint8_t> reply = HonestReply(request, payload);
    if (!hostile || request != options.at || ++seen != options.count) {
      if (answer && !Send(frontend, request, kReplyFlags, 8, reply)) break;
      continue;
    }
    const std::string& mode = options.mode;
    std::printf("misbehaving: %s\n", mode.c_str());
    if (mode == "short") {
      reply.resize(4);
      Send(frontend, request, kReplyFlags, 4, reply);
    } else if (mode == "truncated") {
      reply.resize(4);
      Send(frontend, request, kReplyFlags, 8, reply);
      break;
    } else if (mode == "oversized") {
      Send(frontend, request, kReplyFlags, 0x100000, reply);
    } else if (mode == "wrong-request") {
      Send(frontend, kSetOwner, kReplyFlags, 8, reply);
    } else if (mode == "wrong-flags") {
      Send(frontend, request, 0x1, 8, reply);
    } else if (mode == "wrong-version") {
      Send(frontend, request, 0x2 | 0x4, 8, reply);
    } else if (mode == "fds") {
      int event = eventfd(0, EFD_CLOEXEC);
      Send(frontend, request, kReplyFlags, 8, reply, event);
      close(event);
    } else if (mode == "nack") {
      Send(frontend, request, kReplyFlags, 8, U64(1));
    } else if (mode == "silent") {
      // Reads on, answering nothing, until the frontend gives up.
      char sink[4096];
      while (read(frontend, sink, sizeof(sink)) > 0) {
      }
      break;
    } else if (mode == "hangup") {
      break;
    } else if (mode == "hangup-after") {
      if (answer) Send(frontend, request, kReplyFlags, 8, reply);
      break;
    }
  }
  close(frontend);
  std::printf("connection closed\n");
}

}  // namespace

int main(int argc, char** argv) {
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: hostile_vhost_user_backend SOCKET MODE [--at REQUEST] [--count K] "
                 "[--honest-first N] [--hostile N]\n");
    return 2;
  };
  if (argc < 3) return usage();
  Options options;
  options.mode = argv[2];
  bool known = false;
  for (const char* mode : kModes) known = known || options.mode == mode;
  if (!known) return usage();
  long honest_first = 0, hostile = -1;
  for (int i = 3; i < argc; i += 2) {
    if (i + 1 >= argc) return usage();
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--at") {
      options.at = 0;
      for (const RequestName& r : kRequests) {
        if (value == r.name) options.at = r.code;
      }
      if (options.at == 0) return usage();
    } else if (flag == "--count") {
      options.count = std::atoi(value.c_str());
    } else if (flag == "--honest-first") {
      honest_first = std::atol(value.c_str());
    } else if (flag == "--hostile") {
      hostile = std::atol(value.c_str());
    } else {
      return usage();
    }
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int listener = Listen(argv[1], 4);
  if (listener < 0) return 1;
  for (long connection = 0;; ++connection) {
    int frontend = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (frontend < 0) continue;
    const bool is_hostile =
        connection >= honest_first && (hostile < 0 || connection < honest_first + hostile);
    std::printf("connection %ld %s\n", connection, is_hostile ? "hostile" : "honest");
    Serve(frontend, is_hostile, options);
  }
}
