/*
 * ember test guest: a minimal polling virtio-blk driver on the virtio-mmio
 * transport of virtio.c, and the blk, blkbad and blkswap tests.  Written
 * from the virtio 1.x specification (5.2, block device).
 *
 * Features asked for: VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_RO and
 * VIRTIO_BLK_F_FLUSH.  One request at a time, as one chain: the 16-byte
 * header (device-readable), zero to two data buffers, the status byte
 * (device-writable), in descriptors 0-3.  No interrupts (IF=0): the used
 * ring is polled.
 *
 * blkbad writes what a hostile driver would (descriptors outside RAM, a
 * chain that loops, buffers of the wrong direction, a short header, an
 * available index far ahead) and checks that the device answers as the
 * spec says and keeps working, or asks for a reset and works after it.
 */

#include "virtio.h"

#define BLK_F_SEG_MAX		(1u << 2)
#define BLK_F_RO		(1u << 5)
#define BLK_F_FLUSH		(1u << 9)

#define BLK_T_IN		0
#define BLK_T_OUT		1
#define BLK_T_FLUSH		4
#define BLK_T_GET_ID		8
#define BLK_T_DISCARD		11	/* never offered: must be refused */

#define BLK_S_OK		0
#define BLK_S_IOERR		1
#define BLK_S_UNSUPP		2
#define BLK_S_NONE		0xee	/* written before a request: "not answered" */
#define BLK_TIMEOUT_STATUS	0xff

#define STATUS_NEEDS_RESET	0x40
#define REG_INTERRUPT_STATUS	0x060
#define REG_INTERRUPT_ACK	0x064
#define INT_CONFIG		2

#define SECTOR			512
#define MAX_DRIVES		4
#define READ_SECTORS		16	/* 8 KiB, as two 4 KiB segments */
#define WRITE_SECTOR		16	/* where blk writes its pattern */
#define WRITE_SECTORS		8
#define ID_BYTES		20
#define BLK_TIMEOUT		(5000 * TSC_PER_MS)
#define SWAP_TIMEOUT		(20000 * TSC_PER_MS)
#define NOT_RAM			0xd0000000u	/* inside the 32-bit MMIO hole */

struct blk_header {
  u32 type;
  u32 reserved;
  u64 sector;
};

struct blk_drive {
  uptr base;
  struct queue q;
  u32 features;
  u64 capacity;
};

/* Uninitialised on purpose (.bss): the device reads and writes them. */
static struct vring_mem blk_rings[MAX_DRIVES];
static struct blk_header blk_hdr;
static u8 blk_data[2][4096] __attribute__((aligned(4096)));
static u8 blk_expect[WRITE_SECTORS * SECTOR];
static volatile u8 blk_status;

static u64 read_capacity(uptr base) {
  for (;;) {
    u32 gen = mmio_read(base, REG_CONFIG_GENERATION);
    u64 cap = mmio_read(base, REG_CONFIG) | (u64)mmio_read(base, REG_CONFIG + 4) << 32;
    if (mmio_read(base, REG_CONFIG_GENERATION) == gen) return cap;
  }
}

static const char *blk_start(struct blk_drive *d, uptr base, u32 index) {
  d->base = base;
  const char *err = virtio_negotiate(base, BLK_F_SEG_MAX | BLK_F_RO | BLK_F_FLUSH, &d->features);
  if (!err) err = virtio_setup_queue(base, 0, &d->q, &blk_rings[index], 4);
  if (err) {
    virtio_fail(base);
    return err;
  }
  d->capacity = read_capacity(base);
  virtio_driver_ok(base);
  return 0;
}

/* Waits for the device to return the chain; the bytes it wrote, or -1. */
static s64 blk_wait(struct blk_drive *d) {
  u64 deadline = rdtsc() + BLK_TIMEOUT;
  while (vq_used_idx(&d->q) == d->q.used_seen) {
    if (rdtsc() > deadline) return -1;
    __asm__ volatile("pause");
  }
  struct vring_used_elem *e = &d->q.mem->used.ring[d->q.used_seen % d->q.size];
  d->q.used_seen++;
  return e->len;
}

/* Puts descriptor 0 at the head of the avail ring and notifies. */
static void blk_publish(struct blk_drive *d) {
  d->q.mem->avail.ring[d->q.avail_idx % d->q.size] = 0;
  d->q.avail_idx++;
  vq_publish(d->base, 0, &d->q);
}

/*
 * One request: header, `segments` (0-2) buffers of `len` bytes each in
 * blk_data (written by the device when `in`), status.  Returns the
 * status byte, or BLK_TIMEOUT_STATUS.
 */
static u32 blk_request(struct blk_drive *d, u32 type, u64 sector, u32 segments, u32 len, int in,
                       s64 *written) {
  struct vring_desc *desc = d->q.mem->desc;
  blk_hdr = (struct blk_header){type, 0, sector};
  blk_status = BLK_S_NONE;
  desc[0] = (struct vring_desc){(uptr)&blk_hdr, sizeof(blk_hdr), DESC_F_NEXT, 1};
  u16 next = 1;
  for (u32 i = 0; i < segments; i++, next++)
    desc[next] = (struct vring_desc){(uptr)blk_data[i], len,
                                     (u16)(DESC_F_NEXT | (in ? DESC_F_WRITE : 0)),
                                     (u16)(next + 1)};
  desc[next] = (struct vring_desc){(uptr)&blk_status, 1, DESC_F_WRITE, 0};
  blk_publish(d);
  s64 n = blk_wait(d);
  if (written) *written = n;
  return n < 0 ? BLK_TIMEOUT_STATUS : blk_status;
}

static void blk_line(const char *test, u32 index, const char *what) {
  line(test);
  put_str(" drive=");
  put_dec(index);
  put_char(' ');
  put_str(what);
}

static void put_status(const char *name, u32 status) {
  put_char(' ');
  put_str(name);
  put_str("=");
  put_dec(status);
}

/* The first `nth` (0-based) transport of a block device. */
static uptr blk_find(const char *cmdline, u32 nth) {
  return virtio_find_nth(cmdline, VIRTIO_ID_BLOCK, nth);
}

/*
 * Finds block device `nth` and starts it for `test` (at least `min_sectors`
 * big); 1 when it is usable, else 0 after "<test> no-device" or
 * "<test> error <why>".
 */
static int blk_open(const char *cmdline, u32 nth, const char *test, u64 min_sectors,
                    struct blk_drive *d) {
  uptr base = blk_find(cmdline, nth);
  const char *err = base ? blk_start(d, base, nth) : 0;
  if (!err && base && d->capacity < min_sectors) err = "too-small";
  if (base && !err) return 1;
  line(test);
  put_str(base ? " error " : " no-device");
  if (err) put_str(err);
  put_char('\n');
  return 0;
}

static u32 read_sum(struct blk_drive *d, u64 sector, u32 *status) {
  *status = blk_request(d, BLK_T_IN, sector, 2, 4096, 1, 0);
  return byte_sum((uptr)blk_data, sizeof(blk_data));
}

/* Exercises one drive; returns the number of unexpected answers. */
static u32 blk_exercise(struct blk_drive *d, u32 index) {
  u32 errors = 0, status;
  blk_line("blk", index, "capacity=");
  put_dec(d->capacity);
  put_str(" ro=");
  put_dec(!!(d->features & BLK_F_RO));
  put_str(" flush=");
  put_dec(!!(d->features & BLK_F_FLUSH));
  put_char('\n');

  for (u32 i = 0; i < ID_BYTES + 1; i++) blk_data[0][i] = 0;
  status = blk_request(d, BLK_T_GET_ID, 0, 1, ID_BYTES, 1, 0);
  blk_line("blk", index, "id=");
  for (u32 i = 0; i < ID_BYTES && blk_data[0][i]; i++) put_char((char)blk_data[0][i]);
  put_status("status", status);
  put_char('\n');
  errors += status != BLK_S_OK;

  if (d->capacity >= READ_SECTORS) {
    u32 sum = read_sum(d, 0, &status);
    blk_line("blk", index, "read sectors=16 sum=0x");
    put_hex8(sum);
    put_status("status", status);
    put_char('\n');
    errors += status != BLK_S_OK;
  }

  /* A pattern only this drive writes: byte i is i * 7 + index. */
  for (u32 i = 0; i < sizeof(blk_expect); i++) blk_expect[i] = (u8)(i * 7 + index);
  for (u32 i = 0; i < 2; i++)
    for (u32 j = 0; j < 2048; j++) blk_data[i][j] = blk_expect[i * 2048 + j];
  u32 wrote = blk_request(d, BLK_T_OUT, WRITE_SECTOR, 2, 2048, 0, 0);
  if (d->features & BLK_F_RO) {
    blk_line("blk", index, "write-ro");
    put_status("status", wrote);
    put_char('\n');
    errors += wrote != BLK_S_IOERR;
  } else if (d->capacity >= WRITE_SECTOR + WRITE_SECTORS) {
    u32 flushed = (d->features & BLK_F_FLUSH) ? blk_request(d, BLK_T_FLUSH, 0, 0, 0, 0, 0) : 0;
    for (u32 i = 0; i < 2; i++)
      for (u32 j = 0; j < 2048; j++) blk_data[i][j] = 0;
    u32 reread = blk_request(d, BLK_T_IN, WRITE_SECTOR, 2, 2048, 1, 0);
    u32 same = 1;
    for (u32 i = 0; i < sizeof(blk_expect); i++)
      if (blk_data[i / 2048][i % 2048] != blk_expect[i]) same = 0;
    blk_line("blk", index, "wrote sectors=8 sum=0x");
    put_hex8(byte_sum((uptr)blk_expect, sizeof(blk_expect)));
    put_status("status", wrote);
    put_status("flush", flushed);
    put_str(same && reread == BLK_S_OK ? " readback=ok\n" : " readback=bad\n");
    errors += wrote != BLK_S_OK || flushed != BLK_S_OK || !same || reread != BLK_S_OK;
  }

  u32 past = blk_request(d, BLK_T_IN, d->capacity, 1, SECTOR, 1, 0);
  u32 unsupp = blk_request(d, BLK_T_DISCARD, 0, 0, 0, 0, 0);
  blk_line("blk", index, "past-end");
  put_status("status", past);
  put_status("unsupported", unsupp);
  put_char('\n');
  errors += past != BLK_S_IOERR || unsupp == BLK_S_OK;  /* UNSUPP from ember; a backend may say IOERR */
  return errors;
}

void test_blk(const char *cmdline) {
  u32 errors = 0, drives = 0;
  for (u32 i = 0; i < MAX_DRIVES; i++) {
    uptr base = blk_find(cmdline, i);
    if (!base) break;
    struct blk_drive d;
    const char *err = blk_start(&d, base, i);
    drives++;
    if (err) {
      blk_line("blk", i, "error ");
      put_str(err);
      put_char('\n');
      errors++;
      continue;
    }
    errors += blk_exercise(&d, i);
  }
  line("blk drives=");
  put_dec(drives);
  put_str(drives && !errors ? " ok\n" : " failed\n");
}

/* ---- blkbad: what a hostile driver writes ---------------------------------- */

static u32 bad_chain(struct blk_drive *d, const char *what, u32 want_status, s64 want_len) {
  s64 written;
  blk_publish(d);
  written = blk_wait(d);
  u32 status = written < 0 ? BLK_TIMEOUT_STATUS : blk_status;
  line("blkbad ");
  put_str(what);
  put_str(" used_len=");
  if (written < 0)
    put_str("timeout");
  else
    put_dec((u64)written);
  put_status("status", status);
  put_char('\n');
  return written != want_len || status != want_status;
}

void test_blkbad(const char *cmdline) {
  struct blk_drive d;
  if (!blk_open(cmdline, 0, "blkbad", 0, &d)) return;
  const uptr base = d.base;
  const char *err;
  struct vring_desc *desc = d.q.mem->desc;
  u32 errors = 0;

  /* A data buffer outside RAM: returned unread, nothing written. */
  blk_hdr = (struct blk_header){BLK_T_IN, 0, 0};
  blk_status = BLK_S_NONE;
  desc[0] = (struct vring_desc){(uptr)&blk_hdr, sizeof(blk_hdr), DESC_F_NEXT, 1};
  desc[1] = (struct vring_desc){NOT_RAM, 4096, DESC_F_NEXT | DESC_F_WRITE, 2};
  desc[2] = (struct vring_desc){(uptr)&blk_status, 1, DESC_F_WRITE, 0};
  errors += bad_chain(&d, "outside-ram", BLK_S_NONE, 0);

  /* A chain that loops: 0 -> 1 -> 0. */
  desc[1] = (struct vring_desc){(uptr)blk_data[0], 512, DESC_F_NEXT | DESC_F_WRITE, 0};
  blk_status = BLK_S_NONE;
  errors += bad_chain(&d, "loop", BLK_S_NONE, 0);

  /* A read into a buffer the device may not write. */
  desc[1] = (struct vring_desc){(uptr)blk_data[0], 512, DESC_F_NEXT, 2};
  blk_status = BLK_S_NONE;
  errors += bad_chain(&d, "wrong-direction", BLK_S_IOERR, 1);

  /* A header of 8 bytes. */
  desc[0].len = 8;
  desc[1] = (struct vring_desc){(uptr)blk_data[0], 512, DESC_F_NEXT | DESC_F_WRITE, 2};
  blk_status = BLK_S_NONE;
  errors += bad_chain(&d, "short-header", BLK_S_IOERR, 1);

  /* A next index past the table. */
  desc[0].len = sizeof(blk_hdr);
  desc[1].next = 999;
  blk_status = BLK_S_NONE;
  errors += bad_chain(&d, "next-out-of-range", BLK_S_NONE, 0);

  u32 status;
  read_sum(&d, 0, &status);
  line("blkbad good");
  put_status("status", status);
  put_char('\n');
  errors += status != BLK_S_OK;

  /* An available index far ahead of the ring: the device must stop and
     ask for a reset (DEVICE_NEEDS_RESET, with a config interrupt). */
  d.q.avail_idx += d.q.size + 5;
  vq_publish(d.base, 0, &d.q);
  u64 deadline = rdtsc() + BLK_TIMEOUT;
  u32 device_status;
  while (!((device_status = mmio_read(d.base, REG_STATUS)) & STATUS_NEEDS_RESET) &&
         rdtsc() < deadline)
    __asm__ volatile("pause");
  u32 isr = mmio_read(d.base, REG_INTERRUPT_STATUS);
  line("blkbad needs-reset=");
  put_dec(!!(device_status & STATUS_NEEDS_RESET));
  put_str(" isr=0x");
  put_hex(isr);
  put_char('\n');
  errors += !(device_status & STATUS_NEEDS_RESET) || !(isr & INT_CONFIG);

  err = blk_start(&d, base, 0);
  if (err) {
    line("blkbad error ");
    put_str(err);
    put_char('\n');
    errors++;
  } else {
    read_sum(&d, 0, &status);
    line("blkbad recovered");
    put_status("status", status);
    put_char('\n');
    errors += status != BLK_S_OK;
  }
  line(errors ? "blkbad failed\n" : "blkbad ok\n");
}

/* ---- blkswap: the host moves drive 1 to a new file (PATCH /drives) ------- */

void test_blkswap(const char *cmdline) {
  struct blk_drive d;
  if (!blk_open(cmdline, 1, "blkswap", 0, &d)) return;
  const uptr base = d.base;
  u64 before = d.capacity;
  line("blkswap waiting capacity=");
  put_dec(before);
  put_char('\n');
  u64 deadline = rdtsc() + SWAP_TIMEOUT;
  u32 isr = 0;
  while (rdtsc() < deadline) {
    isr = mmio_read(base, REG_INTERRUPT_STATUS);
    if (isr & INT_CONFIG) break;
    u64 wait = rdtsc() + TSC_PER_MS;
    while (rdtsc() < wait) __asm__ volatile("pause");
  }
  mmio_write(base, REG_INTERRUPT_ACK, isr & INT_CONFIG);
  d.capacity = read_capacity(base);
  line("blkswap capacity=");
  put_dec(d.capacity);
  put_str(" isr=0x");
  put_hex(isr);
  put_char('\n');
  if (d.capacity < READ_SECTORS) {
    line("blkswap failed\n");
    return;
  }
  u32 status;
  u32 sum = read_sum(&d, 0, &status);
  line("blkswap read sum=0x");
  put_hex8(sum);
  put_status("status", status);
  put_char('\n');
  line(status == BLK_S_OK && (isr & INT_CONFIG) ? "blkswap ok\n" : "blkswap failed\n");
}

/* ---- blkloop: writes that survive a backend restart ------------------------- */

#define LOOP_SLOTS		200	/* write i goes to sectors 64 + 2 * (i % LOOP_SLOTS) */
#define LOOP_FIRST_SECTOR	64
#define LOOP_PERIOD		(20 * TSC_PER_MS)
#define LOOP_WAIT		(60000 * TSC_PER_MS)	/* a request over a restart */

/* Waits for the answer while polling for Ctrl-Alt-Del; -1 after LOOP_WAIT. */
static s64 loop_wait_used(struct blk_drive *d, u32 *cad) {
  u64 deadline = rdtsc() + LOOP_WAIT;
  while (vq_used_idx(&d->q) == d->q.used_seen) {
    if (rdtsc() > deadline || cad_poll(cad)) return -1;
    __asm__ volatile("pause");
  }
  struct vring_used_elem *e = &d->q.mem->used.ring[d->q.used_seen % d->q.size];
  d->q.used_seen++;
  return e->len;
}

static u32 loop_request(struct blk_drive *d, u32 type, u64 sector, u32 len, u32 *cad) {
  struct vring_desc *desc = d->q.mem->desc;
  blk_hdr = (struct blk_header){type, 0, sector};
  blk_status = BLK_S_NONE;
  desc[0] = (struct vring_desc){(uptr)&blk_hdr, sizeof(blk_hdr), DESC_F_NEXT, 1};
  u16 status_desc = 1;
  if (len) {
    desc[1] = (struct vring_desc){(uptr)blk_data[0], len, DESC_F_NEXT, 2};
    status_desc = 2;
  }
  desc[status_desc] = (struct vring_desc){(uptr)&blk_status, 1, DESC_F_WRITE, 0};
  blk_publish(d);
  return loop_wait_used(d, cad) < 0 ? BLK_TIMEOUT_STATUS : blk_status;
}

/*
 * Until Ctrl-Alt-Del: write 1 KiB (u64 word w of write i is
 * i * 0x100000001 + w) to the next slot, flush, and print
 * "blkloop synced <i>" once both are answered OK.  A request the backend
 * never answers (it died) waits until it is served after the reconnect.
 */
void test_blkloop(const char *cmdline) {
  struct blk_drive d;
  if (!blk_open(cmdline, 0, "blkloop", 0, &d)) return;
  u32 cad = 0, failures = 0;
  u64 synced = 0;
  for (u64 i = 0;; i++) {
    u64 *words = (u64 *)blk_data[0];
    for (u32 w = 0; w < 128; w++) words[w] = i * 0x100000001ULL + w;
    u64 sector = LOOP_FIRST_SECTOR + 2 * (i % LOOP_SLOTS);
    u32 wrote = loop_request(&d, BLK_T_OUT, sector, 1024, &cad);
    u32 flushed = wrote == BLK_S_OK ? loop_request(&d, BLK_T_FLUSH, 0, 0, &cad) : wrote;
    if (cad == 3) break;
    if (wrote == BLK_S_OK && flushed == BLK_S_OK) {
      line("blkloop synced ");
      put_dec(i);
      put_char('\n');
      synced++;
    } else {
      line("blkloop failed write=");
      put_dec(wrote);
      put_str(" flush=");
      put_dec(flushed);
      put_char('\n');
      failures++;
    }
    u64 next = rdtsc() + LOOP_PERIOD;
    while (rdtsc() < next)
      if (cad_poll(&cad)) break;
    if (cad == 3) break;
  }
  line("blkloop writes=");
  put_dec(synced);
  put_str(" failures=");
  put_dec(failures);
  put_char('\n');
  line(synced && !failures ? "blkloop ok\n" : "blkloop failed\n");
}

/* ---- blkrate: 8 MiB of reads, timed by the guest's TSC ---------------------- */

#define RATE_BYTES		(8u << 20)

/*
 * Reads 8 MiB from drive 0 in 8 KiB requests (sector 0 onwards, wrapping
 * at the capacity) and prints how long it took in ms of lib.h's TSC_PER_MS
 * (the guest sees no TSC frequency): for a rate limiter's effect.
 */
void test_blkrate(const char *cmdline) {
  struct blk_drive d;
  if (!blk_open(cmdline, 0, "blkrate", READ_SECTORS, &d)) return;
  u32 bad = 0;
  u64 sector = 0, start = rdtsc();
  for (u32 done = 0; done < RATE_BYTES; done += sizeof(blk_data)) {
    if (sector + READ_SECTORS > d.capacity) sector = 0;
    if (blk_request(&d, BLK_T_IN, sector, 2, 4096, 1, 0) != BLK_S_OK) bad++;
    sector += READ_SECTORS;
  }
  u64 cycles = rdtsc() - start;
  line("blkrate bytes=");
  put_dec(RATE_BYTES);
  put_str(" ms=");
  put_dec(cycles / TSC_PER_MS);
  put_str(" failed=");
  put_dec(bad);
  put_char('\n');
}

/* ---- blkbench: random 4 KiB reads and sequential 1 MiB reads ---------------- */

#define BENCH_RANDOM_N		2000
#define BENCH_SEQ_BYTES		(16u << 20)
#define BENCH_BIG		(1u << 20)

static u8 blk_big[BENCH_BIG] __attribute__((aligned(4096)));

/* One read of `len` bytes into one buffer; the status byte. */
static u32 bench_read(struct blk_drive *d, u64 sector, uptr buffer, u32 len) {
  struct vring_desc *desc = d->q.mem->desc;
  blk_hdr = (struct blk_header){BLK_T_IN, 0, sector};
  blk_status = BLK_S_NONE;
  desc[0] = (struct vring_desc){(uptr)&blk_hdr, sizeof(blk_hdr), DESC_F_NEXT, 1};
  desc[1] = (struct vring_desc){buffer, len, DESC_F_NEXT | DESC_F_WRITE, 2};
  desc[2] = (struct vring_desc){(uptr)&blk_status, 1, DESC_F_WRITE, 0};
  blk_publish(d);
  return blk_wait(d) < 0 ? BLK_TIMEOUT_STATUS : blk_status;
}

/*
 * On drive 0 (at least 16 MiB): 2000 reads of 4 KiB at pseudo-random
 * 4 KiB-aligned offsets, then 16 MiB in 1 MiB reads from sector 0, each
 * timed in TSC cycles; one request in flight at a time.
 */
void test_blkbench(const char *cmdline) {
  struct blk_drive d;
  if (!blk_open(cmdline, 0, "blkbench", BENCH_SEQ_BYTES / SECTOR, &d)) return;
  u32 bad = 0;
  u64 blocks = d.capacity / 8, x = 88172645463325252ULL;
  u64 start = rdtsc();
  for (u32 i = 0; i < BENCH_RANDOM_N; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (bench_read(&d, (x % blocks) * 8, (uptr)blk_data[0], 4096) != BLK_S_OK) bad++;
  }
  u64 random_cycles = rdtsc() - start;
  start = rdtsc();
  for (u32 done = 0; done < BENCH_SEQ_BYTES; done += BENCH_BIG)
    if (bench_read(&d, done / SECTOR, (uptr)blk_big, BENCH_BIG) != BLK_S_OK) bad++;
  u64 seq_cycles = rdtsc() - start;
  line("blkbench randread n=");
  put_dec(BENCH_RANDOM_N);
  put_str(" cycles=");
  put_dec(random_cycles);
  put_char('\n');
  line("blkbench seqread bytes=");
  put_dec(BENCH_SEQ_BYTES);
  put_str(" cycles=");
  put_dec(seq_cycles);
  put_char('\n');
  line(bad ? "blkbench failed\n" : "blkbench ok\n");
}
