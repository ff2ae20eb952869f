/*
 * ember test guest: a minimal polling virtio-vsock driver (virtio 1.x,
 * 5.10) and the `vsock` test, which serves the host until Ctrl-Alt-Del:
 *
 *   - port 1024 echoes every byte back (host-initiated streams);
 *   - port 1025 is a slow reader: it takes nothing for VSOCK_STALL after
 *     the stream opens (so the host must wait on credit), then counts the
 *     bytes and their sum and, once the host has shut its sending side,
 *     answers "sum <bytes> <byte_sum>\n";
 *   - ember.vsock=P1,P2,... connects to host port Pi at start (guest-
 *     initiated), says "hello from guest port Pi\n" and echoes what comes
 *     back; port 5002 instead pushes VSOCK_PUSH bytes of a fixed pattern
 *     (offset i holds pattern[i % 4096]) as fast as the host's credit
 *     allows, and says so when it has to wait;
 *   - a stream that receives "close\n" is closed by the guest (SHUTDOWN
 *     with both flags), as an application's close() would;
 *   - REQUESTs to other ports are refused with RST.
 *
 * Every stream offers the host VSOCK_BUF_ALLOC bytes of credit.  One
 * descriptor per packet (header and payload together) on both queues.
 */

#include "virtio.h"

#define VIRTIO_ID_VSOCK		19
#define RXQ			0
#define TXQ			1
#define EVQ			2
#define HDR			44
#define BUF			4096
#define PAYLOAD_MAX		(BUF - HDR)
#define VSOCK_BUF_ALLOC		4096
#define MAX_CONNS		80
#define HOST_CID		2
#define ECHO_PORT		1024
#define SLOW_PORT		1025
#define PUSH_PORT		5002
#define FIRST_LOCAL_PORT	40000
#define VSOCK_STALL		(2000 * TSC_PER_MS)
#define VSOCK_PUSH		(1024 * 1024)
#define TX_WAIT			(5000 * TSC_PER_MS)

#define OP_REQUEST		1
#define OP_RESPONSE		2
#define OP_RST			3
#define OP_SHUTDOWN		4
#define OP_RW			5
#define OP_CREDIT_UPDATE	6
#define OP_CREDIT_REQUEST	7
#define SHUT_BOTH		3
#define SHUT_SEND		2

struct vsock_hdr {
  u64 src_cid, dst_cid;
  u32 src_port, dst_port, len;
  u16 type, op;
  u32 flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum { C_FREE, C_CONNECTING, C_OPEN, C_CLOSING };
enum { R_ECHO, R_SLOW, R_PUSH };

struct conn {
  u32 state, role;
  u32 local_port, peer_port;               /* local: the guest's side */
  u32 peer_buf_alloc, peer_fwd_cnt, tx_cnt; /* the host's credit to us */
  u32 fwd_cnt;                              /* bytes this guest has consumed */
  u32 held;                                 /* received, not consumed yet */
  u32 peer_shut;
  u64 opened, bytes, sum;
  u32 pushed;
  int waiting;  /* R_PUSH: said that it waits for credit */
  u8 data[VSOCK_BUF_ALLOC];
};

static struct vring_mem rx_mem, tx_mem, ev_mem;
static struct queue rxq, txq, evq;
static u8 rx_buf[QSZ_MAX][BUF] __attribute__((aligned(4096)));
static u8 tx_buf[QSZ_MAX][BUF] __attribute__((aligned(4096)));
static u8 ev_buf[8];
static u16 tx_free[QSZ_MAX];
static u32 tx_nfree;
static struct conn conns[MAX_CONNS];
static u8 pattern[4096];
static uptr vbase;
static u64 guest_cid;
static u32 accepted, refused, host_closed, guest_closed, echoed, overruns, bad;

static void copy(void *to, const void *from, u64 n) {
  __asm__ volatile("rep movsb" : "+D"(to), "+S"(from), "+c"(n) : : "memory");
}

static u32 credit(const struct conn *c) {
  u32 in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static void reap_tx(void) {
  while (txq.used_seen != vq_used_idx(&txq)) {
    tx_free[tx_nfree++] = (u16)txq.mem->used.ring[txq.used_seen % txq.size].id;
    txq.used_seen++;
  }
}

/* Sends one packet (header and `len` bytes of `data`); 0 if no descriptor frees up. */
static int send_raw(u32 src_port, u32 dst_port, u16 op, u32 flags, u32 fwd_cnt, const void *data,
                    u32 len) {
  u64 deadline = rdtsc() + TX_WAIT;
  for (reap_tx(); !tx_nfree; reap_tx())
    if (rdtsc() > deadline) return 0;
  u16 d = tx_free[--tx_nfree];
  struct vsock_hdr *h = (struct vsock_hdr *)tx_buf[d];
  h->src_cid = guest_cid;
  h->dst_cid = HOST_CID;
  h->src_port = src_port;
  h->dst_port = dst_port;
  h->len = len;
  h->type = 1;
  h->op = op;
  h->flags = flags;
  h->buf_alloc = VSOCK_BUF_ALLOC;
  h->fwd_cnt = fwd_cnt;
  if (len) copy(tx_buf[d] + HDR, data, len);
  txq.mem->desc[d] = (struct vring_desc){(uptr)tx_buf[d], HDR + len, 0, 0};
  txq.mem->avail.ring[txq.avail_idx % txq.size] = d;
  txq.avail_idx++;
  vq_publish(vbase, TXQ, &txq);
  return 1;
}

static int send_pkt(struct conn *c, u16 op, u32 flags, const void *data, u32 len) {
  if (!send_raw(c->local_port, c->peer_port, op, flags, c->fwd_cnt, data, len)) return 0;
  c->tx_cnt += len;
  return 1;
}

static struct conn *find(u32 local_port, u32 peer_port) {
  for (u32 i = 0; i < MAX_CONNS; i++)
    if (conns[i].state != C_FREE && conns[i].local_port == local_port &&
        conns[i].peer_port == peer_port)
      return &conns[i];
  return 0;
}

static struct conn *alloc(u32 local_port, u32 peer_port, u32 role, u32 state) {
  for (u32 i = 0; i < MAX_CONNS; i++) {
    struct conn *c = &conns[i];
    if (c->state != C_FREE) continue;
    c->state = state;
    c->role = role;
    c->local_port = local_port;
    c->peer_port = peer_port;
    c->peer_buf_alloc = c->peer_fwd_cnt = c->tx_cnt = c->fwd_cnt = 0;
    c->held = c->peer_shut = c->pushed = 0;
    c->waiting = 0;
    c->bytes = c->sum = 0;
    c->opened = rdtsc();
    return c;
  }
  return 0;
}

static void say_port(const char *what, u32 port, const char *tail) {
  line("vsock ");
  put_str(what);
  put_char(' ');
  put_dec(port);
  put_str(tail);
}

/* The guest closes a stream as close() would: both directions, then waits for RST. */
static void close_stream(struct conn *c) {
  send_pkt(c, OP_SHUTDOWN, SHUT_BOTH, 0, 0);
  c->state = C_CLOSING;
  guest_closed++;
}

static int is_close_line(const struct conn *c) {
  static const char kClose[] = "close\n";
  if (c->held != 6) return 0;
  for (u32 i = 0; i < 6; i++)
    if (c->data[i] != (u8)kClose[i]) return 0;
  return 1;
}

static void on_packet(const struct vsock_hdr *h, const u8 *payload, u32 len) {
  if (h->src_cid != HOST_CID || h->dst_cid != guest_cid || h->type != 1 || len < HDR + h->len) {
    bad++;
    return;
  }
  struct conn *c = find(h->dst_port, h->src_port);
  if (!c) {
    if (h->op == OP_REQUEST && (h->dst_port == ECHO_PORT || h->dst_port == SLOW_PORT)) {
      c = alloc(h->dst_port, h->src_port, h->dst_port == SLOW_PORT ? R_SLOW : R_ECHO, C_OPEN);
      if (c) {
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        send_pkt(c, OP_RESPONSE, 0, 0, 0);
        accepted++;
        return;
      }
    }
    if (h->op == OP_REQUEST) refused++;
    if (h->op != OP_RST) send_raw(h->dst_port, h->src_port, OP_RST, 0, 0, 0, 0);
    return;
  }
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
    case OP_RESPONSE:
      if (c->state == C_CONNECTING) {
        c->state = C_OPEN;
        say_port("connect", c->peer_port, " ok\n");
        static char hello[] = "hello from guest port 00000\n";
        u32 p = c->peer_port;
        for (int i = 26; i >= 22; i--, p /= 10) hello[i] = (char)('0' + p % 10);
        send_pkt(c, OP_RW, 0, hello, sizeof(hello) - 1);
      }
      break;
    case OP_RST:
      if (c->state == C_CONNECTING) say_port("connect", c->peer_port, " rst\n");
      if (c->state == C_CLOSING) say_port("closed", c->peer_port, " rst\n");
      c->state = C_FREE;
      break;
    case OP_RW:
      if (c->state != C_OPEN) break;
      if (c->held + h->len > VSOCK_BUF_ALLOC) {
        overruns++;  /* the device sent beyond the credit this guest gave */
        break;
      }
      copy(c->data + c->held, payload + HDR, h->len);
      c->held += h->len;
      if (c->role != R_SLOW && is_close_line(c)) {
        c->fwd_cnt += c->held;
        c->held = 0;
        close_stream(c);
      }
      break;
    case OP_CREDIT_REQUEST:
      send_pkt(c, OP_CREDIT_UPDATE, 0, 0, 0);
      break;
    case OP_SHUTDOWN:
      c->peer_shut |= h->flags;
      if ((c->peer_shut & SHUT_BOTH) == SHUT_BOTH) {
        /* The host is gone: RST, as Linux answers a full shutdown. */
        send_pkt(c, OP_RST, 0, 0, 0);
        c->state = C_FREE;
        host_closed++;
      }
      break;
    default:
      break;
  }
}

static void post_rx(u16 d) {
  rxq.mem->desc[d] = (struct vring_desc){(uptr)rx_buf[d], BUF, DESC_F_WRITE, 0};
  rxq.mem->avail.ring[rxq.avail_idx % rxq.size] = d;
  rxq.avail_idx++;
}

static void poll_rx(void) {
  u32 n = 0;
  while (rxq.used_seen != vq_used_idx(&rxq)) {
    struct vring_used_elem *e = &rxq.mem->used.ring[rxq.used_seen % rxq.size];
    rxq.used_seen++;
    if (e->len >= HDR && e->id < rxq.size)
      on_packet((const struct vsock_hdr *)rx_buf[e->id], rx_buf[e->id], e->len);
    post_rx((u16)e->id);
    n++;
  }
  if (n) vq_publish(vbase, RXQ, &rxq);
}

/* What each open stream does when it gets the chance. */
static void work(struct conn *c) {
  if (c->state != C_OPEN) return;
  if (c->role == R_ECHO && c->held) {
    u32 n = c->held;
    if (n > credit(c)) n = credit(c);
    if (n > PAYLOAD_MAX) n = PAYLOAD_MAX;
    if (!n) return;
    c->fwd_cnt += n;  /* consumed: the packet carries the freed credit */
    if (!send_pkt(c, OP_RW, 0, c->data, n)) {
      c->fwd_cnt -= n;
      return;
    }
    copy(c->data, c->data + n, c->held - n);
    c->held -= n;
    echoed += n;
  }
  if (c->role == R_SLOW && rdtsc() - c->opened > VSOCK_STALL) {
    if (c->held) {
      c->sum += byte_sum((uptr)c->data, c->held);
      c->bytes += c->held;
      c->fwd_cnt += c->held;
      c->held = 0;
      send_pkt(c, OP_CREDIT_UPDATE, 0, 0, 0);
    } else if (c->peer_shut & SHUT_SEND) {
      static char answer[64];
      u32 i = 0;
      const char *s = "sum ";
      while (*s) answer[i++] = *s++;
      char digits[24];
      u32 k = 0;
      u64 v = c->bytes;
      do digits[k++] = (char)('0' + v % 10); while (v /= 10);
      while (k) answer[i++] = digits[--k];
      answer[i++] = ' ';
      v = (u32)c->sum;
      do digits[k++] = (char)('0' + v % 10); while (v /= 10);
      while (k) answer[i++] = digits[--k];
      answer[i++] = '\n';
      send_pkt(c, OP_RW, 0, answer, i);
      say_port("slow reader got", (u32)c->bytes, " bytes\n");
      close_stream(c);
    }
  }
  if (c->role == R_PUSH && c->pushed < VSOCK_PUSH) {
    u32 n = VSOCK_PUSH - c->pushed;
    if (n > PAYLOAD_MAX) n = PAYLOAD_MAX;
    if (n > credit(c)) n = credit(c);
    if (!n) {
      if (!c->waiting) say_port("push waits for credit at", c->pushed, " bytes\n");
      c->waiting = 1;
      return;
    }
    /* pattern[i % 4096] for stream offset i: at most two pieces */
    static u8 chunk[PAYLOAD_MAX];
    u32 off = c->pushed % 4096, first = 4096 - off;
    if (first > n) first = n;
    copy(chunk, pattern + off, first);
    copy(chunk + first, pattern, n - first);
    if (!send_pkt(c, OP_RW, 0, chunk, n)) return;
    c->pushed += n;
    if (c->pushed == VSOCK_PUSH) say_port("push done", c->pushed, " bytes\n");
  }
}

/* ember.vsock=P1,P2: the ports to connect to at start. */
static void connect_out(const char *cmdline) {
  static const char kKey[] = "ember.vsock=";
  const char *p = cmdline;
  for (; *p; p++) {
    const char *k = kKey, *q = p;
    while (*k && *q == *k) q++, k++;
    if (*k) continue;
    u32 local = FIRST_LOCAL_PORT;
    while (*q > ' ') {
      u32 port = 0;
      while (*q >= '0' && *q <= '9') port = port * 10 + (u32)(*q++ - '0');
      if (*q == ',') q++;
      struct conn *c = alloc(local++, port, port == PUSH_PORT ? R_PUSH : R_ECHO, C_CONNECTING);
      if (c) send_pkt(c, OP_REQUEST, 0, 0, 0);
    }
    return;
  }
}

void test_vsock(const char *cmdline) {
  vbase = virtio_find(cmdline, VIRTIO_ID_VSOCK);
  if (!vbase) {
    line("vsock no-device\n");
    return;
  }
  u32 got = 0;
  const char *err = virtio_negotiate(vbase, 0, &got);
  if (!err) err = virtio_setup_queue(vbase, RXQ, &rxq, &rx_mem, 1);
  if (!err) err = virtio_setup_queue(vbase, TXQ, &txq, &tx_mem, 1);
  if (!err) err = virtio_setup_queue(vbase, EVQ, &evq, &ev_mem, 1);
  if (err) {
    line("vsock setup-failed ");
    put_str(err);
    put_char('\n');
    virtio_fail(vbase);
    return;
  }
  guest_cid = (u64)rd32(vbase + REG_CONFIG) | (u64)rd32(vbase + REG_CONFIG + 4) << 32;
  for (u32 i = 0; i < 4096; i++) pattern[i] = (u8)(i * 7 + i / 251);
  for (u16 d = 0; d < txq.size; d++) tx_free[tx_nfree++] = d;
  for (u16 d = 0; d < rxq.size; d++) post_rx(d);
  evq.mem->desc[0] = (struct vring_desc){(uptr)ev_buf, sizeof(ev_buf), DESC_F_WRITE, 0};
  evq.mem->avail.ring[0] = 0;
  evq.avail_idx = 1;
  virtio_driver_ok(vbase);
  vq_publish(vbase, RXQ, &rxq);
  vq_publish(vbase, EVQ, &evq);
  line("vsock ready cid=");
  put_dec(guest_cid);
  put_char('\n');
  connect_out(cmdline);
  u32 cad = 0;
  while (!cad_poll(&cad)) {
    poll_rx();
    for (u32 i = 0; i < MAX_CONNS; i++)
      if (conns[i].state == C_OPEN) work(&conns[i]);
    reap_tx();
  }
  line("vsock done accepted=");
  put_dec(accepted);
  put_str(" refused=");
  put_dec(refused);
  put_str(" echoed=");
  put_dec(echoed);
  put_str(" host_closed=");
  put_dec(host_closed);
  put_str(" guest_closed=");
  put_dec(guest_closed);
  put_str(" overruns=");
  put_dec(overruns);
  put_str(" bad=");
  put_dec(bad);
  put_char('\n');
}
