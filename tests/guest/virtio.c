/*
 * ember test guest: the polling virtio-mmio (version 2) transport shared by
 * the device drivers: finding transports on the command line, the device
 * initialisation sequence (virtio 1.x, 3.1.1) and split virtqueue setup.
 * Written from the virtio 1.x specification.  The drivers on top of it
 * (virtio_blk.c, virtio_fs.c, virtio_net.c) poll used rings (IF=0) and ask for no
 * interrupts.
 */

#include "virtio.h"

/* ---- kernel command line: virtio_mmio.device=<size>@<base>:<irq>[:<id>] - */

struct mmio_slot {
  u64 base, size;
  u32 irq;
};

#define MAX_SLOTS 32

static int is_sep(char c) { return (u8)c <= ' '; }

/*
 * A number as Linux reads these tokens: "0x" hex, a leading 0 octal, else
 * decimal; with `suffix`, K/M/G multiply (memparse).  Returns the end, or
 * 0 when there are no digits.
 */
static const char *parse_num(const char *p, u64 *out, int suffix) {
  u32 base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  } else if (p[0] == '0') {
    base = 8;
  }
  u64 v = 0;
  const char *start = p;
  for (;; p++) {
    u32 c = (u8)*p, d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      break;
    if (d >= base) break;
    v = v * base + d;
  }
  if (p == start) return 0;
  if (suffix) {
    u32 c = (u8)*p | 0x20;
    u32 shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 0;
    if (shift) {
      v <<= shift;
      p++;
    }
  }
  *out = v;
  return p;
}

/* Parses one token's value (after the '='); returns 0 if malformed. */
static int parse_slot(const char *p, struct mmio_slot *s) {
  u64 irq, id;
  p = parse_num(p, &s->size, 1);
  if (!p || *p++ != '@') return 0;
  p = parse_num(p, &s->base, 0);
  if (!p || *p++ != ':') return 0;
  p = parse_num(p, &irq, 0);
  if (!p) return 0;
  if (*p == ':') p = parse_num(p + 1, &id, 0);  /* optional platform device id */
  if (!p || !is_sep(*p)) return 0;
  s->irq = (u32)irq;
  return 1;
}

/* Collects every virtio_mmio.device= token, in command-line order. */
static u32 parse_slots(const char *p, struct mmio_slot *slots) {
  static const char kKey[] = "virtio_mmio.device=";
  u32 n = 0;
  for (;;) {
    while (*p && is_sep(*p)) p++;
    if (!*p) return n;
    const char *tok = p;
    const char *k = kKey;
    while (*k && *p == *k) p++, k++;
    if (!*k) {
      if (n < MAX_SLOTS && parse_slot(p, &slots[n])) {
        n++;
      } else {
        line("virtio-mmio bad-token ");
        while (!is_sep(*tok)) put_char(*tok++);
        put_char('\n');
      }
    }
    while (!is_sep(*p)) p++;
  }
}

/*
 * Device ID of a v2 transport, 0 for an empty slot; -1 (after a line
 * saying why) when the slot is unusable.
 */
static s32 probe(const struct mmio_slot *s) {
  if (s->base >= MAPPED_END || s->size < REG_CONFIG || s->size > MAPPED_END - s->base) {
    line("virtio-mmio unmapped base=0x");
    put_hex(s->base);
    put_char('\n');
    return -1;
  }
  uptr base = (uptr)s->base;
  u32 magic = mmio_read(base, REG_MAGIC);
  if (magic != VIRTIO_MMIO_MAGIC) {
    line("virtio-mmio base=0x");
    put_hex(base);
    put_str(" bad-magic=0x");
    put_hex(magic);
    put_char('\n');
    return -1;
  }
  u32 version = mmio_read(base, REG_VERSION);
  if (version != 2) {
    line("virtio-mmio base=0x");
    put_hex(base);
    put_str(" unsupported version=");
    put_dec(version);
    put_char('\n');
    return -1;
  }
  return (s32)mmio_read(base, REG_DEVICE_ID);
}

/* Lists the transports: one line per token, then the count of devices. */
void test_virtio(const char *cmdline) {
  struct mmio_slot slots[MAX_SLOTS];
  u32 n = parse_slots(cmdline, slots), devices = 0;
  for (u32 i = 0; i < n; i++) {
    s32 id = probe(&slots[i]);
    if (id < 0) continue;
    line("virtio base=0x");
    put_hex(slots[i].base);
    put_str(" size=0x");
    put_hex(slots[i].size);
    put_str(" irq=");
    put_dec(slots[i].irq);
    put_str(" id=");
    put_dec((u32)id);
    put_char('\n');
    if (id) devices++;
  }
  line("virtio slots=");
  put_dec(n);
  put_str(" devices=");
  put_dec(devices);
  put_char('\n');
}

uptr virtio_find_nth(const char *cmdline, u32 id, u32 nth) {
  struct mmio_slot slots[MAX_SLOTS];
  u32 n = parse_slots(cmdline, slots);
  for (u32 i = 0; i < n; i++)
    if (probe(&slots[i]) == (s32)id && nth-- == 0) return (uptr)slots[i].base;
  return 0;
}

uptr virtio_find(const char *cmdline, u32 id) { return virtio_find_nth(cmdline, id, 0); }

u32 virtio_transports(const char *cmdline, uptr *bases, u32 *ids, u32 max) {
  struct mmio_slot slots[MAX_SLOTS];
  u32 n = parse_slots(cmdline, slots), found = 0;
  for (u32 i = 0; i < n && found < max; i++) {
    s32 id = probe(&slots[i]);
    if (id < 0) continue;
    bases[found] = (uptr)slots[i].base;
    ids[found++] = (u32)id;
  }
  return found;
}

/* ---- device initialisation ---------------------------------------------- */

void virtio_fail(uptr base) {
  mmio_write(base, REG_STATUS, mmio_read(base, REG_STATUS) | STATUS_FAILED);
}

void virtio_driver_ok(uptr base) {
  mmio_write(base, REG_STATUS, mmio_read(base, REG_STATUS) | STATUS_DRIVER_OK);
}

const char *virtio_negotiate(uptr base, u32 want_lo, u32 *got_lo) {
  mmio_write(base, REG_STATUS, 0);  /* reset */
  u32 spins = 0;
  while (mmio_read(base, REG_STATUS)) {
    if (++spins > 1000) return "reset";
  }
  u32 status = STATUS_ACKNOWLEDGE;
  mmio_write(base, REG_STATUS, status);
  status |= STATUS_DRIVER;
  mmio_write(base, REG_STATUS, status);

  mmio_write(base, REG_DEVICE_FEATURES_SEL, 1);
  u32 hi = mmio_read(base, REG_DEVICE_FEATURES);
  mmio_write(base, REG_DEVICE_FEATURES_SEL, 0);
  u32 lo = mmio_read(base, REG_DEVICE_FEATURES) & want_lo;
  if (!(hi & F_VERSION_1_HI)) return "no-version-1";
  mmio_write(base, REG_DRIVER_FEATURES_SEL, 0);
  mmio_write(base, REG_DRIVER_FEATURES, lo);
  mmio_write(base, REG_DRIVER_FEATURES_SEL, 1);
  mmio_write(base, REG_DRIVER_FEATURES, F_VERSION_1_HI);
  status |= STATUS_FEATURES_OK;
  mmio_write(base, REG_STATUS, status);
  if (!(mmio_read(base, REG_STATUS) & STATUS_FEATURES_OK)) return "features";
  *got_lo = lo;
  return 0;
}

const char *virtio_setup_queue(uptr base, u32 index, struct queue *q, struct vring_mem *m,
                               u32 min_size) {
  mmio_write(base, REG_QUEUE_SEL, index);
  if (mmio_read(base, REG_QUEUE_READY)) return "queue-already-ready";
  u32 max = mmio_read(base, REG_QUEUE_NUM_MAX);
  u32 size = QSZ_MAX;
  while (size > max) size >>= 1;
  if (size < min_size) return "queue-too-small";
  q->mem = m;
  q->size = (u16)size;
  q->avail_idx = 0;
  q->used_seen = 0;
  for (u32 i = 0; i < QSZ_MAX; i++) {
    m->desc[i].next = (u16)(i + 1);
    m->avail.ring[i] = 0;
  }
  m->avail.flags = AVAIL_F_NO_INTERRUPT;  /* polled */
  m->avail.idx = 0;
  m->used.flags = 0;
  m->used.idx = 0;
  barrier();
  uptr desc = (uptr)m->desc, avail = (uptr)&m->avail, used = (uptr)&m->used;
  mmio_write(base, REG_QUEUE_NUM, size);
  mmio_write(base, REG_QUEUE_DESC_LOW, (u32)desc);
  mmio_write(base, REG_QUEUE_DESC_HIGH, (u32)((u64)desc >> 32));
  mmio_write(base, REG_QUEUE_DRIVER_LOW, (u32)avail);
  mmio_write(base, REG_QUEUE_DRIVER_HIGH, (u32)((u64)avail >> 32));
  mmio_write(base, REG_QUEUE_DEVICE_LOW, (u32)used);
  mmio_write(base, REG_QUEUE_DEVICE_HIGH, (u32)((u64)used >> 32));
  mmio_write(base, REG_QUEUE_READY, 1);
  return 0;
}
