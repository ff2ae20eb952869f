/*
 * ember test guest: the hostile test, a guest that means harm.  With a seed
 * from the command line (ember.hostile=SEED[,ROUNDS]) and a xorshift PRNG
 * it writes random values at random offsets and widths to every device
 * ember exposes (each virtio-mmio slot, COM1, the i8042, the ACPI power
 * registers, the boot timer, and unassigned ports and MMIO next to them),
 * reading back as it goes, and runs a bogus driver on each virtio slot:
 * wrong init sequences, queue sizes past the maximum or odd, rings outside
 * RAM or misaligned, descriptor loops, huge lengths, indirect tables of
 * garbage, available indices far ahead, notifies, DRIVER_OK, resets.
 * The same seed gives the same run.
 *
 * What it must never do is harm itself, or the test could not tell ember
 * failing from the guest dying: it never writes the i8042 reset command
 * (0xfe to 0x64) or the ACPI power-off and reset values, never touches the
 * LAPIC or IOAPIC, and the only RAM it lets a device see is the arena
 * (16 MiB to 17 MiB, far above the image): every other address it hands a
 * device is outside RAM.  The queue address registers only ever get such
 * addresses, also from the random writes.  At the end it resets every
 * slot, puts COM1 back as it was (no divisor latch, no loopback), prints
 * its totals and takes the normal exit (done, i8042 reset).
 */

#include "virtio.h"

/* ---- what the guest may touch ------------------------------------------- */

#define ARENA			0x1000000UL	/* 16 MiB: never used by the guest itself */
#define ARENA_SIZE		0x100000UL
#define RING_ROOM		0x8000UL	/* a queue of 1024: 16 KiB + 2 KiB + 8 KiB */

#define BOOT_TIMER		0xc0000000UL
#define HOLE_START		0xc0000000ULL	/* ember's 32-bit MMIO hole: never RAM */
#define FAR_ABOVE_RAM		(1ULL << 41)	/* past any RAM ember gives (1 TiB) */

#define COM1			0x3f8
#define COM1_LCR		(COM1 + 3)
#define COM1_MCR		(COM1 + 4)
#define I8042_DATA		0x60
#define I8042_CMD		0x64
#define I8042_RESET		0xfe
#define ACPI_SLEEP_CONTROL	0x600
#define ACPI_RESET		0x602
#define ACPI_RESET_VALUE	0x01
#define ACPI_SLP_EN_S5		0x34	/* SLP_EN | SLP_TYP 5 << 2 */
#define ACPI_SLP_MASK		0x3c

#define REG_VENDOR_ID		0x00c
#define REG_INTERRUPT_STATUS	0x060
#define REG_INTERRUPT_ACK	0x064

#define DESC_F_INDIRECT		4
#define F_INDIRECT_DESC		(1u << 28)
#define F_EVENT_IDX		(1u << 29)

#define MAX_HOSTILE_SLOTS	16
#define MAX_QUEUES		8	/* probed per slot; one more is used as "missing" */
#define FILL			16	/* ring entries written per queue set-up */
#define DEFAULT_ROUNDS		12
#define CHAOS_PER_ROUND		48

/* ---- the PRNG and counters ------------------------------------------------ */

static u64 rng;
static u64 n_writes, n_reads, n_inits, n_notifies, n_consumed, n_needs_reset;

/* xorshift64 (Marsaglia): integer only, never 0 once seeded. */
static u64 rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static u32 below(u32 n) { return (u32)(rnd() % n); }
static int chance(u32 n) { return below(n) == 0; }  /* 1 in n */

/* ---- accesses of every width, counted ------------------------------------ */

static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u16 inw(u16 port) {
  u16 v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u32 inl(u16 port) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static void pio_write(u16 port, u32 width, u32 v) {
  if (width == 1)
    outb(port, (u8)v);
  else if (width == 2)
    outw(port, (u16)v);
  else
    outl(port, v);
  n_writes++;
}

static u32 pio_read(u16 port, u32 width) {
  n_reads++;
  return width == 1 ? inb(port) : width == 2 ? inw(port) : inl(port);
}

static void mmio_wr(uptr a, u32 width, u64 v) {
  if (width == 1)
    *(volatile u8 *)a = (u8)v;
  else if (width == 2)
    *(volatile u16 *)a = (u16)v;
  else if (width == 4)
    *(volatile u32 *)a = (u32)v;
  else
    *(volatile u64 *)a = v;
  n_writes++;
}

static u64 mmio_rd(uptr a, u32 width) {
  n_reads++;
  if (width == 1) return *(volatile u8 *)a;
  if (width == 2) return *(volatile u16 *)a;
  if (width == 4) return *(volatile u32 *)a;
  return *(volatile u64 *)a;
}

/* A register of a transport, as a driver writes it (32-bit). */
static void reg_wr(uptr base, u32 reg, u32 v) { mmio_wr(base + reg, 4, v); }
static u32 reg_rd(uptr base, u32 reg) { return (u32)mmio_rd(base + reg, 4); }

/* String I/O (rep outsb / insb): several bytes in one exit. */
static void pio_string_write(u16 port, const u8 *buf, u64 n) {
  __asm__ volatile("rep outsb" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
  n_writes++;
}

static void pio_string_read(u16 port, u8 *buf, u64 n) {
  __asm__ volatile("rep insb" : "+D"(buf), "+c"(n) : "d"(port) : "memory");
  n_reads++;
}

/* ---- addresses and lengths a device may be handed ------------------------- */

/* Outside RAM whatever the machine's size: the MMIO hole or far above. */
static u64 not_ram(void) {
  switch (below(4)) {
    case 0: return HOLE_START + below(0x40000000);
    case 1: return HOLE_START + 0x1000 + below(0x4000);  /* the virtio windows themselves */
    /* Far above RAM; its low half alone is in the hole too, so a driver
       that later writes only one half of an address still names no RAM. */
    case 2: return FAR_ABOVE_RAM + ((rnd() & 0xff) << 32) + HOLE_START + below(0x40000000);
    default: return 0xfffffffffffff000ULL | below(0x1000);  /* wraps with any length */
  }
}

/* In the arena, `align`-aligned, with room for `bytes` after it. */
static u64 in_arena(u32 align, u32 bytes) {
  return ARENA + (below((u32)(ARENA_SIZE - bytes)) & ~(u64)(align - 1));
}

/* Where a ring goes: mostly somewhere valid, else misaligned or not RAM. */
static u64 ring_addr(u32 align) {
  u32 pick = below(10);
  if (pick == 0) return not_ram() & ~(u64)(align - 1);
  if (pick == 1) return in_arena(align, RING_ROOM) | 1;  /* misaligned */
  return in_arena(align, RING_ROOM);
}

/*
 * A buffer: its address and length.  In the arena, the whole buffer stays
 * in it, except for the huge lengths (>= 0xf0000000), which from the arena
 * run past 3 GiB into the MMIO hole, so no device may use them.
 */
static void buffer(u64 *addr, u32 *len) {
  u32 pick = below(10);
  if (pick < 2) {
    *addr = not_ram();
    *len = (u32)rnd();
  } else if (pick == 2) {
    *addr = in_arena(1, 1);
    *len = 0xf0000000u | (u32)rnd();
  } else if (pick == 3) {
    *addr = in_arena(1, 1);
    *len = 0;
  } else {
    u32 max = 1 + below(pick == 4 ? 0x10000 : 0x800);
    *addr = in_arena(1, max);
    *len = max;
  }
}

/*
 * A value for a queue address register.  Every low half ever written is
 * in the arena or the hole, every high half 0 or at least 0x200 (2^41):
 * whatever halves a queue ends up with, it names the arena or no RAM.
 */
static u32 queue_reg_value(u32 reg) {
  if (reg & 4) return chance(2) ? 0 : (u32)rnd() | 0x200;
  return (u32)(chance(2) ? ring_addr(16) : not_ram());
}

/* ---- poisoned rings ------------------------------------------------------- */

/* The next field: a chain onwards, a loop back, or past the table. */
static u16 next_index(u32 i, u32 size) {
  switch (below(6)) {
    case 0: return (u16)i;                        /* itself */
    case 1: return 0;                             /* back to the start */
    case 2: return (u16)(size + below(64));       /* past the table */
    case 3: return 0xffff;
    default: return (u16)((i + 1) % (size ? size : 1));
  }
}

static void fill_descs(u64 table, u32 n, u32 size, u32 depth);

/* An indirect table of garbage: in the arena, misplaced, or oversized. */
static void indirect(struct vring_desc *d, u32 depth) {
  u32 entries = 1 + below(FILL);
  switch (below(5)) {
    case 0:
      d->addr = not_ram();
      d->len = entries * 16;
      return;
    case 1:
      d->addr = in_arena(16, 16 * FILL);
      d->len = 0xfffffff0u;                       /* more entries than any queue */
      return;
    case 2:
      d->addr = in_arena(1, 16 * FILL) | 1;       /* misaligned, odd length */
      d->len = entries * 16 + 1 + below(15);
      break;
    default:
      d->addr = in_arena(16, 16 * FILL);
      d->len = chance(4) ? 0 : entries * 16;
      break;
  }
  if (depth < 2) fill_descs(d->addr & ~15ULL, entries, entries, depth + 1);  /* nested too */
}

/* Writes n garbage descriptors at `table` (in the arena) for a queue of `size`. */
static void fill_descs(u64 table, u32 n, u32 size, u32 depth) {
  struct vring_desc *desc = (struct vring_desc *)table;
  for (u32 i = 0; i < n; i++) {
    struct vring_desc *d = &desc[i];
    u32 flags = below(8);  /* NEXT, WRITE, INDIRECT in any mix */
    if (chance(16)) flags = (u32)rnd() & 0xffff;
    buffer(&d->addr, &d->len);
    d->flags = (u16)flags;
    d->next = next_index(i, size);
    if (flags & DESC_F_INDIRECT) indirect(d, depth);
  }
}

/* An available index: a few entries, or (rarely when sane) far ahead of the ring. */
static u16 avail_index(u32 size, int sane) {
  switch (below(sane ? 12 : 6)) {
    case 0: return (u16)(size + 1 + below(100));
    case 1: return (u16)rnd();
    default: return (u16)(1 + below(FILL));
  }
}

struct ring {
  u64 desc, avail, used;
};

/*
 * Puts garbage in whichever of the three areas is in the arena; `fresh`
 * (a new set-up) also gives the used ring its flags and index, which the
 * device owns afterwards.
 */
static void poison(const struct ring *r, u32 size, int fresh, int sane) {
  u32 n = size < FILL ? size : FILL;
  if (!n) n = 1 + below(FILL);
  if (r->desc >= ARENA && r->desc < ARENA + ARENA_SIZE) fill_descs(r->desc & ~15ULL, n, size, 0);
  if (r->avail >= ARENA && r->avail < ARENA + ARENA_SIZE) {
    volatile u16 *a = (volatile u16 *)(r->avail & ~1ULL);
    a[0] = (u16)below(4);  /* flags: NO_INTERRUPT or garbage */
    for (u32 i = 0; i < n; i++) a[2 + i] = chance(8) ? (u16)rnd() : (u16)below(size ? size : 1);
    /* A sane driver's next batch follows its last one. */
    a[1] = !fresh && sane ? (u16)(a[1] + 1 + below(4)) : avail_index(size, sane);
  }
  if (fresh && r->used >= ARENA && r->used < ARENA + ARENA_SIZE) {
    volatile u16 *u = (volatile u16 *)(r->used & ~3ULL);
    u[0] = (u16)below(4);  /* flags: NO_NOTIFY or garbage */
    u[1] = sane || chance(2) ? 0 : (u16)rnd();  /* where the device starts */
  }
}

/* ---- the bogus driver ------------------------------------------------------ */

struct slot {
  uptr base;
  u32 id;
  u32 queues;            /* QueueNumMax != 0 for 0 .. queues-1 */
  u32 max[MAX_QUEUES];
  struct ring ring[MAX_QUEUES];
  u32 inits, ready, consumed, needs_reset;
};

static struct slot slots[MAX_HOSTILE_SLOTS];
static u32 n_slots;

/* A QueueNum: the maximum, a power of two under it, or anything but. */
static u32 queue_size(u32 max) {
  switch (below(10)) {
    case 0: return 0;
    case 1: return max + 1 + below(1000);             /* past the maximum */
    case 2: return (2 * below(max / 2 + 1) + 1) | 2;  /* odd, not a power of two */
    case 3: return 0x10000 | (max ? max : 16);        /* the maximum, plus bit 16 */
    case 4: return (u32)rnd();
    case 5: return max;
    default: {
      u32 s = max ? max : 1;
      while (s > 1 && chance(2)) s >>= 1;
      return s;
    }
  }
}

static u32 used_idx(const struct ring *r) {
  if (r->used < ARENA || r->used >= ARENA + ARENA_SIZE) return 0;
  return *(volatile u16 *)((r->used & ~3ULL) + 2);
}

/* Waits up to ~`us` microseconds of TSC: lets the device and backend look. */
static void linger(u32 us) {
  u64 start = rdtsc(), wait = (u64)us * (TSC_PER_MS / 1000);
  while (rdtsc() - start < wait) __asm__ volatile("pause");
}

/* A power of two up to max (a size the device takes). */
static u32 good_size(u32 max) {
  u32 s = 1;
  while (s * 2 <= max) s *= 2;
  while (s > 1 && chance(3)) s >>= 1;
  return s;
}

/*
 * Queue q of slot s.  `sane`: a size and rings the device takes (so the
 * poisoned contents reach it); else anything goes.
 */
static void bogus_queue(struct slot *s, u32 q, int sane) {
  uptr base = s->base;
  u32 max = q < s->queues ? s->max[q] : 0;
  reg_wr(base, REG_QUEUE_SEL, q);
  if (chance(4)) reg_rd(base, REG_QUEUE_NUM_MAX);
  u32 size = sane ? good_size(max) : queue_size(max);
  reg_wr(base, REG_QUEUE_NUM, size);
  struct ring *r = &s->ring[q < MAX_QUEUES ? q : 0];
  if (sane) {
    r->desc = in_arena(16, RING_ROOM);
    r->avail = in_arena(2, RING_ROOM);
    r->used = in_arena(4, RING_ROOM);
  } else {
    r->desc = ring_addr(16);
    r->avail = ring_addr(2);
    r->used = ring_addr(4);
    if (chance(6)) r->avail = r->used = r->desc;  /* all three on top of each other */
  }
  poison(r, size & 0xffff, 1, sane);
  u64 a[3] = {r->desc, r->avail, r->used};
  static const u32 kLow[3] = {REG_QUEUE_DESC_LOW, REG_QUEUE_DRIVER_LOW, REG_QUEUE_DEVICE_LOW};
  for (u32 i = 0; i < 3; i++) {
    reg_wr(base, kLow[i], (u32)a[i]);
    reg_wr(base, kLow[i] + 4, (u32)(a[i] >> 32));
  }
  reg_wr(base, REG_QUEUE_READY, !sane && chance(8) ? (u32)rnd() : 1);
  if (reg_rd(base, REG_QUEUE_READY)) s->ready++;  /* the device took the rings */
  if (sane) return;
  /* Changing a queue that is ready (the spec forbids it). */
  if (chance(6)) reg_wr(base, REG_QUEUE_NUM, queue_size(max));
  if (chance(10)) reg_wr(base, REG_QUEUE_READY, 0);
}

/* Kicks every queue, by the ioeventfd (value = index) and past it. */
static void kick_all(struct slot *s) {
  for (u32 q = 0; q <= s->queues; q++) {
    reg_wr(s->base, REG_QUEUE_NOTIFY, q);
    n_notifies++;
  }
  if (chance(3)) {
    reg_wr(s->base, REG_QUEUE_NOTIFY, (u32)rnd());  /* no such queue */
    n_notifies++;
  }
  if (chance(4)) mmio_wr(s->base + REG_QUEUE_NOTIFY, 1 << below(4), rnd());  /* odd widths */
}

/*
 * One bogus driver start on slot s.  Half of them are "sane": the init
 * sequence, features and queue set-up a device accepts, so that what
 * reaches the device (and its backend) is the poisoned ring contents.
 * The others reset or not, set status bits in a wrong order now and then,
 * ask for features good or bad, and set up every queue (and one that does
 * not exist) any which way.  Then DRIVER_OK, kicks, more garbage in the
 * avail rings and kicks again, and usually a reset.
 */
static void bogus_driver(struct slot *s) {
  uptr base = s->base;
  int sane = chance(2);
  if (sane || !chance(8)) reg_wr(base, REG_STATUS, 0);  /* else: start over a running device */
  u32 status = STATUS_ACKNOWLEDGE;
  if (!sane && chance(8)) status = (u32)rnd() & 0xff;   /* any bits at all */
  reg_wr(base, REG_STATUS, status);
  status |= STATUS_DRIVER;
  reg_wr(base, REG_STATUS, status);

  reg_wr(base, REG_DEVICE_FEATURES_SEL, 0);
  u32 lo = reg_rd(base, REG_DEVICE_FEATURES);
  reg_wr(base, REG_DEVICE_FEATURES_SEL, !sane && chance(8) ? (u32)rnd() : 1);
  u32 hi = reg_rd(base, REG_DEVICE_FEATURES);
  /* Indirect descriptors and EVENT_IDX whenever offered: more to get wrong. */
  u32 want_lo = lo & ((u32)rnd() | F_INDIRECT_DESC | F_EVENT_IDX), want_hi = hi;
  if (!sane && chance(6)) want_lo = (u32)rnd();  /* features never offered */
  if (!sane && chance(8)) want_hi = 0;           /* no VIRTIO_F_VERSION_1 */
  reg_wr(base, REG_DRIVER_FEATURES_SEL, 0);
  reg_wr(base, REG_DRIVER_FEATURES, want_lo);
  reg_wr(base, REG_DRIVER_FEATURES_SEL, !sane && chance(10) ? (u32)rnd() : 1);
  reg_wr(base, REG_DRIVER_FEATURES, want_hi);
  if (sane || !chance(10)) {
    status |= STATUS_FEATURES_OK;
    reg_wr(base, REG_STATUS, status);
    reg_rd(base, REG_STATUS);
  }

  u32 queues = s->queues + 1;  /* and one the device does not have */
  if (sane) queues = s->queues;
  for (u32 q = 0; q < queues && q <= MAX_QUEUES; q++)
    if (sane || !chance(8)) bogus_queue(s, q, sane);
  if (chance(4)) mmio_wr(base + REG_CONFIG + below(0x40), 1 << below(4), rnd());

  status |= STATUS_DRIVER_OK;
  if (!sane && chance(10)) status = (u32)rnd() & 0xff;
  reg_wr(base, REG_STATUS, status);
  n_inits++;
  s->inits++;
  u32 before[MAX_QUEUES];
  for (u32 q = 0; q < s->queues; q++) before[q] = used_idx(&s->ring[q]);
  kick_all(s);
  linger(below(200));

  /* More garbage while it runs: new avail entries and indices, kicked. */
  for (u32 round = below(3); round; round--) {
    for (u32 q = 0; q < s->queues; q++) poison(&s->ring[q], s->max[q], 0, sane);
    kick_all(s);
    linger(below(200));
  }
  u32 st = reg_rd(base, REG_STATUS);
  if (st & 0x40) n_needs_reset++, s->needs_reset++;  /* DEVICE_NEEDS_RESET */
  reg_rd(base, REG_INTERRUPT_STATUS);
  reg_wr(base, REG_INTERRUPT_ACK, chance(2) ? 3 : (u32)rnd());
  for (u32 q = 0; q < s->queues; q++)
    if (used_idx(&s->ring[q]) != before[q]) n_consumed++, s->consumed++;
  if (!chance(6)) reg_wr(base, REG_STATUS, 0);  /* else: left running into the next round */
}

/* ---- random accesses to every device -------------------------------------- */

static u32 any_width(int mmio) { return 1u << below(mmio ? 4 : 3); }

/* A port: COM1, i8042, ACPI, their edges, or an unassigned one. */
static u16 any_port(void) {
  switch (below(10)) {
    case 0: case 1: case 2: return (u16)(COM1 + below(8));
    case 3: return (u16)(COM1 - 2 + below(12));          /* around COM1 */
    case 4: case 5: return (u16)(I8042_DATA + below(5));
    case 6: case 7: return (u16)(ACPI_SLEEP_CONTROL + below(3));
    case 8: return (u16)(ACPI_SLEEP_CONTROL - 1 + below(5));
    default: {
      static const u16 kOther[] = {0x80, 0xf4, 0x2f8, 0x3e8, 0x70, 0x71, 0xcf8, 0xcfc, 0xcf9};
      return chance(2) ? kOther[below(sizeof(kOther) / sizeof(kOther[0]))] : (u16)(0x1000 + below(0xe000));
    }
  }
}

/* Drops what would end the VM: the i8042 reset, ACPI power-off and reset. */
static u32 harmless(u16 port, u32 width, u32 v) {
  (void)width;
  if (port == I8042_CMD && (u8)v == I8042_RESET) v ^= 1;
  if (port == ACPI_SLEEP_CONTROL && (v & ACPI_SLP_MASK) == ACPI_SLP_EN_S5) v ^= 0x20;
  if (port == ACPI_RESET && (u8)v == ACPI_RESET_VALUE) v ^= 3;
  return v;
}

static void chaos_port(void) {
  u16 port = any_port();
  u32 width = any_width(0);
  if (chance(8)) {
    /* A burst of bytes in one exit, e.g. to the i8042 or the THR. */
    static u8 burst[16];
    u32 n = 1 + below(16);
    if (chance(2)) {
      for (u32 i = 0; i < n; i++) burst[i] = (u8)harmless(port, 1, (u32)rnd());
      pio_string_write(port, burst, n);
    } else {
      pio_string_read(port, burst, n);
    }
    return;
  }
  pio_write(port, width, harmless(port, width, (u32)rnd()));
  if (chance(2)) pio_read(port, any_width(0));
}

/* An MMIO address: a slot's registers or config, the boot timer, or next to them. */
static uptr any_mmio(u32 *is_queue_reg) {
  *is_queue_reg = 0;
  u32 pick = below(10);
  if (pick < 6 && n_slots) {
    struct slot *s = &slots[below(n_slots)];
    u32 off = chance(3) ? REG_CONFIG + below(0xf00) : below(REG_CONFIG);
    if (chance(2)) off &= ~3u;
    *is_queue_reg = off >= REG_QUEUE_DESC_LOW && off < REG_QUEUE_DEVICE_HIGH + 4;
    return s->base + off;
  }
  if (pick < 8) return BOOT_TIMER + (chance(4) ? 0 : below(0x1000));
  /* Unassigned: the slots after the last one, and the rest of the hole below the IOAPIC. */
  if (chance(2)) return BOOT_TIMER + 0x1000 * (1 + n_slots + below(4)) + below(0x1000);
  return 0xd0000000UL + below(0x1000000);
}

static void chaos_mmio(void) {
  u32 queue_reg;
  uptr a = any_mmio(&queue_reg);
  u32 width = any_width(1);
  u64 v = rnd();
  if (a == BOOT_TIMER && chance(2)) v = 123;  /* the boot timer's magic: logs a line */
  /* A queue address only ever names the arena or no RAM at all. */
  if (queue_reg) v = (v & ~0xffffffffULL) | queue_reg_value((u32)(a & 0xfff));
  if (queue_reg && width == 8) width = 4;
  mmio_wr(a, width, v);
  if (chance(2)) mmio_rd(a, any_width(1));
}

/* ---- the test ------------------------------------------------------------- */

/* ember.hostile=SEED[,ROUNDS]; absent: seed 1. */
static void parse_args(const char *p, u64 *seed, u32 *rounds) {
  static const char kKey[] = "ember.hostile=";
  for (; *p; p++) {
    const char *k = kKey, *q = p;
    while (*k && *q == *k) q++, k++;
    if (*k) continue;
    u64 v = 0;
    while (*q >= '0' && *q <= '9') v = v * 10 + (u64)(*q++ - '0');
    *seed = v;
    if (*q == ',') {
      u32 r = 0;
      q++;
      while (*q >= '0' && *q <= '9') r = r * 10 + (u32)(*q++ - '0');
      *rounds = r;
    }
    return;
  }
}

static void probe_slot(struct slot *s) {
  s->queues = 0;
  for (u32 q = 0; q < MAX_QUEUES; q++) {
    reg_wr(s->base, REG_QUEUE_SEL, q);
    u32 max = reg_rd(s->base, REG_QUEUE_NUM_MAX);
    if (!max) break;
    s->max[q] = max;
    s->queues = q + 1;
  }
}

void test_hostile(const char *cmdline) {
  u64 seed = 1;
  u32 rounds = DEFAULT_ROUNDS;
  parse_args(cmdline, &seed, &rounds);
  /* splitmix-style scrambling, so seeds 1, 2, 3 start far apart; never 0. */
  rng = (seed + 1) * 0x9e3779b97f4a7c15ULL;
  rng ^= rng >> 31;
  if (!rng) rng = 1;

  uptr bases[MAX_HOSTILE_SLOTS];
  u32 ids[MAX_HOSTILE_SLOTS];
  n_slots = virtio_transports(cmdline, bases, ids, MAX_HOSTILE_SLOTS);
  u32 devices = 0;
  for (u32 i = 0; i < n_slots; i++) {
    slots[i] = (struct slot){.base = bases[i], .id = ids[i]};
    if (ids[i]) probe_slot(&slots[i]), devices++;
  }
  line("hostile seed=");
  put_dec(seed);
  put_str(" rounds=");
  put_dec(rounds);
  put_str(" slots=");
  put_dec(n_slots);
  put_str(" devices=");
  put_dec(devices);
  put_char('\n');

  u64 start = rdtsc();
  for (u32 round = 0; round < rounds; round++) {
    for (u32 i = 0; i < CHAOS_PER_ROUND; i++) {
      if (chance(2))
        chaos_port();
      else
        chaos_mmio();
    }
    for (u32 i = 0; i < n_slots; i++)
      if (slots[i].id && !chance(4)) bogus_driver(&slots[i]);
  }

  /* Leave the machine quiet and the console usable. */
  for (u32 i = 0; i < n_slots; i++) reg_wr(slots[i].base, REG_STATUS, 0);
  outb(COM1 + 1, 0);       /* IER: no interrupts */
  outb(COM1_LCR, 0x03);    /* 8N1, divisor latch off */
  outb(COM1_MCR, 0x03);    /* DTR | RTS, loopback off */
  u64 ms = (rdtsc() - start) / TSC_PER_MS;

  put_char('\n');  /* the random THR bytes may have left a partial line */
  for (u32 i = 0; i < n_slots; i++) {
    if (!slots[i].id) continue;
    line("hostile slot base=0x");
    put_hex(slots[i].base);
    put_str(" id=");
    put_dec(slots[i].id);
    put_str(" queues=");
    put_dec(slots[i].queues);
    put_str(" inits=");
    put_dec(slots[i].inits);
    put_str(" ready=");
    put_dec(slots[i].ready);
    put_str(" consumed=");
    put_dec(slots[i].consumed);
    put_str(" needs_reset=");
    put_dec(slots[i].needs_reset);
    put_char('\n');
  }
  line("hostile done seed=");
  put_dec(seed);
  put_str(" writes=");
  put_dec(n_writes);
  put_str(" reads=");
  put_dec(n_reads);
  put_str(" inits=");
  put_dec(n_inits);
  put_str(" notifies=");
  put_dec(n_notifies);
  put_str(" consumed=");
  put_dec(n_consumed);
  put_str(" needs_reset=");
  put_dec(n_needs_reset);
  put_str(" ms=");
  put_dec(ms);
  put_char('\n');
}
