/*
 * The "rng" test: a polling virtio-rng (entropy, device 4) driver.  Reads
 * two 64-byte buffers, each in one writable descriptor, and reports how
 * many bytes the device wrote, whether they look random (not all zero) and
 * whether the two reads differ:
 *   ember-guest: rng bytes=64,64 nonzero=yes differ=yes
 * Written from the virtio 1.x specification, section 5.4.
 */
#include "virtio.h"

#define VIRTIO_ID_RNG 4
#define RNG_BYTES 64
#define RNG_TIMEOUT (5000 * TSC_PER_MS)

/* Uninitialised on purpose (.bss): the device writes them. */
static struct vring_mem rng_ring;
static u8 rng_data[2][RNG_BYTES] __attribute__((aligned(64)));

/* Posts `buf` as one writable descriptor; the bytes written, or -1. */
static s64 rng_read(uptr base, struct queue *q, u8 *buf) {
  u16 slot = q->avail_idx % q->size;
  struct vring_desc *d = &q->mem->desc[slot];
  d->addr = (u64)(uptr)buf;
  d->len = RNG_BYTES;
  d->flags = DESC_F_WRITE;
  d->next = 0;
  q->mem->avail.ring[slot] = slot;
  q->avail_idx++;
  vq_publish(base, 0, q);
  u64 deadline = rdtsc() + RNG_TIMEOUT;
  while (vq_used_idx(q) == q->used_seen) {
    if (rdtsc() > deadline) return -1;
    __asm__ volatile("pause");
  }
  struct vring_used_elem *e = &q->mem->used.ring[q->used_seen % q->size];
  q->used_seen++;
  return e->len;
}

void test_rng(const char *cmdline) {
  uptr base = virtio_find(cmdline, VIRTIO_ID_RNG);
  if (!base) {
    line("rng no-device\n");
    return;
  }
  u32 features;
  struct queue q;
  const char *err = virtio_negotiate(base, 0, &features);
  if (!err) err = virtio_setup_queue(base, 0, &q, &rng_ring, 2);
  if (err) {
    virtio_fail(base);
    line("rng setup-failed ");
    put_str(err);
    put_char('\n');
    return;
  }
  /* The descriptors are used one at a time, unlinked. */
  virtio_driver_ok(base);
  s64 got[2];
  for (int i = 0; i < 2; i++) got[i] = rng_read(base, &q, rng_data[i]);
  if (got[0] < 0 || got[1] < 0) {
    line("rng timeout\n");
    return;
  }
  int nonzero = 0, differ = 0;
  for (u32 i = 0; i < RNG_BYTES; i++) {
    if (rng_data[0][i] | rng_data[1][i]) nonzero = 1;
    if (rng_data[0][i] != rng_data[1][i]) differ = 1;
  }
  line("rng bytes=");
  put_dec((u32)got[0]);
  put_char(',');
  put_dec((u32)got[1]);
  put_str(nonzero ? " nonzero=yes" : " nonzero=no");
  put_str(differ ? " differ=yes\n" : " differ=no\n");
}
