/*
 * ember test guest: a minimal polling virtio-net driver on the virtio-mmio
 * transport of virtio.c, and the net, netpeer, netloop and netbench tests.
 * Written from the virtio 1.x specification (5.1, network device).
 *
 * Features: VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS
 * only, so every frame is preceded by the 12-byte struct virtio_net_hdr
 * (zero on transmit: no offloads) and one descriptor holds a whole frame.
 * Queue 0 (receive) keeps one 2 KiB device-writable buffer per entry
 * posted; queue 1 (transmit) sends each frame as a one-descriptor chain
 * with header and frame in one 2 KiB buffer, reclaimed by polling the used
 * ring.  No interrupts (IF=0): both avail rings ask for none.
 *
 * Test frames: destination, own MAC, ethertype 0x88b5 (local
 * experimental), a 32-bit big-endian sequence number, then a pattern:
 * bytes of a table of pseudo-random 64-bit words (built once), starting
 * at word seq % 256.  The length, 60 to 1514 bytes, follows from seq too,
 * so a receiver checks a frame with nothing but its seq.  Under an
 * emulating hypervisor every instruction costs about half a microsecond
 * and a string instruction about as much per element, so payloads are
 * copied with `rep movsq` and compared with `repe cmpsq`, 8 bytes per
 * element (3-4 times cheaper than a loop of moves).
 */

#include "virtio.h"

#define NET_F_MAC		(1u << 5)
#define NET_F_STATUS		(1u << 16)

/* struct virtio_net_config */
#define NET_CONFIG_MAC		0
#define NET_CONFIG_STATUS	6
#define NET_S_LINK_UP		1

#define RX_QUEUE		0
#define TX_QUEUE		1
#define MIN_QUEUE		32	/* at least this many receive buffers posted */

#define NET_HDR_LEN		12	/* struct virtio_net_hdr with VERSION_1 */
#define BUF_SIZE		2048
#define ETH_ALEN		6
#define ETH_HLEN		14
#define ETH_MIN			60	/* without the FCS */
#define ETH_MAX			1514
#define ETHERTYPE_TEST		0x88b5
#define SEQ_OFF			ETH_HLEN
#define PATTERN_OFF		(ETH_HLEN + 4)

#define PAT_OFFSETS		256	/* payload start: word seq % PAT_OFFSETS */
#define PAT_WORDS		(PAT_OFFSETS + (ETH_MAX - PATTERN_OFF + 7) / 8)

/* Times are fixed TSC counts (lib.h's TSC_PER_MS: the PVM host's 2.6 GHz). */
#define NET_FRAMES		64
#define NET_TIMEOUT		(5000 * TSC_PER_MS)
#define PROBE_SEQ		0x80000000u	/* and up: probes, never test frames */
#define PROBE_PERIOD		(10 * TSC_PER_MS)
#define PROBE_DRAIN		(20 * TSC_PER_MS)
#define PEER_GOAL		32
#define PEER_PERIOD		(1 * TSC_PER_MS)
#define PEER_LINGER		(300 * TSC_PER_MS)
#define PEER_TIMEOUT		(10000 * TSC_PER_MS)
#define LOOP_PERIOD		(2 * TSC_PER_MS)
#define LOOP_CAD_POLL		(TSC_PER_MS / 2)	/* i8042 poll interval */
#define LOOP_REPORT		100	/* a line per this many received frames */
#define LOOP_BAD_LINES		3
#define BENCH_LEN		64	/* netbench frames: bytes after the virtio header */
#define BENCH_RTT_N		1000
#define BENCH_RTT_TIMEOUT	(1000 * TSC_PER_MS)	/* per round trip */
#define BENCH_BURST		(500 * TSC_PER_MS)
#define BENCH_DRAIN		(20 * TSC_PER_MS)
#define BENCH_BURST_SEQ		BENCH_RTT_N	/* burst frames: this seq and up */
#define BENCH_WORDS		((NET_HDR_LEN + BENCH_LEN + 7) / 8)
_Static_assert(QSZ_MAX <= 64, "netbench keeps a 64-bit mask of transmit buffers");

typedef u64 __attribute__((may_alias, aligned(1))) u64_unaligned;
typedef u32 __attribute__((may_alias, aligned(1))) u32_unaligned;
typedef u16 __attribute__((may_alias, aligned(1))) u16_unaligned;

static const u8 kTestPeer[ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x01};
static const u8 kBroadcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* Uninitialised on purpose (.bss): the device reads and writes them. */
static struct vring_mem net_rings[2];
static u8 rx_buf[QSZ_MAX][BUF_SIZE] __attribute__((aligned(4096)));
static u8 tx_buf[QSZ_MAX][BUF_SIZE] __attribute__((aligned(4096)));
static u64 pat[PAT_WORDS];

enum { NET_NONE, NET_READY, NET_FAILED };

static struct {
  u32 state;
  uptr base;
  struct queue rx, tx;
  u8 mac[ETH_ALEN];
  u16 status;
  u32 tx_nfree;
  u16 tx_free[QSZ_MAX];  /* descriptor (= buffer) indices not in flight */
} net = {0};

/* ---- helpers -------------------------------------------------------------- */

static int mac_eq(const u8 *a, const u8 *b) {
  return *(const u32_unaligned *)a == *(const u32_unaligned *)b &&
         *(const u16_unaligned *)(a + 4) == *(const u16_unaligned *)(b + 4);
}

static void mac_copy(u8 *dst, const u8 *src) {
  *(u32_unaligned *)dst = *(const u32_unaligned *)src;
  *(u16_unaligned *)(dst + 4) = *(const u16_unaligned *)(src + 4);
}

/* n bytes from src to dst: n / 8 words, then the rest byte by byte. */
static void copy_bytes(void *dst, const void *src, u64 n) {
  u64 words = n / 8, rest = n % 8;
  __asm__ volatile("cld; rep movsq" : "+D"(dst), "+S"(src), "+c"(words) : : "memory");
  __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(rest) : : "memory");
}

/* 1 if the n bytes at a and b are equal. */
static int same_bytes(const void *a, const void *b, u64 n) {
  u64 words = n / 8, rest = n % 8;
  int eq = 1;
  if (words)
    __asm__ volatile("cld; repe cmpsq"
                     : "=@ccz"(eq), "+D"(a), "+S"(b), "+c"(words) : : "memory");
  if (eq && rest)
    __asm__ volatile("cld; repe cmpsb"
                     : "=@ccz"(eq), "+D"(a), "+S"(b), "+c"(rest) : : "memory");
  return eq;
}

/* The pattern table: an LCG's states with their high bits folded in. */
static void fill_pattern_table(void) {
  u64 x = 0x2545f4914f6cdd1dULL;
  for (u32 k = 0; k < PAT_WORDS; k++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    pat[k] = x ^ (x >> 29);
  }
}

static const u8 *pattern(u32 seq) { return (const u8 *)&pat[seq % PAT_OFFSETS]; }

static void put_mac(const u8 *m) {
  static const char kHex[] = "0123456789abcdef";
  for (u32 i = 0; i < ETH_ALEN; i++) {
    if (i) put_char(':');
    put_char(kHex[m[i] >> 4]);
    put_char(kHex[m[i] & 15]);
  }
}

/* 60..1514: a permutation (37 is odd) of 64 evenly spaced lengths. */
static u32 frame_len(u32 seq) {
  return ETH_MIN + ((seq * 37) & 63) * (ETH_MAX - ETH_MIN) / 63;
}

/* Writes the frame for `seq` to `f`; returns its length. */
static u32 build_frame(u8 *f, const u8 *dst, u32 seq) {
  u32 len = frame_len(seq);
  mac_copy(f, dst);
  mac_copy(f + ETH_ALEN, net.mac);
  f[12] = ETHERTYPE_TEST >> 8;
  f[13] = ETHERTYPE_TEST & 0xff;
  f[SEQ_OFF] = (u8)(seq >> 24);
  f[SEQ_OFF + 1] = (u8)(seq >> 16);
  f[SEQ_OFF + 2] = (u8)(seq >> 8);
  f[SEQ_OFF + 3] = (u8)seq;
  copy_bytes(f + PATTERN_OFF, pattern(seq), len - PATTERN_OFF);
  return len;
}

/*
 * Checks a received frame: destination `dst`, ethertype, length and
 * pattern for its seq.  Returns 1 and *seq if it is intact.
 */
static int check_frame(const u8 *f, u32 len, const u8 *dst, u32 *seq) {
  if (len < PATTERN_OFF || !mac_eq(f, dst)) return 0;
  if (f[12] != ETHERTYPE_TEST >> 8 || f[13] != (ETHERTYPE_TEST & 0xff)) return 0;
  u32 s = (u32)f[SEQ_OFF] << 24 | (u32)f[SEQ_OFF + 1] << 16 | (u32)f[SEQ_OFF + 2] << 8 |
          f[SEQ_OFF + 3];
  if (len != frame_len(s) || !same_bytes(f + PATTERN_OFF, pattern(s), len - PATTERN_OFF))
    return 0;
  *seq = s;
  return 1;
}

/* ---- the device ------------------------------------------------------------ */

static int net_failed(const char *test, const char *what) {
  line(test);
  put_str(" error ");
  put_str(what);
  put_char('\n');
  if (net.base) virtio_fail(net.base);
  net.state = NET_FAILED;
  return 0;
}

/* MAC (8-bit reads) and, if negotiated, status, under ConfigGeneration. */
static void read_net_config(uptr base, u32 features) {
  uptr cfg = base + REG_CONFIG;
  net.status = NET_S_LINK_UP;  /* without VIRTIO_NET_F_STATUS the link is up */
  for (u32 tries = 0; tries < 4; tries++) {
    u32 gen = mmio_read(base, REG_CONFIG_GENERATION);
    for (u32 i = 0; i < ETH_ALEN; i++) net.mac[i] = rd8(cfg + NET_CONFIG_MAC + i);
    if (features & NET_F_STATUS) net.status = rd16(cfg + NET_CONFIG_STATUS);
    if (mmio_read(base, REG_CONFIG_GENERATION) == gen) return;
  }
}

/*
 * Finds the first net device and brings it up, once per boot (netpeer
 * reuses what net set up).  Prints "<test> mac=... status=..." and returns
 * 1 when the device is usable; prints why not otherwise.
 */
static int net_start(const char *cmdline, const char *test) {
  if (net.state == NET_FAILED) {
    line(test);
    put_str(" device-failed\n");
    return 0;
  }
  if (net.state == NET_NONE) {
    uptr base = virtio_find(cmdline, VIRTIO_ID_NET);
    if (!base) {
      line(test);
      put_str(" no-device\n");
      return 0;
    }
    net.base = base;
    u32 features = 0;
    const char *err = virtio_negotiate(base, NET_F_MAC | NET_F_STATUS, &features);
    if (err) return net_failed(test, err);
    if (!(features & NET_F_MAC)) return net_failed(test, "no-mac");
    read_net_config(base, features);
    fill_pattern_table();
    err = virtio_setup_queue(base, RX_QUEUE, &net.rx, &net_rings[RX_QUEUE], MIN_QUEUE);
    if (!err) err = virtio_setup_queue(base, TX_QUEUE, &net.tx, &net_rings[TX_QUEUE], 1);
    if (err) return net_failed(test, err);

    /* Every receive entry gets its buffer, for good: descriptor i is
       buffer i, and a used buffer goes back by its index. */
    struct vring_mem *rm = net.rx.mem;
    for (u32 i = 0; i < net.rx.size; i++) {
      rm->desc[i] = (struct vring_desc){(uptr)rx_buf[i], BUF_SIZE, DESC_F_WRITE, 0};
      rm->avail.ring[i] = (u16)i;
    }
    net.rx.avail_idx = net.rx.size;
    struct vring_mem *tm = net.tx.mem;
    for (u32 i = 0; i < net.tx.size; i++) {
      tm->desc[i] = (struct vring_desc){(uptr)tx_buf[i], 0, 0, 0};
      net.tx_free[i] = (u16)i;
    }
    net.tx_nfree = net.tx.size;
    virtio_driver_ok(base);
    vq_publish(base, RX_QUEUE, &net.rx);  /* after DRIVER_OK: may notify */
    net.state = NET_READY;
  }
  line(test);
  put_str(" mac=");
  put_mac(net.mac);
  put_str(" status=");
  put_dec(net.status);
  put_char('\n');
  return 1;
}

/* Takes back the transmit buffers the device is done with. */
static void tx_reclaim(void) {
  struct queue *q = &net.tx;
  u16 used = vq_used_idx(q);
  if (q->used_seen == used) return;
  barrier();  /* the entries after the index */
  for (; q->used_seen != used; q->used_seen++) {
    u32 id = q->mem->used.ring[q->used_seen & (q->size - 1)].id;
    if (id < q->size && net.tx_nfree < q->size) net.tx_free[net.tx_nfree++] = (u16)id;
  }
}

/* A free transmit buffer with its virtio-net header zeroed (no offloads),
   its index in *id; 0 if none is free. */
static u8 *tx_claim(u32 *id) {
  if (!net.tx_nfree) tx_reclaim();
  if (!net.tx_nfree) return 0;
  *id = net.tx_free[--net.tx_nfree];
  u8 *b = tx_buf[*id];
  *(u64_unaligned *)b = 0;
  *(u32_unaligned *)(b + 8) = 0;
  return b;
}

/* Sends buffer `id` with `len` frame bytes after its header. */
static void tx_post(u32 id, u32 len) {
  struct queue *q = &net.tx;
  q->mem->desc[id].len = NET_HDR_LEN + len;
  q->mem->avail.ring[q->avail_idx & (q->size - 1)] = (u16)id;
  q->avail_idx++;
  vq_publish(net.base, TX_QUEUE, q);
}

/* Sends the frame for `seq` to `dst`; 0 if no transmit buffer is free. */
static int tx_send(const u8 *dst, u32 seq) {
  u32 id;
  u8 *b = tx_claim(&id);
  if (!b) return 0;
  tx_post(id, build_frame(b + NET_HDR_LEN, dst, seq));
  return 1;
}

/*
 * The next received buffer, if any: its index and the bytes the device
 * wrote (header included).  Give it back with rx_repost.
 */
static int rx_next(u32 *id, u32 *len) {
  struct queue *q = &net.rx;
  if (vq_used_idx(q) == q->used_seen) return 0;
  barrier();  /* the entry after the index */
  const struct vring_used_elem *e = &q->mem->used.ring[q->used_seen & (q->size - 1)];
  *id = e->id;
  *len = e->len;
  q->used_seen++;
  return 1;
}

/* Queues buffer `id` again; rx_publish makes a batch of them available. */
static void rx_repost(u32 id) {
  struct queue *q = &net.rx;
  if (id >= q->size) return;  /* not ours: never reposted */
  q->mem->avail.ring[q->avail_idx & (q->size - 1)] = (u16)id;
  q->avail_idx++;
}

static void rx_publish(void) { vq_publish(net.base, RX_QUEUE, &net.rx); }

/* The frame in buffer `id` and its length; 0 if the buffer is not ours. */
static const u8 *rx_frame(u32 id, u32 written, u32 *len) {
  if (id >= net.rx.size || written < NET_HDR_LEN || written > BUF_SIZE) return 0;
  *len = written - NET_HDR_LEN;
  return rx_buf[id] + NET_HDR_LEN;
}

/* ---- tests ------------------------------------------------------------------ */

/* 1 if frame f (len bytes) is an intact echo of one of our frames. */
static int is_echo(const u8 *f, u32 len, u32 *seq) {
  return mac_eq(f + ETH_ALEN, kTestPeer) && check_frame(f, len, net.mac, seq);
}

/*
 * Sends a probe frame every PROBE_PERIOD until an echo of one comes back,
 * then discards what else arrives for PROBE_DRAIN.  A link that is up
 * does not mean the backend forwards yet: testpmd, for one, drops what it
 * finds queued when its forwarding starts.  Returns 0 after NET_TIMEOUT.
 */
static int net_wait_for_echo(void) {
  u32 probes = 0;
  u64 start = rdtsc(), last = start, echo_at = 0;
  for (;;) {
    u64 now = rdtsc();
    if (echo_at ? now - echo_at > PROBE_DRAIN : now - start > NET_TIMEOUT) break;
    if (!echo_at && (!probes || now - last > PROBE_PERIOD) &&
        tx_send(kTestPeer, PROBE_SEQ + probes)) {
      probes++;
      last = now;
    }
    u32 id, written, batch = 0;
    while (rx_next(&id, &written)) {
      u32 len, seq;
      const u8 *f = rx_frame(id, written, &len);
      if (!echo_at && f && is_echo(f, len, &seq) && seq >= PROBE_SEQ) echo_at = now;
      rx_repost(id);
      batch++;
    }
    if (batch) rx_publish();
  }
  return echo_at != 0;
}

/*
 * Sends NET_FRAMES frames to 02:00:00:00:00:01 and expects each back with
 * the addresses swapped (testpmd's macswap mode), after a probe came back
 * (late probe echoes are not counted).  At most one receive queue's worth
 * of frames is out at a time (with 64 entries: all of them).
 */
void test_net(const char *cmdline) {
  if (!net_start(cmdline, "net")) return;
  if (!net_wait_for_echo()) {
    line("net error no-echo\n");
    line("net failed\n");
    return;
  }
  u64 seen = 0;  /* bit seq: an intact copy came back */
  u32 sent = 0, received = 0, good = 0, reported = 0;
  u64 start = rdtsc();
  while (received < NET_FRAMES) {
    if (sent < NET_FRAMES && sent - received < net.rx.size && tx_send(kTestPeer, sent)) sent++;
    u32 id, written, batch = 0;
    while (rx_next(&id, &written)) {
      u32 len, seq;
      const u8 *f = rx_frame(id, written, &len);
      int echo = f && is_echo(f, len, &seq);
      rx_repost(id);
      batch++;
      if (echo && seq >= PROBE_SEQ) continue;  /* a late probe */
      received++;
      if (echo && seq < NET_FRAMES && !(seen >> seq & 1)) {
        seen |= 1ULL << seq;
        good++;
      } else if (!reported++) {
        line("net bad-frame id=");
        put_dec(id);
        put_str(" len=");
        put_dec(written);
        put_char('\n');
      }
    }
    if (batch) rx_publish();
    if (rdtsc() - start > NET_TIMEOUT) break;
  }
  tx_reclaim();
  line("net sent=");
  put_dec(sent);
  put_str(" received=");
  put_dec(received);
  put_str(" good=");
  put_dec(good);
  put_char('\n');
  line(good == NET_FRAMES ? "net ok\n" : "net failed\n");
}

/*
 * Two guests joined back to back (testpmd's io mode): each broadcasts a
 * frame every PEER_PERIOD and counts the intact frames from the first
 * other MAC it hears.  After PEER_GOAL of them it goes on sending for
 * PEER_LINGER, so that the peer can finish too.
 */
void test_netpeer(const char *cmdline) {
  if (!net_start(cmdline, "netpeer")) return;
  u8 peer[ETH_ALEN];
  u32 sent = 0, received = 0, have_peer = 0, ok = 0;
  u64 start = rdtsc(), next = start, goal_at = 0;
  for (;;) {
    u64 now = rdtsc();
    if (goal_at && now - goal_at > PEER_LINGER) {
      ok = 1;
      break;
    }
    if (now - start > PEER_TIMEOUT) break;
    if ((long long)(now - next) >= 0 && tx_send(kBroadcast, sent)) {
      sent++;
      next = now + PEER_PERIOD;
    }
    u32 id, written, batch = 0;
    while (rx_next(&id, &written)) {
      u32 len, seq;
      const u8 *f = rx_frame(id, written, &len);
      batch++;
      if (f && !mac_eq(f + ETH_ALEN, net.mac) && check_frame(f, len, kBroadcast, &seq)) {
        if (!have_peer) {
          mac_copy(peer, f + ETH_ALEN);
          have_peer = 1;
        }
        if (mac_eq(f + ETH_ALEN, peer)) received++;
      }
      rx_repost(id);
    }
    if (batch) rx_publish();
    if (!goal_at && received >= PEER_GOAL) goal_at = now;
  }
  tx_reclaim();
  line("netpeer sent=");
  put_dec(sent);
  put_str(" received=");
  put_dec(received);
  put_str(" peer=");
  if (have_peer)
    put_mac(peer);
  else
    put_str("none");
  put_char('\n');
  line(ok ? "netpeer ok\n" : "netpeer failed\n");
}

/*
 * For backend reconnect tests: sends a test frame to 02:00:00:00:00:01
 * every LOOP_PERIOD (testpmd's macswap mode echoes it) and counts what
 * comes back, until the i8042 delivers Ctrl-Alt-Del.  A frame is only
 * sent when a transmit buffer is free: while the backend is away the
 * transmit ring fills up and sending pauses until the used ring gives
 * buffers back.  Received frames that are not intact echoes of a frame
 * sent are bad.
 */
void test_netloop(const char *cmdline) {
  if (!net_start(cmdline, "netloop")) return;
  u32 sent = 0, received = 0, good = 0, cad = 0;
  u64 next = rdtsc(), polled = next;
  for (;;) {
    u64 now = rdtsc();
    if ((long long)(now - next) >= 0 && tx_send(kTestPeer, sent)) {
      sent++;
      next = now + LOOP_PERIOD;
    }
    u32 id, written, batch = 0;
    while (rx_next(&id, &written)) {
      u32 len, seq;
      const u8 *f = rx_frame(id, written, &len);
      if (f && is_echo(f, len, &seq) && seq < sent) {
        good++;
      } else if (received - good < LOOP_BAD_LINES) {
        line("netloop bad-frame id=");
        put_dec(id);
        put_str(" len=");
        put_dec(written);
        if (f && len >= PATTERN_OFF) {
          put_str(" seq=0x");
          put_hex((u32)f[SEQ_OFF] << 24 | (u32)f[SEQ_OFF + 1] << 16 |
                  (u32)f[SEQ_OFF + 2] << 8 | f[SEQ_OFF + 3]);
        }
        put_char('\n');
      }
      rx_repost(id);
      batch++;
      if (++received % LOOP_REPORT == 0) {
        line("netloop received=");
        put_dec(received);
        put_char('\n');
      }
    }
    if (batch) rx_publish();
    if (now - polled > LOOP_CAD_POLL) {
      polled = now;
      if (cad_poll(&cad)) break;
    }
  }
  tx_reclaim();
  line("netloop sent=");
  put_dec(sent);
  put_str(" received=");
  put_dec(received);
  put_str(" good=");
  put_dec(good);
  put_char('\n');
  line(good == received && received ? "netloop ok\n" : "netloop failed\n");
}

/* ---- netbench ------------------------------------------------------------- */

/*
 * Queues (without publishing) the netbench frame for `seq`; 0 if no
 * transmit buffer is free.  A buffer gets `tmpl` (virtio header and a
 * BENCH_LEN-byte frame, BENCH_WORDS words) and its descriptor's length the
 * first time it is used (bit id of *filled), so a send writes just the
 * seq and the ring entry: under an emulating hypervisor every instruction
 * counts.
 */
static int bench_queue(const u64 *tmpl, u64 *filled, u32 seq) {
  if (!net.tx_nfree) return 0;
  struct queue *q = &net.tx;
  u32 id = net.tx_free[--net.tx_nfree];
  if (!(*filled >> id & 1)) {
    u64 *b = (u64 *)tx_buf[id];
    for (u32 i = 0; i < BENCH_WORDS; i++) b[i] = tmpl[i];
    q->mem->desc[id].len = NET_HDR_LEN + BENCH_LEN;
    *filled |= 1ULL << id;
  }
  *(u32_unaligned *)(tx_buf[id] + NET_HDR_LEN + SEQ_OFF) = __builtin_bswap32(seq);
  q->mem->avail.ring[q->avail_idx & (q->size - 1)] = (u16)id;
  q->avail_idx++;
  return 1;
}

/* 1 and *seq if received buffer `id` holds the echo of a netbench frame. */
static int bench_echo(u32 id, u32 written, u32 *seq) {
  u32 len;
  const u8 *f = rx_frame(id, written, &len);
  if (!f || len != BENCH_LEN || !mac_eq(f, net.mac) || !mac_eq(f + ETH_ALEN, kTestPeer) ||
      f[12] != ETHERTYPE_TEST >> 8 || f[13] != (ETHERTYPE_TEST & 0xff))
    return 0;
  *seq = (u32)f[SEQ_OFF] << 24 | (u32)f[SEQ_OFF + 1] << 16 | (u32)f[SEQ_OFF + 2] << 8 |
         f[SEQ_OFF + 3];
  return 1;
}

/*
 * A benchmark against testpmd's macswap mode, after the net test's probe:
 * BENCH_RTT_N round trips of one BENCH_LEN-byte frame each (sent, then
 * the receive ring polled until its echo, by seq, arrived), then for
 * BENCH_BURST TSC cycles the transmit ring kept as full as possible
 * (used entries reclaimed, receive buffers reposted, echoes counted).
 * Both timed with rdtsc.
 */
void test_netbench(const char *cmdline) {
  if (!net_start(cmdline, "netbench")) return;
  if (!net_wait_for_echo()) {
    line("netbench error no-echo\n");
    line("netbench failed\n");
    return;
  }
  u64 tmpl[BENCH_WORDS];
  for (u32 i = 0; i < BENCH_WORDS; i++) tmpl[i] = 0;  /* header: no offloads */
  u8 *f = (u8 *)tmpl + NET_HDR_LEN;
  mac_copy(f, kTestPeer);
  mac_copy(f + ETH_ALEN, net.mac);
  f[12] = ETHERTYPE_TEST >> 8;
  f[13] = ETHERTYPE_TEST & 0xff;
  u64 filled = 0;  /* bit i: tx_buf[i] holds tmpl */

  u32 n = 0;
  u64 start = rdtsc();
  for (; n < BENCH_RTT_N; n++) {
    if (!net.tx_nfree) tx_reclaim();
    if (!bench_queue(tmpl, &filled, n)) break;
    vq_publish(net.base, TX_QUEUE, &net.tx);
    u64 sent_at = rdtsc();
    int back = 0;
    while (!back) {
      u32 id, written, seq;
      if (rx_next(&id, &written)) {
        back = bench_echo(id, written, &seq) && seq == n;
        rx_repost(id);
        rx_publish();
      } else if (rdtsc() - sent_at > BENCH_RTT_TIMEOUT) {
        break;
      }
    }
    if (!back) break;
  }
  u64 rtt_cycles = rdtsc() - start;
  line("netbench rtt n=");
  put_dec(n);
  put_str(" cycles=");
  put_dec(rtt_cycles);
  put_char('\n');

  u32 sent = 0, received = 0;
  u64 now = start = rdtsc();
  while (now - start < BENCH_BURST) {
    tx_reclaim();
    u32 batch = 0;
    while (bench_queue(tmpl, &filled, BENCH_BURST_SEQ + sent)) sent++, batch++;
    if (batch) vq_publish(net.base, TX_QUEUE, &net.tx);
    u32 id, written, seq;
    batch = 0;
    while (rx_next(&id, &written)) {
      if (bench_echo(id, written, &seq) && seq - BENCH_BURST_SEQ < sent) received++;
      rx_repost(id);
      batch++;
    }
    if (batch) rx_publish();
    now = rdtsc();
  }
  u64 burst_cycles = now - start;
  /* Uncounted: what is still in flight, so later tests find the rings idle. */
  while (rdtsc() - now < BENCH_DRAIN) {
    tx_reclaim();
    u32 id, written, batch = 0;
    while (rx_next(&id, &written)) rx_repost(id), batch++;
    if (batch) rx_publish();
  }
  line("netbench burst sent=");
  put_dec(sent);
  put_str(" received=");
  put_dec(received);
  put_str(" cycles=");
  put_dec(burst_cycles);
  put_char('\n');
  line(n == BENCH_RTT_N && received ? "netbench ok\n" : "netbench failed\n");
}

/* ---- nettap: ARP and ICMP with the host kernel on the other side of a TAP -- */

/* The addresses the nettap test expects (the host test gives the TAP
   10.77.0.1/24). */
static const u8 kTapGuestIp[4] = {10, 77, 0, 2};
static const u8 kTapHostIp[4] = {10, 77, 0, 1};
#define ETHERTYPE_ARP		0x0806
#define ETHERTYPE_IPV4		0x0800
#define ICMP_ID			0x4242
#define ICMP_PAYLOAD		32
#define TAP_TIMEOUT		(5000 * TSC_PER_MS)
#define TAP_RETRY		(100 * TSC_PER_MS)

static void put_be16(u8 *p, u16 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }
static u16 get_be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }

/* The Internet checksum (RFC 1071) of n bytes. */
static u16 inet_checksum(const u8 *p, u32 n) {
  u32 sum = 0;
  for (u32 i = 0; i + 1 < n; i += 2) sum += get_be16(p + i);
  if (n & 1) sum += (u32)p[n - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (u16)~sum;
}

/* Sends `len` bytes of frame `f` (padded to the Ethernet minimum). */
static int tx_raw(const u8 *f, u32 len) {
  u32 id;
  u8 *b = tx_claim(&id);
  if (!b) return 0;
  for (u32 i = 0; i < len; i++) b[NET_HDR_LEN + i] = f[i];
  for (u32 i = len; i < ETH_MIN; i++) b[NET_HDR_LEN + i] = 0;
  tx_post(id, len < ETH_MIN ? ETH_MIN : len);
  return 1;
}

static int ip_eq(const u8 *a, const u8 *b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Whose address tap_resolve asks for: the host's, or MMDS's. */
static const u8 *arp_target = kTapHostIp;

/* An ARP reply from arp_target: its MAC into `mac`. */
static int is_arp_reply(const u8 *f, u32 len, u8 *mac) {
  if (len < ETH_HLEN + 28 || get_be16(f + 12) != ETHERTYPE_ARP) return 0;
  const u8 *a = f + ETH_HLEN;
  if (get_be16(a + 6) != 2 || !ip_eq(a + 14, arp_target) || !ip_eq(a + 24, kTapGuestIp)) return 0;
  mac_copy(mac, a + 8);
  return 1;
}

/* An intact echo reply to our request `seq`, from the host. */
static int is_echo_reply(const u8 *f, u32 len, u16 seq) {
  if (len < ETH_HLEN + 20 + 8 + ICMP_PAYLOAD || get_be16(f + 12) != ETHERTYPE_IPV4) return 0;
  const u8 *ip = f + ETH_HLEN;
  if (ip[0] != 0x45 || ip[9] != 1 || !ip_eq(ip + 12, kTapHostIp) || inet_checksum(ip, 20) != 0)
    return 0;
  const u8 *icmp = ip + 20;
  if (icmp[0] != 0 || get_be16(icmp + 4) != ICMP_ID || get_be16(icmp + 6) != seq) return 0;
  if (inet_checksum(icmp, 8 + ICMP_PAYLOAD) != 0) return 0;
  for (u32 i = 0; i < ICMP_PAYLOAD; i++)
    if (icmp[8 + i] != (u8)(i * 3 + seq)) return 0;
  return 1;
}

/* Receives until `match` holds for a frame or `deadline`; 1 if it did.
   Every buffer goes back to the device. */
static int rx_until(u64 deadline, int (*match)(const u8 *, u32, void *), void *arg) {
  int found = 0;
  while (!found && rdtsc() < deadline) {
    u32 id, written, len;
    if (!rx_next(&id, &written)) {
      __asm__ volatile("pause");
      continue;
    }
    const u8 *f = rx_frame(id, written, &len);
    if (f && match(f, len, arg)) found = 1;
    rx_repost(id);
    rx_publish();
  }
  return found;
}

static int match_arp(const u8 *f, u32 len, void *mac) { return is_arp_reply(f, len, (u8 *)mac); }
static int match_echo(const u8 *f, u32 len, void *seq) {
  return is_echo_reply(f, len, *(u16 *)seq);
}

/* ARP for arp_target (a request every 100 ms, up to ~5 s); 1 with its MAC. */
static int tap_resolve(u8 *host_mac) {
  u8 frame[ETH_HLEN + 28];
  mac_copy(frame, kBroadcast);
  mac_copy(frame + ETH_ALEN, net.mac);
  put_be16(frame + 12, ETHERTYPE_ARP);
  u8 *a = frame + ETH_HLEN;
  put_be16(a, 1);
  put_be16(a + 2, ETHERTYPE_IPV4);
  a[4] = ETH_ALEN, a[5] = 4;
  put_be16(a + 6, 1);
  mac_copy(a + 8, net.mac);
  for (u32 i = 0; i < 4; i++) a[14 + i] = kTapGuestIp[i], a[24 + i] = arp_target[i];
  for (u32 i = 0; i < ETH_ALEN; i++) a[18 + i] = 0;
  u64 end = rdtsc() + TAP_TIMEOUT;
  while (rdtsc() < end) {
    tx_raw(frame, sizeof(frame));
    if (rx_until(rdtsc() + TAP_RETRY, match_arp, host_mac)) return 1;
  }
  return 0;
}

/* Sends ICMP echo request `seq` to 10.77.0.1; 0 if no transmit buffer. */
static int tap_send_echo(const u8 *host_mac, u16 seq) {
  u8 frame[ETH_HLEN + 20 + 8 + ICMP_PAYLOAD];
  mac_copy(frame, host_mac);
  mac_copy(frame + ETH_ALEN, net.mac);
  put_be16(frame + 12, ETHERTYPE_IPV4);
  u8 *ip = frame + ETH_HLEN;
  ip[0] = 0x45, ip[1] = 0;
  put_be16(ip + 2, 20 + 8 + ICMP_PAYLOAD);
  put_be16(ip + 4, seq);
  put_be16(ip + 6, 0);
  ip[8] = 64, ip[9] = 1;
  put_be16(ip + 10, 0);
  for (u32 i = 0; i < 4; i++) ip[12 + i] = kTapGuestIp[i], ip[16 + i] = kTapHostIp[i];
  put_be16(ip + 10, inet_checksum(ip, 20));
  u8 *icmp = ip + 20;
  icmp[0] = 8, icmp[1] = 0;
  put_be16(icmp + 2, 0);
  put_be16(icmp + 4, ICMP_ID);
  put_be16(icmp + 6, seq);
  for (u32 i = 0; i < ICMP_PAYLOAD; i++) icmp[8 + i] = (u8)(i * 3 + seq);
  put_be16(icmp + 2, inet_checksum(icmp, 8 + ICMP_PAYLOAD));
  return tx_raw(frame, sizeof(frame));
}

/* Resolves the host (prints its MAC); 0 after "<test> arp no-reply". */
static int tap_start(const char *cmdline, const char *test, u8 *host_mac) {
  if (!net_start(cmdline, test)) return 0;
  line(test);
  if (!tap_resolve(host_mac)) {
    put_str(" arp no-reply\n");
    line(test);
    put_str(" failed\n");
    return 0;
  }
  put_str(" arp host-mac=");
  put_mac(host_mac);
  put_char('\n');
  return 1;
}

/*
 * Resolves 10.77.0.1 with ARP, then pings it three times and checks each
 * reply (IP and ICMP checksums, identifier, sequence, payload).
 */
void test_nettap(const char *cmdline) {
  u8 host_mac[ETH_ALEN];
  if (!tap_start(cmdline, "nettap", host_mac)) return;
  u32 replies = 0;
  for (u16 seq = 1; seq <= 3; seq++) {
    tap_send_echo(host_mac, seq);
    int ok = rx_until(rdtsc() + TAP_TIMEOUT, match_echo, &seq);
    line("nettap icmp seq=");
    put_dec(seq);
    put_str(ok ? " reply ok\n" : " no-reply\n");
    replies += (u32)ok;
  }
  line(replies == 3 ? "nettap ok\n" : "nettap failed\n");
}

/* Counts echo replies (any sequence) while polling; the buffers go back. */
static u32 count_echo_replies(void) {
  u32 n = 0, id, written, len;
  while (rx_next(&id, &written)) {
    const u8 *f = rx_frame(id, written, &len);
    if (f && len >= ETH_HLEN + 28 && get_be16(f + 12) == ETHERTYPE_IPV4 && f[ETH_HLEN + 9] == 1 &&
        f[ETH_HLEN + 20] == 0)
      n++;
    rx_repost(id);
  }
  if (n) rx_publish();
  return n;
}

/*
 * The host kernel as the echo peer: 1000 pings one at a time (round
 * trip), then as many as the transmit ring takes for ~500 ms (frames/s),
 * counting the replies; TSC cycles.
 */
void test_nettapbench(const char *cmdline) {
  u8 host_mac[ETH_ALEN];
  if (!tap_start(cmdline, "nettapbench", host_mac)) return;
  u32 done = 0;
  u64 start = rdtsc();
  for (u16 seq = 1; seq <= BENCH_RTT_N; seq++) {
    if (!tap_send_echo(host_mac, seq) || !rx_until(rdtsc() + BENCH_RTT_TIMEOUT, match_echo, &seq))
      break;
    done++;
  }
  u64 rtt_cycles = rdtsc() - start;
  line("nettapbench rtt n=");
  put_dec(done);
  put_str(" cycles=");
  put_dec(rtt_cycles);
  put_char('\n');
  u32 sent = 0, received = 0;
  u16 seq = 0x8000;
  start = rdtsc();
  u64 end = start + BENCH_BURST;
  while (rdtsc() < end) {
    if (tap_send_echo(host_mac, seq)) sent++, seq++;
    received += count_echo_replies();
  }
  u64 drain = rdtsc() + BENCH_DRAIN;
  while (rdtsc() < drain) received += count_echo_replies();
  u64 burst_cycles = rdtsc() - start;
  line("nettapbench burst sent=");
  put_dec(sent);
  put_str(" received=");
  put_dec(received);
  put_str(" cycles=");
  put_dec(burst_cycles);
  put_char('\n');
  line(done == BENCH_RTT_N && received ? "nettapbench ok\n" : "nettapbench failed\n");
}

/* ---- mmds: the metadata service ember answers on the interface ---------- */

static const u8 kMmdsIp[4] = {169, 254, 169, 254};
#define TCP_GUEST_PORT 40000
#define TCP_ISN 1000
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_FIN 0x01
#define MMDS_RESPONSE_MAX 1024

static u8 mmds_mac[ETH_ALEN];
static char mmds_response[MMDS_RESPONSE_MAX + 1];

/* Sends a TCP segment to MMDS port 80 with `len` bytes of `data`. */
static int mmds_send(u8 flags, u32 seq, u32 ack, const char *data, u32 len) {
  u8 frame[ETH_HLEN + 20 + 20 + 128];
  if (len > 128) return 0;
  mac_copy(frame, mmds_mac);
  mac_copy(frame + ETH_ALEN, net.mac);
  put_be16(frame + 12, ETHERTYPE_IPV4);
  u8 *ip = frame + ETH_HLEN;
  ip[0] = 0x45, ip[1] = 0;
  put_be16(ip + 2, (u16)(40 + len));
  put_be16(ip + 4, 0);
  put_be16(ip + 6, 0x4000); /* DF */
  ip[8] = 64, ip[9] = 6;
  put_be16(ip + 10, 0);
  for (u32 i = 0; i < 4; i++) ip[12 + i] = kTapGuestIp[i], ip[16 + i] = kMmdsIp[i];
  put_be16(ip + 10, inet_checksum(ip, 20));
  u8 *tcp = ip + 20;
  put_be16(tcp, TCP_GUEST_PORT);
  put_be16(tcp + 2, 80);
  put_be16(tcp + 4, (u16)(seq >> 16)), put_be16(tcp + 6, (u16)seq);
  put_be16(tcp + 8, (u16)(ack >> 16)), put_be16(tcp + 10, (u16)ack);
  tcp[12] = 5 << 4, tcp[13] = flags;
  put_be16(tcp + 14, 4096); /* window */
  put_be16(tcp + 16, 0);
  put_be16(tcp + 18, 0);
  for (u32 i = 0; i < len; i++) tcp[20 + i] = (u8)data[i];
  /* The checksum covers the pseudo header (addresses, protocol, length). */
  u8 pseudo[12 + 20 + 128];
  for (u32 i = 0; i < 4; i++) pseudo[i] = kTapGuestIp[i], pseudo[4 + i] = kMmdsIp[i];
  pseudo[8] = 0, pseudo[9] = 6;
  put_be16(pseudo + 10, (u16)(20 + len));
  for (u32 i = 0; i < 20 + len; i++) pseudo[12 + i] = tcp[i];
  put_be16(tcp + 16, inet_checksum(pseudo, 12 + 20 + len));
  return tx_raw(frame, ETH_HLEN + 40 + len);
}

struct tcp_seen {
  u8 flags;
  u32 seq, ack;
  u32 len;
  u8 data[BUF_SIZE]; /* copied: rx_until gives the buffer back at once */
};

/* A TCP segment from MMDS port 80 to ours: its fields into `seen`. */
static int match_mmds(const u8 *f, u32 len, void *arg) {
  struct tcp_seen *seen = arg;
  if (len < ETH_HLEN + 40 || get_be16(f + 12) != ETHERTYPE_IPV4) return 0;
  const u8 *ip = f + ETH_HLEN;
  u32 ihl = (u32)(ip[0] & 0xf) * 4, total = get_be16(ip + 2);
  if (ip[9] != 6 || !ip_eq(ip + 12, kMmdsIp) || ihl < 20 || total > len - ETH_HLEN) return 0;
  const u8 *tcp = ip + ihl;
  u32 off = (u32)(tcp[12] >> 4) * 4;
  if (get_be16(tcp) != 80 || get_be16(tcp + 2) != TCP_GUEST_PORT || ihl + off > total) return 0;
  seen->flags = tcp[13];
  seen->seq = (u32)get_be16(tcp + 4) << 16 | get_be16(tcp + 6);
  seen->ack = (u32)get_be16(tcp + 8) << 16 | get_be16(tcp + 10);
  seen->len = total - ihl - off;
  if (seen->len > BUF_SIZE) return 0;
  for (u32 i = 0; i < seen->len; i++) seen->data[i] = tcp[off + i];
  return 1;
}

/*
 * Resolves 169.254.169.254 (ember's MMDS answers, never the host), opens a
 * TCP connection to its port 80, sends GET /latest/meta-data/ami-id and
 * prints the status and body:
 *   ember-guest: mmds arp mac=06:01:23:45:67:01
 *   ember-guest: mmds http status=200 body=ami-123
 */
void test_mmds(const char *cmdline) {
  if (!net_start(cmdline, "mmds")) return;
  arp_target = kMmdsIp;
  int resolved = tap_resolve(mmds_mac);
  arp_target = kTapHostIp;
  line("mmds arp ");
  if (!resolved) {
    put_str("no-reply\n");
    return;
  }
  put_str("mac=");
  put_mac(mmds_mac);
  put_char('\n');

  static struct tcp_seen seen;
  mmds_send(TCP_SYN, TCP_ISN, 0, 0, 0);
  if (!rx_until(rdtsc() + TAP_TIMEOUT, match_mmds, &seen) || seen.flags != (TCP_SYN | TCP_ACK) ||
      seen.ack != TCP_ISN + 1) {
    line("mmds tcp no-syn-ack\n");
    return;
  }
  u32 next = seen.seq + 1, mine = TCP_ISN + 1;
  static const char kRequest[] =
      "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n"
      "Connection: close\r\n\r\n";
  mmds_send(TCP_ACK | TCP_PSH, mine, next, kRequest, sizeof(kRequest) - 1);
  mine += sizeof(kRequest) - 1;
  u32 got = 0;
  int closed = 0;
  u64 end = rdtsc() + TAP_TIMEOUT;
  while (!closed && rdtsc() < end) {
    if (!rx_until(rdtsc() + TAP_RETRY, match_mmds, &seen)) continue;
    if (seen.flags & TCP_RST) break;
    if (seen.seq != next) { /* out of order or a resend: ask again */
      mmds_send(TCP_ACK, mine, next, 0, 0);
      continue;
    }
    for (u32 i = 0; i < seen.len && got < MMDS_RESPONSE_MAX; i++)
      mmds_response[got++] = (char)seen.data[i];
    next += seen.len;
    if (seen.flags & TCP_FIN) {
      next++;
      closed = 1;
      mmds_send(TCP_ACK | TCP_FIN, mine, next, 0, 0);
    } else if (seen.len) {
      mmds_send(TCP_ACK, mine, next, 0, 0);
    }
  }
  mmds_response[got] = 0;
  /* "HTTP/1.1 200 ..." then headers, a blank line and the body. */
  const char *body = 0;
  for (u32 i = 0; i + 3 < got; i++) {
    if (mmds_response[i] == '\r' && mmds_response[i + 1] == '\n' && mmds_response[i + 2] == '\r' &&
        mmds_response[i + 3] == '\n') {
      body = mmds_response + i + 4;
      break;
    }
  }
  line("mmds http ");
  if (got < 12 || !body) {
    put_str(closed ? "malformed\n" : "no-answer\n");
    return;
  }
  mmds_response[12] = 0;
  put_str("status=");
  put_str(mmds_response + 9);
  put_str(" body=");
  put_str(body);
  put_str(closed ? " closed\n" : " open\n");
}
