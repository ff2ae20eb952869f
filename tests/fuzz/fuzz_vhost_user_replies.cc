// Fuzz target: what a vhost-user backend answers (virtiofsd, testpmd,
// qemu-storage-daemon, or whatever process owns the socket). The input is
// the backend's whole side of the conversation, written into a socket pair
// and then shut; the frontend asks what device set-up asks: features,
// protocol features, an acked SET_OWNER, the config space, a ring's base,
// the queue count, the memory slots. Every reply is checked before it is
// trusted: an error naming the request, never a crash or a hang.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "devices/vhost_user/vhost_user_connection.h"
#include "jail/seccomp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static bool once = [] {
    SetSeccompEnabled(false);
    return true;
  }();
  (void)once;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) std::abort();
  UniqueFd backend(pair[1]);
  // The replies, all at once (a pair holds ~200 KiB; longer inputs are cut).
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(backend.get(), data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  shutdown(backend.get(), SHUT_WR);  // then EOF, not a 5 s timeout
  VhostUserConnection frontend(UniqueFd(pair[0]), "fuzz backend", std::chrono::milliseconds(50));
  (void)frontend.GetU64(vhost_user::kGetFeatures);
  (void)frontend.GetU64(vhost_user::kGetProtocolFeatures);
  frontend.set_reply_ack(true);
  (void)frontend.Send(vhost_user::kSetOwner);
  frontend.set_reply_ack(false);
  (void)frontend.GetConfig(60);
  (void)frontend.GetVringBase(0);
  (void)frontend.GetU64(vhost_user::kGetQueueNum);
  (void)frontend.GetU64(vhost_user::kGetMaxMemSlots);
  return 0;
}
