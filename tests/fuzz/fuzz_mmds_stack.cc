// Fuzz target: a hostile guest talking to MMDS. Input: byte 0 options (bit
// 0: fix up the IPv4 and TCP checksums so frames get past them, bit 1: say
// the TCP checksum is partial), byte 1 the size of the guest's receive
// buffers (40 + 8 * byte), then frames: a 2-byte little-endian length, a
// byte of time passing (10 ms units), the frame. After each frame the
// stack's output is drained; at the end time runs on so that every timer
// fires. Nothing may crash, and WriteNextFrame says 0 only when nothing is
// left.
#include <cstdlib>
#include <string>
#include <vector>

#include "devices/mmds/mmds_stack.h"

namespace ember {
namespace {

// Answers a request ending in an empty line with a response as long as the
// request's first byte says; 'C' first asks to close, 'Z' breaks the
// contract (consumes nothing).
class FuzzResponder : public MmdsResponder {
 public:
  std::optional<MmdsHttpExchange> Respond(std::string_view received) override {
    const size_t end = received.find("\r\n\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    const unsigned char first = static_cast<unsigned char>(received[0]);
    MmdsHttpExchange exchange;
    exchange.consumed = first == 'Z' ? 0 : end + 4;
    exchange.response.assign(size_t{first} * 23 + 1, 'r');
    exchange.close = first == 'C';
    return exchange;
  }
};

void FixChecksums(std::vector<uint8_t>& f) {
  if (f.size() < 34 || net::Load16(&f[12]) != net::kEtherTypeIpv4) return;
  const size_t ihl = size_t{f[14] & 0x0fu} * 4;
  if (ihl < 20 || 14 + ihl > f.size()) return;
  f[24] = f[25] = 0;
  net::Store16(&f[24], net::ChecksumFinish(net::ChecksumAdd(0, {&f[14], ihl})));
  const size_t total = net::Load16(&f[16]);
  if (f[23] != net::kIpProtocolTcp || total < ihl + 20 || 14 + total > f.size()) return;
  const size_t tcp = 14 + ihl;
  const size_t length = total - ihl;
  f[tcp + 16] = f[tcp + 17] = 0;
  const uint64_t sum = net::ChecksumAdd(
      net::TcpPseudoHeaderSum(net::Load32(&f[26]), net::Load32(&f[30]), length), {&f[tcp], length});
  net::Store16(&f[tcp + 16], net::ChecksumFinish(sum));
}

void Drain(MmdsStack& stack, std::vector<uint8_t>& buffer, MmdsStack::Clock::time_point now) {
  for (int i = 0; i < 100000 && stack.HasFrameForGuest(now); ++i) {
    const size_t written = stack.WriteNextFrame(buffer, now);
    if (written > buffer.size()) std::abort();
    if (written == 0 && stack.HasFrameForGuest(now)) std::abort();
  }
  if (stack.HasFrameForGuest(now)) std::abort();  // output must run dry
  if (stack.connection_count() > MmdsStack::kMaxConnections) std::abort();
}

}  // namespace
}  // namespace ember

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  if (size < 2) return 0;
  const bool fix_checksums = data[0] & 1;
  const bool partial = data[0] & 2;
  std::vector<uint8_t> buffer(40 + size_t{data[1]} * 8);
  MmdsStack stack(
      MmdsStack::kDefaultIpv4, [] { return std::make_unique<FuzzResponder>(); },
      /*isn_seed=*/1);
  MmdsStack::Clock::time_point now{std::chrono::seconds(1)};
  std::vector<uint8_t> frame;
  for (size_t at = 2; at + 3 <= size;) {
    const size_t length = std::min<size_t>(data[at] | data[at + 1] << 8, size - at - 3);
    now += std::chrono::milliseconds(10 * data[at + 2]);
    frame.assign(data + at + 3, data + at + 3 + length);
    at += 3 + length;
    if (fix_checksums) FixChecksums(frame);
    (void)stack.HandleGuestFrame(frame, now, partial);
    Drain(stack, buffer, now);
  }
  for (int i = 0; i < 40; ++i) {
    if (const std::optional<MmdsStack::Clock::time_point> next = stack.NextTimeout()) {
      now = std::max(now, *next);
    } else {
      now += std::chrono::seconds(1);
    }
    Drain(stack, buffer, now);
  }
  return 0;
}
