// One vsock stream between a guest port and a host Unix socket: its state,
// the credit each side gives the other (virtio 1.2, 5.10.6.3), and the
// guest's bytes the host socket has not taken yet. A VsockDevice owns its
// connections and drives them from its worker.
//
// Credit: ember offers each stream kBufferBytes (buf_alloc) and counts
// what it has passed on to the host (fwd_cnt); a driver that sends more
// than that is hostile and loses the stream. Towards the guest, ember
// sends no more than the guest's buf_alloc minus what it has not consumed.
// So each stream holds at most kBufferBytes in ember, whatever either side does.
//
// Thread-safety: the device's worker only.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/vsock_packet.h"

namespace ember {

class VsockConnection {
 public:
  static constexpr uint32_t kBufferBytes = 256 * 1024;

  enum class State {
    kConnecting,   // the host asked (CONNECT); REQUEST sent, waiting for RESPONSE
    kEstablished,  // data flows
    kClosing,      // the host went away; SHUTDOWN sent, waiting for the guest's RST
  };

  VsockConnection(UniqueFd socket, uint32_t local_port, uint32_t peer_port, State state)
      : socket_(std::move(socket)), local_port_(local_port), peer_port_(peer_port), state_(state) {}

  int fd() const { return socket_.get(); }
  uint32_t local_port() const { return local_port_; }  // the host side (CID 2)
  uint32_t peer_port() const { return peer_port_; }    // the guest side
  State state() const { return state_; }
  void set_state(State state) { state_ = state; }

  // Every guest packet on the stream carries its credit.
  void UpdatePeerCredit(uint32_t buf_alloc, uint32_t fwd_cnt);
  // Bytes the guest can take now.
  uint32_t PeerCredit() const;
  // A header for a packet to the guest; it carries ember's credit, so the
  // guest's view of it is current afterwards.
  vsock::PacketHeader Header(uint64_t guest_cid, vsock::Op op, uint32_t len = 0,
                             uint32_t flags = 0);
  // A RST for a stream ember no longer has.
  static vsock::PacketHeader ResetHeader(uint64_t guest_cid, uint32_t host_port,
                                         uint32_t guest_port);
  // `bytes` of data went to the guest.
  void SentToGuest(uint32_t bytes) { tx_cnt_ += bytes; }

  // Guest data: false when it goes beyond the credit ember gave.
  bool WithinCredit(uint32_t bytes) const;
  // Writes what the host socket takes now and keeps the rest. False: the
  // socket is broken (the host closed it).
  bool SendToHost(std::span<const iovec> data);
  // Writes kept data. False: the socket is broken.
  bool FlushToHost();
  bool has_buffered() const { return !to_host_.empty(); }
  // The guest's view of ember's free space is low while ember has more:
  // it would stall without a CREDIT_UPDATE.
  bool CreditUpdateDue() const;

  // What is still to be sent to the guest about this stream.
  bool pending_request = false;
  bool pending_response = false;
  bool pending_credit_update = false;
  // Host and guest directions.
  bool host_readable = false;    // the socket has data (or EOF) to look at
  bool host_eof = false;         // the host will send no more
  bool guest_shut_send = false;  // the guest will send no more
  bool guest_shut_rcv = false;   // the guest will receive no more
  bool queued_for_rx = false;    // in the device's receive round
  // In the device's epoll sets (only while there is something to wait for:
  // a socket that hung up would otherwise wake the worker forever).
  bool watched_readable = false;
  bool watched_writable = false;
  std::chrono::steady_clock::time_point deadline{};  // kConnecting and kClosing

 private:
  void Forwarded(size_t bytes);

  UniqueFd socket_;
  const uint32_t local_port_;
  const uint32_t peer_port_;
  State state_;
  // Credit: what the guest offers, and what ember sent it so far.
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
  uint32_t tx_cnt_ = 0;
  // What the guest sent (rx_cnt_), and of it what the host took (fwd_cnt_);
  // last_fwd_cnt_sent_ is the fwd_cnt the guest last heard.
  uint32_t rx_cnt_ = 0;
  uint32_t fwd_cnt_ = 0;
  uint32_t last_fwd_cnt_sent_ = 0;
  std::vector<uint8_t> to_host_;
};

}  // namespace ember
