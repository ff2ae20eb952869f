/*
 * The guest's polling virtio-mmio (version 2) transport and split
 * virtqueues, shared by the device drivers (virtio_fs.c, virtio_net.c).
 * Written from the virtio 1.x specification.  See virtio.c.
 */
#ifndef EMBER_GUEST_VIRTIO_H
#define EMBER_GUEST_VIRTIO_H

#include "lib.h"

/* ---- virtio-mmio v2 registers --------------------------------------- */

#define VIRTIO_MMIO_MAGIC	0x74726976	/* "virt" */

#define REG_MAGIC		0x000
#define REG_VERSION		0x004
#define REG_DEVICE_ID		0x008
#define REG_DEVICE_FEATURES	0x010
#define REG_DEVICE_FEATURES_SEL	0x014
#define REG_DRIVER_FEATURES	0x020
#define REG_DRIVER_FEATURES_SEL	0x024
#define REG_QUEUE_SEL		0x030
#define REG_QUEUE_NUM_MAX	0x034
#define REG_QUEUE_NUM		0x038
#define REG_QUEUE_READY		0x044
#define REG_QUEUE_NOTIFY	0x050
#define REG_STATUS		0x070
#define REG_QUEUE_DESC_LOW	0x080
#define REG_QUEUE_DESC_HIGH	0x084
#define REG_QUEUE_DRIVER_LOW	0x090
#define REG_QUEUE_DRIVER_HIGH	0x094
#define REG_QUEUE_DEVICE_LOW	0x0a0
#define REG_QUEUE_DEVICE_HIGH	0x0a4
#define REG_CONFIG_GENERATION	0x0fc
#define REG_CONFIG		0x100

#define STATUS_ACKNOWLEDGE	1
#define STATUS_DRIVER		2
#define STATUS_DRIVER_OK	4
#define STATUS_FEATURES_OK	8
#define STATUS_FAILED		0x80

#define F_VERSION_1_HI		1	/* VIRTIO_F_VERSION_1 is bit 32: bit 0 of word 1 */

#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_FS		26

#define DESC_F_NEXT		1
#define DESC_F_WRITE		2
#define AVAIL_F_NO_INTERRUPT	1
#define USED_F_NO_NOTIFY	1

static inline u32 mmio_read(uptr base, u32 reg) { return rd32(base + reg); }
static inline void mmio_write(uptr base, u32 reg, u32 v) { wr32(base + reg, v); }

/* ---- split virtqueues ------------------------------------------------- */

/* At most QSZ_MAX entries per queue (a power of 2, as split queues need). */
#define QSZ_MAX		64

struct vring_desc {
  u64 addr;
  u32 len;
  u16 flags;
  u16 next;
};

struct vring_avail {
  u16 flags;
  u16 idx;
  u16 ring[QSZ_MAX];
  u16 used_event;  /* unused: VIRTIO_F_EVENT_IDX is never negotiated */
};

struct vring_used_elem {
  u32 id;
  u32 len;
};

struct vring_used {
  u16 flags;
  u16 idx;
  struct vring_used_elem ring[QSZ_MAX];
  u16 avail_event;
};

/* One page per queue; the device sees three addresses into it. */
struct vring_mem {
  struct vring_desc desc[QSZ_MAX];  /* 16-byte aligned */
  struct vring_avail avail;          /* 2-byte aligned */
  struct vring_used used __attribute__((aligned(4)));
} __attribute__((aligned(4096)));

_Static_assert(sizeof(struct vring_mem) == 4096, "one page per queue");

struct queue {
  struct vring_mem *mem;
  u16 size;
  u16 avail_idx;   /* entries made available (free-running) */
  u16 used_seen;   /* used entries consumed by the driver (free-running) */
};

/*
 * Full barrier (a locked add on the stack, no SSE): orders the avail index
 * store before the used flags load that decides about a notify.
 */
static inline void mb(void) { __asm__ volatile("lock; addl $0, (%%rsp)" : : : "memory", "cc"); }

/*
 * Publishes the avail index (everything before it is visible first) and
 * notifies queue `index` unless the device set VIRTQ_USED_F_NO_NOTIFY.
 */
static inline void vq_publish(uptr base, u32 index, struct queue *q) {
  barrier();  /* descriptors and ring entries before the index */
  *(volatile u16 *)&q->mem->avail.idx = q->avail_idx;
  mb();
  if (!(*(volatile u16 *)&q->mem->used.flags & USED_F_NO_NOTIFY))
    mmio_write(base, REG_QUEUE_NOTIFY, index);
}

/* The device's used index (free-running). */
static inline u16 vq_used_idx(const struct queue *q) {
  return *(const volatile u16 *)&q->mem->used.idx;
}

/* ---- transports and device setup -------------------------------------- */

/* The guest's page tables map 0-4 GiB only. */
#define MAPPED_END		0x100000000ULL

/*
 * Base of the first usable transport with DeviceID `id` among the
 * command line's virtio_mmio.device= tokens, or 0 (after any lines about
 * bad tokens or transports).
 */
uptr virtio_find(const char *cmdline, u32 id);
/* The same for the `nth` (0-based) such transport. */
uptr virtio_find_nth(const char *cmdline, u32 id, u32 nth);
/*
 * Every usable transport, empty slots (DeviceID 0) included, in
 * command-line order: up to `max` bases and device IDs; returns how many.
 */
u32 virtio_transports(const char *cmdline, uptr *bases, u32 *ids, u32 max);

/*
 * Resets the device at `base`, sets ACKNOWLEDGE and DRIVER and negotiates
 * features: VIRTIO_F_VERSION_1 (required) plus those of `want_lo` (bits
 * 0-31) that the device offers, then sets FEATURES_OK and reads it back.
 * Returns 0 (*got_lo = the accepted bits 0-31) or what failed: "reset",
 * "no-version-1" or "features".
 */
const char *virtio_negotiate(uptr base, u32 want_lo, u32 *got_lo);

/*
 * Sets up queue `index` with min(QueueNumMax, QSZ_MAX) entries in `mem`
 * (at least `min_size`), descriptor i linked to i + 1, the avail ring
 * asking for no interrupts, both indices 0.  Returns 0 or what failed:
 * "queue-already-ready" or "queue-too-small".
 */
const char *virtio_setup_queue(uptr base, u32 index, struct queue *q, struct vring_mem *mem,
                               u32 min_size);

/* Sets DRIVER_OK, or FAILED. */
void virtio_driver_ok(uptr base);
void virtio_fail(uptr base);

#endif
