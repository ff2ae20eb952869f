/*
 * ember test guest: a FUSE client for virtio-fs on the polling virtio-mmio
 * transport of virtio.c.  Written from the virtio 1.x specification and
 * the FUSE protocol (linux/fuse.h).
 *
 * One request in flight at a time: every request uses descriptors
 * head..head+n-1 of the request queue (head 0, unless fsloop gave up on a
 * request, see retire_head), is notified, and the used ring is polled
 * (IF=0, so no interrupts; the driver also asks for none).  Under an
 * emulating hypervisor every instruction counts, so the loops are short
 * and the big buffers are never touched byte by byte (except the sum of
 * what is read).
 * See README.md for the tests and their output lines.
 */

#include "virtio.h"

/* ---- one request at a time ---------------------------------------------- */

/* A request never uses more than MAX_DESCS descriptors. */
#define MAX_DESCS	16

struct seg {
  uptr addr;
  u32 len;
};

/* Uninitialised on purpose (.bss): no loader has to zero or copy them. */
static struct vring_mem rings[2];

/* ~13 s at 2.6 GHz: far beyond any real reply, but the guest never hangs. */
#define REPLY_TIMEOUT_TSC (1ULL << 35)
/* fsloop's: a request the backend lost must not stall the loop for long. */
#define LOOP_TIMEOUT_TSC (3000 * TSC_PER_MS)

/* Request slots: a chain of at most MAX_DESCS descriptors each. */
#define MAX_SLOTS	4
#define NO_HEAD		0xffff	/* every slot's chain is still in the device's hands */

enum { VQ_OK = 0, VQ_TIMEOUT = -1, VQ_BAD = -2 };

static int take_stale(u32 id);

/*
 * Makes the chain at descriptor `head` (already written, see fuse_call)
 * available, notifies and polls the used ring until the used entry for
 * `head` arrives.  Entries for retired heads (requests fsloop gave up on,
 * see retire_head) are consumed on the way.  *written = bytes the device
 * wrote.
 */
static int vq_kick_wait(uptr base, u32 index, struct queue *q, u16 head, u64 timeout,
                        u32 *written) {
  struct vring_mem *m = q->mem;
  m->avail.ring[q->avail_idx & (q->size - 1)] = head;
  q->avail_idx++;
  vq_publish(base, index, q);

  /* Polls a cached line; the TSC is read only every 1024 polls. */
  const volatile u16 *used_idx = &m->used.idx;
  u64 start = 0;
  u32 spins = 0;
  for (;;) {
    while (*used_idx == q->used_seen) {
      if (++spins & 1023) continue;
      u64 now = rdtsc();
      if (!start)
        start = now;
      else if (now - start > timeout)
        return VQ_TIMEOUT;
    }
    barrier();  /* the used entry after its index */
    const struct vring_used_elem *e = &m->used.ring[q->used_seen++ & (q->size - 1)];
    if (e->id == head) {
      *written = e->len;
      return VQ_OK;
    }
    if (!take_stale(e->id)) return VQ_BAD;
  }
}

/* ---- the fs device ------------------------------------------------------- */

/* struct virtio_fs_config */
#define FS_CONFIG_TAG		0
#define FS_TAG_LEN		36
#define FS_CONFIG_NUM_QUEUES	36

#define HIPRIO_QUEUE		0
#define REQUEST_QUEUE		1

enum { FS_NONE, FS_READY, FS_FAILED };

static struct {
  u32 state;
  uptr base;
  struct queue q[2];
  char tag[FS_TAG_LEN + 1];
  u32 num_request_queues;
  u64 unique;
  u32 max_write;     /* negotiated, capped at CHUNK */
  u32 got;           /* reply bytes after the out header, of the last call */
  u32 errors;        /* of the current test */
  u64 timeout;       /* per request, TSC cycles */
  u32 recover;       /* fsloop: a lost request retires its slot (else the device fails) */
  u16 head;          /* first descriptor of the current slot, or NO_HEAD */
  u16 nslots;        /* request queue size / MAX_DESCS, at most MAX_SLOTS */
  u32 stale;         /* bit i: slot i's chain is retired and still in the avail ring */
} fs = {0};

static void fs_error(const char *op) {
  line("fs error ");
  put_str(op);
  put_char(' ');
}

/* "fs error setup <what>"; marks the device failed and sets FAILED. */
static int setup_failed(uptr base, const char *what) {
  fs_error("setup");
  put_str(what);
  put_char('\n');
  virtio_fail(base);
  fs.state = FS_FAILED;
  return 0;
}

/* Tag (8-bit reads up to the first NUL) and num_request_queues. */
static void read_fs_config(uptr base) {
  uptr cfg = base + REG_CONFIG;
  for (u32 tries = 0; tries < 4; tries++) {
    u32 gen = mmio_read(base, REG_CONFIG_GENERATION);
    u32 n = 0;
    while (n < FS_TAG_LEN && (fs.tag[n] = (char)rd8(cfg + FS_CONFIG_TAG + n))) n++;
    fs.tag[n] = 0;
    fs.num_request_queues = rd32(cfg + FS_CONFIG_NUM_QUEUES);
    if (mmio_read(base, REG_CONFIG_GENERATION) == gen) return;
  }
}

/* Initialises the device (virtio 1.x, 3.1.1); 1 on success. */
static int setup_device(uptr base) {
  fs.base = base;
  u32 lo;
  const char *err = virtio_negotiate(base, 0, &lo);  /* only VIRTIO_F_VERSION_1 */
  if (err) return setup_failed(base, err);
  read_fs_config(base);
  /* Queue 0 is hiprio (set up, never used), queue 1 the first request queue. */
  for (u32 i = HIPRIO_QUEUE; i <= REQUEST_QUEUE; i++) {
    err = virtio_setup_queue(base, i, &fs.q[i], &rings[i], MAX_DESCS);
    if (err) return setup_failed(base, err);
  }
  fs.timeout = REPLY_TIMEOUT_TSC;
  fs.recover = 0;
  fs.head = 0;
  fs.stale = 0;
  fs.nslots = fs.q[REQUEST_QUEUE].size / MAX_DESCS;
  if (fs.nslots > MAX_SLOTS) fs.nslots = MAX_SLOTS;
  virtio_driver_ok(base);
  return 1;
}

/* ---- FUSE ---------------------------------------------------------------- */

#define FUSE_LOOKUP	1
#define FUSE_GETATTR	3
#define FUSE_OPEN	14
#define FUSE_READ	15
#define FUSE_WRITE	16
#define FUSE_RELEASE	18
#define FUSE_FSYNC	20
#define FUSE_INIT	26
#define FUSE_OPENDIR	27
#define FUSE_READDIR	28
#define FUSE_RELEASEDIR	29
#define FUSE_CREATE	35

#define FUSE_MAJOR	7
#define FUSE_MINOR	31	/* what the init_in below is sized for */
#define FUSE_ROOT_ID	1

#define FUSE_ATOMIC_O_TRUNC	(1u << 3)
#define FUSE_BIG_WRITES		(1u << 5)

/* open(2) flags and modes, x86-64 Linux values */
#define O_RDONLY	0
#define O_WRONLY	01
#define O_CREAT		0100
#define O_EXCL		0200
#define O_TRUNC		01000
#define O_DIRECTORY	0200000
#define S_IFREG		0100000

#define ENOENT		2

/* Reads go in chunks of this size; writes in chunks of min(this, max_write). */
#define CHUNK		(128 * 1024)
#define DIR_BUF		1024	/* READDIR size: small, so listings take several calls */

struct fuse_in_header {
  u32 len, opcode;
  u64 unique, nodeid;
  u32 uid, gid, pid;
  u16 total_extlen, padding;
};

struct fuse_out_header {
  u32 len;
  s32 error;
  u64 unique;
};

struct fuse_attr {
  u64 ino, size, blocks, atime, mtime, ctime;
  u32 atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};

struct fuse_entry_out {
  u64 nodeid, generation, entry_valid, attr_valid;
  u32 entry_valid_nsec, attr_valid_nsec;
  struct fuse_attr attr;
};

struct fuse_attr_out {
  u64 attr_valid;
  u32 attr_valid_nsec, dummy;
  struct fuse_attr attr;
};

struct fuse_init_in {  /* the 7.31 layout (flags2 and the rest came in 7.36) */
  u32 major, minor, max_readahead, flags;
};

struct fuse_init_out {
  u32 major, minor, max_readahead, flags;
  u16 max_background, congestion_threshold;
  u32 max_write, time_gran;
  u16 max_pages, map_alignment;
  u32 flags2, unused[7];
};

struct fuse_getattr_in {
  u32 getattr_flags, dummy;
  u64 fh;
};

struct fuse_open_in {
  u32 flags, open_flags;
};

struct fuse_create_in {
  u32 flags, mode, umask, open_flags;
};

struct fuse_open_out {
  u64 fh;
  u32 open_flags, padding;
};

struct fuse_release_in {
  u64 fh;
  u32 flags, release_flags;
  u64 lock_owner;
};

struct fuse_rw_in {  /* fuse_read_in and fuse_write_in share this layout */
  u64 fh, offset;
  u32 size, rw_flags;
  u64 lock_owner;
  u32 flags, padding;
};

struct fuse_write_out {
  u32 size, padding;
};

struct fuse_fsync_in {
  u64 fh;
  u32 fsync_flags, padding;
};

struct fuse_dirent {
  u64 ino, off;
  u32 namelen, type;
  /* name, then padding to 8 bytes */
};

_Static_assert(sizeof(struct fuse_in_header) == 40, "fuse_in_header");
_Static_assert(sizeof(struct fuse_attr) == 88, "fuse_attr");
_Static_assert(sizeof(struct fuse_entry_out) == 128, "fuse_entry_out");
_Static_assert(sizeof(struct fuse_attr_out) == 104, "fuse_attr_out");
_Static_assert(sizeof(struct fuse_init_out) == 64, "fuse_init_out");
_Static_assert(sizeof(struct fuse_rw_in) == 40, "fuse_read_in/fuse_write_in");
_Static_assert(sizeof(struct fuse_release_in) == 24, "fuse_release_in");

/* Request and reply buffers (.bss); the device reads and writes them. */
static struct fuse_in_header in_hdr;
static union {
  struct fuse_init_in init;
  struct fuse_getattr_in getattr;
  struct fuse_open_in open;
  struct fuse_create_in create;
  struct fuse_release_in release;
  struct fuse_rw_in rw;
  struct fuse_fsync_in fsync;
} in_arg;
static struct fuse_out_header out_hdr;
static union {
  struct fuse_init_out init;
  struct fuse_entry_out entry;
  struct fuse_attr_out attr;
  struct fuse_open_out open;
  struct {
    struct fuse_entry_out entry;
    struct fuse_open_out open;
  } create;
  struct fuse_write_out write;
} out_arg;
static u8 data_buf[CHUNK] __attribute__((aligned(4096)));

/* Results of fuse_call: 0, a positive errno, or one of these. */
#define E_TIMEOUT	(-1)
#define E_BAD_REPLY	(-2)
#define E_DEAD		(-3)	/* the device failed earlier (setup, INIT or a timeout) */

struct fuse_req {
  u32 opcode;
  u64 nodeid;
  u32 arg_len;                /* of in_arg */
  const char *name;           /* sent with its NUL after the argument, or 0 */
  const struct seg *wdata;    /* more device-readable data (WRITE) */
  u32 nwdata;
  u32 reply_len;              /* of out_arg: the fixed-size reply */
  uptr rdata;                 /* device-writable data after it (READ, READDIR) */
  u32 rdata_len;
};

static u32 str_len(const char *s) {
  u32 n = 0;
  while (s[n]) n++;
  return n;
}

/* Fills the next descriptor; next links were set at queue setup. */
static inline struct vring_desc *put_desc(struct vring_desc *d, uptr addr, u32 len, u16 flags) {
  d->addr = addr;
  d->len = len;
  d->flags = flags;
  return d + 1;
}

/*
 * Request slots for fsloop.  A request it gave up on (a timeout) may still
 * be taken from the avail ring later: a reconnected backend starts again
 * from the last used entry.  So its chain becomes a harmless GETATTR of
 * the root with buffers of its own (`junk`), its slot is not used again
 * until the used entry for it comes, and the next request takes a free
 * slot.  With every slot retired, fuse_call first waits for one.
 */
static struct {
  struct fuse_in_header in;
  struct fuse_getattr_in arg;
  struct fuse_out_header out;
  struct fuse_attr_out attr;
} junk;

static void retire_head(void) {
  u16 h = fs.head;
  junk.in = (struct fuse_in_header){sizeof(junk.in) + sizeof(junk.arg), FUSE_GETATTR,
                                    1ULL << 63, FUSE_ROOT_ID, 0, 0, 1, 0, 0};
  junk.arg = (struct fuse_getattr_in){0, 0, 0};
  struct vring_desc *d = rings[REQUEST_QUEUE].desc + h;
  d = put_desc(d, (uptr)&junk.in, sizeof(junk.in), DESC_F_NEXT);
  d = put_desc(d, (uptr)&junk.arg, sizeof(junk.arg), DESC_F_NEXT);
  d = put_desc(d, (uptr)&junk.out, sizeof(junk.out), DESC_F_NEXT | DESC_F_WRITE);
  put_desc(d, (uptr)&junk.attr, sizeof(junk.attr), DESC_F_WRITE);
  fs.stale |= 1u << (h / MAX_DESCS);
  fs.head = NO_HEAD;
  for (u32 i = 0; i < fs.nslots; i++) {
    if (!(fs.stale >> i & 1)) {
      fs.head = (u16)(i * MAX_DESCS);
      break;
    }
  }
}

/* A used entry for a retired slot frees it; 0 if `id` is no such head. */
static int take_stale(u32 id) {
  u32 slot = id / MAX_DESCS;
  if (id % MAX_DESCS || slot >= fs.nslots || !(fs.stale >> slot & 1)) return 0;
  fs.stale &= ~(1u << slot);
  if (fs.head == NO_HEAD) fs.head = (u16)id;
  return 1;
}

/* With every slot retired: consumes used entries until one is free again. */
static int wait_for_slot(void) {
  struct queue *q = &fs.q[REQUEST_QUEUE];
  u64 start = rdtsc();
  while (fs.head == NO_HEAD) {
    if (vq_used_idx(q) == q->used_seen) {
      if (rdtsc() - start > fs.timeout) return 0;
      continue;
    }
    barrier();  /* the used entry after its index */
    take_stale(q->mem->used.ring[q->used_seen++ & (q->size - 1)].id);
  }
  return 1;
}

/*
 * Sends the request whose chain is at descriptor fs.head under a new
 * unique and checks the reply header.  Returns 0 (fs.got = reply bytes after the out
 * header), a positive errno or E_*.
 */
static int fuse_send(void) {
  if (fs.state != FS_READY) return E_DEAD;
  u64 unique = ++fs.unique;
  in_hdr.unique = unique;
  u32 written = 0;
  int rc = vq_kick_wait(fs.base, REQUEST_QUEUE, &fs.q[REQUEST_QUEUE], fs.head, fs.timeout,
                        &written);
  if (rc == VQ_TIMEOUT || (rc == VQ_BAD && fs.recover)) {
    /* The reply may still come: never reuse the chain (fsloop) or the queue. */
    if (fs.recover)
      retire_head();
    else
      fs.state = FS_FAILED;
    return rc == VQ_TIMEOUT ? E_TIMEOUT : E_BAD_REPLY;
  }
  /* A stale out_hdr cannot pass: its unique is an earlier one. */
  if (rc != VQ_OK || written < sizeof(out_hdr)) return E_BAD_REPLY;
  if (out_hdr.unique != unique || out_hdr.len < sizeof(out_hdr) || out_hdr.len > written)
    return E_BAD_REPLY;
  if (out_hdr.error) return out_hdr.error < 0 ? -out_hdr.error : E_BAD_REPLY;
  fs.got = out_hdr.len - (u32)sizeof(out_hdr);
  return 0;
}

/*
 * Sends one request and waits for its reply.  The chain is written
 * straight into the request queue's descriptor table from fs.head: in_hdr,
 * in_arg, the name, write data (device-readable), then out_hdr, out_arg,
 * read data (device-writable).
 */
static int fuse_call(const struct fuse_req *r) {
  if (r->nwdata > MAX_DESCS - 6) return E_BAD_REPLY;  /* cannot happen: PAT_SEG, CHUNK */
  if (fs.state != FS_READY) return E_DEAD;
  if (fs.head == NO_HEAD && !wait_for_slot()) return E_TIMEOUT;
  struct vring_desc *d = rings[REQUEST_QUEUE].desc + fs.head;
  u32 len = sizeof(in_hdr);
  d = put_desc(d, (uptr)&in_hdr, sizeof(in_hdr), DESC_F_NEXT);
  if (r->arg_len) {
    d = put_desc(d, (uptr)&in_arg, r->arg_len, DESC_F_NEXT);
    len += r->arg_len;
  }
  if (r->name) {
    u32 name_len = str_len(r->name) + 1;
    d = put_desc(d, (uptr)r->name, name_len, DESC_F_NEXT);
    len += name_len;
  }
  for (u32 i = 0; i < r->nwdata; i++) {
    d = put_desc(d, r->wdata[i].addr, r->wdata[i].len, DESC_F_NEXT);
    len += r->wdata[i].len;
  }
  d = put_desc(d, (uptr)&out_hdr, sizeof(out_hdr), DESC_F_NEXT | DESC_F_WRITE);
  if (r->reply_len) d = put_desc(d, (uptr)&out_arg, r->reply_len, DESC_F_NEXT | DESC_F_WRITE);
  if (r->rdata_len) d = put_desc(d, r->rdata, r->rdata_len, DESC_F_NEXT | DESC_F_WRITE);
  d[-1].flags = DESC_F_WRITE;  /* the end of the chain */

  /* uid, gid, pid and the rest stay as fs_start set them. */
  in_hdr.len = len;
  in_hdr.opcode = r->opcode;
  in_hdr.nodeid = r->nodeid;
  return fuse_send();
}

/* A failed call's result: the errno in decimal, or what went wrong. */
static void put_rc(int rc) {
  if (rc == E_TIMEOUT)
    put_str("timeout");
  else if (rc == E_BAD_REPLY)
    put_str("bad-reply");
  else if (rc == E_DEAD)
    put_str("device-failed");
  else
    put_dec((u32)rc);
}

/* Prints the outcome of a failed call; `name` (LOOKUP) may be 0. */
static void report(const char *op, const char *name, int rc) {
  fs.errors++;
  if (rc == E_TIMEOUT) {
    line("fs timeout ");
    put_str(op);
    put_char('\n');
    return;
  }
  fs_error(op);
  if (name) {
    put_str(name);
    put_char(' ');
  }
  put_rc(rc);
  put_char('\n');
}

/* Checks a successful call's reply has at least `need_len` bytes. */
static int need(int rc, u32 need_len) {
  return rc == 0 && fs.got < need_len ? E_BAD_REPLY : rc;
}

static int fuse_init(void) {
  in_arg.init = (struct fuse_init_in){FUSE_MAJOR, FUSE_MINOR, CHUNK,
                                      FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES};
  struct fuse_req r = {.opcode = FUSE_INIT, .arg_len = sizeof(in_arg.init),
                       .reply_len = sizeof(out_arg.init)};
  /* A 7.x server answers at least up to max_write (the 7.5+ layout). */
  int rc = need(fuse_call(&r), 24);
  if (rc) return rc;
  if (out_arg.init.major != FUSE_MAJOR) return E_BAD_REPLY;
  if (!out_arg.init.max_write) return E_BAD_REPLY;
  fs.max_write = out_arg.init.max_write < CHUNK ? out_arg.init.max_write : CHUNK;
  return 0;
}

/* LOOKUP name in the root directory; the entry is in out_arg.entry. */
static int fuse_lookup(const char *name, u64 *nodeid) {
  struct fuse_req r = {.opcode = FUSE_LOOKUP, .nodeid = FUSE_ROOT_ID, .name = name,
                       .reply_len = sizeof(struct fuse_entry_out)};
  int rc = need(fuse_call(&r), sizeof(struct fuse_entry_out));
  if (rc == 0 && out_arg.entry.nodeid == 0) rc = ENOENT;  /* a negative entry */
  if (rc == 0) *nodeid = out_arg.entry.nodeid;
  return rc;
}

static int fuse_getattr_root(void) {
  static const struct fuse_req r = {.opcode = FUSE_GETATTR, .nodeid = FUSE_ROOT_ID,
                                    .arg_len = sizeof(in_arg.getattr),
                                    .reply_len = sizeof(out_arg.attr)};
  in_arg.getattr = (struct fuse_getattr_in){0, 0, 0};
  return need(fuse_call(&r), sizeof(out_arg.attr));
}

/* The previous GETATTR again: its chain and argument are still in place. */
static int fuse_getattr_again(void) { return need(fuse_send(), sizeof(out_arg.attr)); }

/* OPEN or OPENDIR. */
static int fuse_open(u32 opcode, u64 nodeid, u32 flags, u64 *fh) {
  in_arg.open = (struct fuse_open_in){flags, 0};
  struct fuse_req r = {.opcode = opcode, .nodeid = nodeid, .arg_len = sizeof(in_arg.open),
                       .reply_len = sizeof(out_arg.open)};
  int rc = need(fuse_call(&r), sizeof(out_arg.open));
  if (rc == 0) *fh = out_arg.open.fh;
  return rc;
}

static int fuse_create(const char *name, u32 flags, u32 mode, u64 *nodeid, u64 *fh) {
  in_arg.create = (struct fuse_create_in){flags, mode, 022, 0};
  struct fuse_req r = {.opcode = FUSE_CREATE, .nodeid = FUSE_ROOT_ID,
                       .arg_len = sizeof(in_arg.create), .name = name,
                       .reply_len = sizeof(out_arg.create)};
  int rc = need(fuse_call(&r), sizeof(out_arg.create));
  if (rc == 0) {
    *nodeid = out_arg.create.entry.nodeid;
    *fh = out_arg.create.open.fh;
  }
  return rc;
}

/* RELEASE or RELEASEDIR. */
static int fuse_release(u32 opcode, u64 nodeid, u64 fh, u32 flags) {
  in_arg.release = (struct fuse_release_in){fh, flags, 0, 0};
  struct fuse_req r = {.opcode = opcode, .nodeid = nodeid, .arg_len = sizeof(in_arg.release)};
  return fuse_call(&r);
}

static int fuse_fsync(u64 nodeid, u64 fh) {
  in_arg.fsync = (struct fuse_fsync_in){fh, 0, 0};
  struct fuse_req r = {.opcode = FUSE_FSYNC, .nodeid = nodeid, .arg_len = sizeof(in_arg.fsync)};
  return fuse_call(&r);
}

/* READ or READDIR of up to `size` bytes into `buf`; *got = bytes returned. */
static int fuse_read(u32 opcode, u64 nodeid, u64 fh, u64 offset, uptr buf, u32 size, u32 *got) {
  in_arg.rw = (struct fuse_rw_in){fh, offset, size, 0, 0, 0, 0};
  struct fuse_req r = {.opcode = opcode, .nodeid = nodeid, .arg_len = sizeof(in_arg.rw),
                       .rdata = buf, .rdata_len = size};
  int rc = fuse_call(&r);
  if (rc == 0) {
    if (fs.got > size) return E_BAD_REPLY;
    *got = fs.got;
  }
  return rc;
}

static int fuse_write(u64 nodeid, u64 fh, u64 offset, const struct seg *data, u32 ndata,
                      u32 size, u32 *done) {
  in_arg.rw = (struct fuse_rw_in){fh, offset, size, 0, 0, O_WRONLY, 0};
  struct fuse_req r = {.opcode = FUSE_WRITE, .nodeid = nodeid, .arg_len = sizeof(in_arg.rw),
                       .wdata = data, .nwdata = ndata, .reply_len = sizeof(out_arg.write)};
  int rc = need(fuse_call(&r), sizeof(out_arg.write));
  if (rc == 0) {
    if (out_arg.write.size > size) return E_BAD_REPLY;
    *done = out_arg.write.size;
  }
  return rc;
}

/*
 * Finds the first fs device and sets it up (no FUSE session yet).
 * `verbose`: print the tag line.  Returns 1 when the device is usable;
 * prints why not otherwise.
 */
static int fs_device(const char *cmdline, int verbose, const char *test) {
  if (fs.state == FS_FAILED) {
    line(test);
    put_str(" device-failed\n");
    return 0;
  }
  uptr base = virtio_find(cmdline, VIRTIO_ID_FS);
  if (!base) {
    line(test);
    put_str(" no-device\n");
    return 0;
  }
  if (!setup_device(base)) return 0;
  fs.state = FS_READY;
  in_hdr.uid = 0;  /* root; the parts of the header fuse_call leaves alone */
  in_hdr.gid = 0;
  in_hdr.pid = 1;
  in_hdr.total_extlen = 0;
  in_hdr.padding = 0;
  out_hdr.unique = 0;
  if (verbose) {
    line("fs tag=");
    put_str(fs.tag);
    put_str(" queues=");
    put_dec(fs.num_request_queues);
    put_char('\n');
  }
  return 1;
}

/*
 * Finds the first fs device and brings up a FUSE session, once per boot
 * (later tests reuse it).  `verbose`: print the tag and INIT lines.
 * Returns 1 when the session is usable; prints why not otherwise.
 */
static int fs_start(const char *cmdline, int verbose, const char *test) {
  if (fs.state == FS_READY) return 1;
  if (!fs_device(cmdline, verbose, test)) return 0;
  int rc = fuse_init();
  if (rc) {
    report("init", 0, rc);
    fs.state = FS_FAILED;
    return 0;
  }
  if (verbose) {
    line("fs init major=");
    put_dec(out_arg.init.major);
    put_str(" minor=");
    put_dec(out_arg.init.minor);
    put_char('\n');
  }
  return 1;
}

/* LOOKUP + OPEN for reading; prints the error, returns 0 on failure. */
static int open_read(const char *name, u64 *nodeid, u64 *fh) {
  int rc = fuse_lookup(name, nodeid);
  if (rc) {
    report("lookup", name, rc);
    return 0;
  }
  rc = fuse_open(FUSE_OPEN, *nodeid, O_RDONLY, fh);
  if (rc) {
    report("open", 0, rc);
    return 0;
  }
  return 1;
}

/*
 * Reads a whole file in CHUNK pieces until a short read; *size, *sum (if
 * sum is not 0) and the first `keep` bytes into `head`.  0 on failure.
 */
static int read_all(u64 nodeid, u64 fh, u64 *size, u32 *sum, u8 *head, u32 keep) {
  u64 off = 0;
  u32 s = 0;
  for (;;) {
    u32 got = 0;
    int rc = fuse_read(FUSE_READ, nodeid, fh, off, (uptr)data_buf, CHUNK, &got);
    if (rc) {
      report("read", 0, rc);
      return 0;
    }
    if (off < keep) {
      for (u32 i = 0; i < got && off + i < keep; i++) head[off + i] = data_buf[i];
    }
    if (sum) s += byte_sum((uptr)data_buf, got);
    off += got;
    if (got < CHUNK) break;
  }
  *size = off;
  if (sum) *sum = s;
  return 1;
}

static void close_file(u32 opcode, u64 nodeid, u64 fh, u32 flags) {
  int rc = fuse_release(opcode, nodeid, fh, flags);
  if (rc) report(opcode == FUSE_RELEASE ? "release" : "releasedir", 0, rc);
}

/* Escapes \n, \\ and other non-printing bytes (\xNN). */
static void put_escaped(const u8 *s, u32 n) {
  for (u32 i = 0; i < n; i++) {
    u8 c = s[i];
    if (c == '\n') {
      put_str("\\n");
    } else if (c == '\\') {
      put_str("\\\\");
    } else if (c < 0x20 || c >= 0x7f) {
      put_str("\\x");
      put_char("0123456789abcdef"[c >> 4]);
      put_char("0123456789abcdef"[c & 15]);
    } else {
      put_char((char)c);
    }
  }
}

#define TEXT_MAX 64

static void fs_read_file(const char *name, int text) {
  u64 nodeid, fh, size;
  u32 sum;
  u8 head[TEXT_MAX];
  if (!open_read(name, &nodeid, &fh)) return;
  int ok = read_all(nodeid, fh, &size, &sum, head, text ? TEXT_MAX : 0);
  close_file(FUSE_RELEASE, nodeid, fh, O_RDONLY);
  if (!ok) return;
  line("fs read ");
  put_str(name);
  put_str(" size=");
  put_dec(size);
  put_str(" sum=0x");
  put_hex8(sum);
  if (text) {
    put_str(" text=");
    put_escaped(head, size < TEXT_MAX ? (u32)size : TEXT_MAX);
  }
  put_char('\n');
}

/*
 * What a file is written from: `len` bytes at `addr`, or (pattern) byte i
 * of the file is pat[i % 256], with pat holding PAT_SEG + 256 bytes of the
 * repeating pattern so that any run of up to PAT_SEG file bytes is one
 * segment starting at pat + (offset % 256).
 */
#define PAT_SEG		(16 * 1024)
static u8 pat[PAT_SEG + 256] __attribute__((aligned(64)));

struct source {
  uptr addr;   /* 0: the pattern */
};

/* Segments for file bytes [off, off + len); returns their count. */
static u32 source_segs(const struct source *src, u64 off, u32 len, struct seg *segs) {
  if (src->addr) {
    segs[0] = (struct seg){src->addr + (uptr)off, len};
    return 1;
  }
  u32 n = 0;
  while (len) {
    u32 l = len < PAT_SEG ? len : PAT_SEG;
    segs[n++] = (struct seg){(uptr)pat + (uptr)(off & 255), l};
    off += l;
    len -= l;
  }
  return n;
}

/* pat[i] = (i * 7 + 3) & 0xff: 256 bytes one by one, the rest 8 at a time. */
static void fill_pattern(void) {
  typedef u64 __attribute__((may_alias)) word;
  for (u32 i = 0; i < 256; i++) pat[i] = (u8)(i * 7 + 3);
  word *w = (word *)pat;
  for (u32 i = 256 / 8; i < sizeof(pat) / 8; i++) w[i] = w[i - 256 / 8];
}

/*
 * Writes `size` bytes from `src` to `name` in the root directory: LOOKUP,
 * then CREATE (new) or OPEN with O_TRUNC (existing; QEMU 7.2's virtiofsd
 * aborts on CREATE of an existing name), WRITE in max_write chunks, FSYNC,
 * RELEASE.  Returns 1 when all of it succeeded.
 */
static int fs_write_file(const char *name, const struct source *src, u64 size) {
  u64 nodeid, fh;
  int rc = fuse_lookup(name, &nodeid);
  if (rc == 0) {
    rc = fuse_open(FUSE_OPEN, nodeid, O_WRONLY | O_TRUNC, &fh);
    if (rc) {
      report("open", 0, rc);
      return 0;
    }
  } else if (rc == ENOENT) {
    rc = fuse_create(name, O_WRONLY | O_CREAT | O_EXCL, S_IFREG | 0644, &nodeid, &fh);
    if (rc) {
      report("create", name, rc);
      return 0;
    }
  } else {
    report("lookup", name, rc);
    return 0;
  }
  int ok = 1;
  u64 off = 0;
  while (off < size) {
    struct seg segs[MAX_DESCS];
    u32 len = size - off < fs.max_write ? (u32)(size - off) : fs.max_write;
    u32 n = source_segs(src, off, len, segs), done = 0;
    rc = fuse_write(nodeid, fh, off, segs, n, len, &done);
    if (rc == 0 && done == 0) rc = E_BAD_REPLY;  /* no progress */
    if (rc) {
      report("write", 0, rc);
      ok = 0;
      break;
    }
    off += done;
  }
  if (ok) {
    rc = fuse_fsync(nodeid, fh);
    if (rc) {
      report("fsync", 0, rc);
      ok = 0;
    }
  }
  rc = fuse_release(FUSE_RELEASE, nodeid, fh, O_WRONLY);
  if (rc) {
    report("release", 0, rc);
    ok = 0;
  }
  return ok;
}

#define BIG_OUT_SIZE	(1024 * 1024)
/* Any 256 consecutive pattern bytes are 0..255 in some order (7 is odd). */
#define PATTERN_PERIOD_SUM 32640u

static void fs_write_files(void) {
  static const char kText[] = "written by ember-guest\n";
  struct source text = {(uptr)kText};
  if (fs_write_file("from-guest.txt", &text, sizeof(kText) - 1)) {
    line("fs wrote from-guest.txt size=");
    put_dec(sizeof(kText) - 1);
    put_char('\n');
  }
  if (fs.state != FS_READY) return;

  fill_pattern();
  struct source pattern = {0};
  if (fs_write_file("big-out.bin", &pattern, BIG_OUT_SIZE)) {
    u32 sum = PATTERN_PERIOD_SUM * (BIG_OUT_SIZE / 256) + byte_sum((uptr)pat, BIG_OUT_SIZE % 256);
    line("fs wrote big-out.bin size=");
    put_dec(BIG_OUT_SIZE);
    put_str(" sum=0x");
    put_hex8(sum);
    put_char('\n');
  }
}

/* Lists a directory of the root: READDIR from offset 0 until an empty reply. */
static void fs_list_dir(const char *name) {
  u64 nodeid, fh;
  int rc = fuse_lookup(name, &nodeid);
  if (rc) {
    report("lookup", name, rc);
    return;
  }
  rc = fuse_open(FUSE_OPENDIR, nodeid, O_RDONLY | O_DIRECTORY, &fh);
  if (rc) {
    report("opendir", 0, rc);
    return;
  }
  u64 off = 0;
  u32 entries = 0, namesum = 0, ok = 0;
  for (u32 calls = 0; calls < 100000; calls++) {
    u32 got = 0;
    rc = fuse_read(FUSE_READDIR, nodeid, fh, off, (uptr)data_buf, DIR_BUF, &got);
    if (rc) {
      report("readdir", 0, rc);
      break;
    }
    if (got == 0) {
      ok = 1;
      break;
    }
    u32 p = 0, parsed = 0;
    while (p + sizeof(struct fuse_dirent) <= got) {
      uptr d = (uptr)data_buf + p;  /* struct fuse_dirent */
      const u8 *nm = data_buf + p + sizeof(struct fuse_dirent);
      u32 nl = rd32(d + 16);
      if (nl == 0 || nl > got - p - sizeof(struct fuse_dirent)) break;
      if (!(nm[0] == '.' && (nl == 1 || (nl == 2 && nm[1] == '.')))) {
        entries++;
        for (u32 i = 0; i < nl; i++) namesum += nm[i];
      }
      off = rd64(d + 8);
      parsed++;
      p += (sizeof(struct fuse_dirent) + nl + 7) & ~7u;
    }
    if (!parsed) {
      report("readdir", 0, E_BAD_REPLY);
      break;
    }
  }
  close_file(FUSE_RELEASEDIR, nodeid, fh, O_RDONLY | O_DIRECTORY);
  if (!ok) return;
  line("fs dir ");
  put_str(name);
  put_str(" entries=");
  put_dec(entries);
  put_str(" namesum=0x");
  put_hex8(namesum);
  put_char('\n');
}

void test_fs(const char *cmdline) {
  fs.errors = 0;
  if (!fs_start(cmdline, 1, "fs")) return;
  fs_read_file("hello.txt", 1);
  if (fs.state == FS_READY) fs_read_file("big.bin", 0);
  if (fs.state == FS_READY) fs_write_files();
  if (fs.state == FS_READY) fs_list_dir("many");
  if (fs.errors == 0 && fs.state == FS_READY) {
    line("fs ok\n");
  } else {
    line("fs failed errors=");
    put_dec(fs.errors);
    put_char('\n');
  }
}

#define BENCH_GETATTRS 2000

void test_fsbench(const char *cmdline) {
  fs.errors = 0;
  if (!fs_start(cmdline, 0, "fsbench")) return;
  /* One full request, then the same chain re-sent: the guest's share of a
     round trip is a few dozen instructions. */
  u64 start = rdtsc();
  int rc = fuse_getattr_root();
  for (u32 i = 1; i < BENCH_GETATTRS && !rc; i++) rc = fuse_getattr_again();
  u64 cycles = rdtsc() - start;
  if (rc) {
    report("getattr", 0, rc);
    return;
  }
  line("fsbench getattr n=");
  put_dec(BENCH_GETATTRS);
  put_str(" cycles=");
  put_dec(cycles);
  put_char('\n');

  u64 nodeid, fh, size;
  if (!open_read("bench.bin", &nodeid, &fh)) return;
  start = rdtsc();
  int ok = read_all(nodeid, fh, &size, 0, 0, 0);
  cycles = rdtsc() - start;
  close_file(FUSE_RELEASE, nodeid, fh, O_RDONLY);
  if (!ok) return;
  line("fsbench read bytes=");
  put_dec(size);
  put_str(" cycles=");
  put_dec(cycles);
  put_char('\n');
}

/* ---- fsloop ---------------------------------------------------------------- */

#define LOOP_FILE_PERIOD	(20 * TSC_PER_MS)
#define LOOP_CAD_POLL		(TSC_PER_MS / 2)	/* i8042 poll interval */

/* Appends v in decimal at p; returns the end. */
static char *fmt_dec(char *p, u64 v) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = buf[--n];
  return p;
}

static char *fmt_str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

/*
 * Writes "file <i>\n" to loop-<i>.txt: LOOKUP, CREATE (O_EXCL) if missing
 * or else OPEN with O_TRUNC, WRITE, FSYNC, RELEASE.  Returns 0, or the
 * failed call's result with *op naming it.
 */
static int loop_write_file(u64 i, const char **op) {
  static char name[32], text[32];
  *fmt_str(fmt_dec(fmt_str(name, "loop-"), i), ".txt") = 0;
  char *end = fmt_dec(fmt_str(text, "file "), i);
  *end++ = '\n';
  u32 len = (u32)(end - text);
  u64 nodeid, fh;
  *op = "lookup";
  int rc = fuse_lookup(name, &nodeid);
  if (rc == 0) {
    *op = "open";
    rc = fuse_open(FUSE_OPEN, nodeid, O_WRONLY | O_TRUNC, &fh);
  } else if (rc == ENOENT) {
    *op = "create";
    rc = fuse_create(name, O_WRONLY | O_CREAT | O_EXCL, S_IFREG | 0644, &nodeid, &fh);
  }
  if (rc) return rc;
  struct seg seg = {(uptr)text, len};
  u32 done = 0;
  *op = "write";
  rc = fuse_write(nodeid, fh, 0, &seg, 1, len, &done);
  if (rc == 0 && done != len) rc = E_BAD_REPLY;
  if (rc) return rc;
  *op = "fsync";
  rc = fuse_fsync(nodeid, fh);
  if (rc) return rc;
  *op = "release";
  return fuse_release(FUSE_RELEASE, nodeid, fh, O_WRONLY);
}

/* Waits until `until`, polling the i8042; 1 as soon as Ctrl-Alt-Del came. */
static int loop_wait(u64 until, u32 *cad) {
  for (;;) {
    if (cad_poll(cad)) return 1;
    u64 now = rdtsc();
    if ((long long)(now - until) >= 0) return 0;
    u64 stop = now + LOOP_CAD_POLL;
    if ((long long)(stop - until) > 0) stop = until;
    while ((long long)(rdtsc() - stop) < 0) __asm__ volatile("pause");
  }
}

/*
 * For backend reconnect tests: writes and syncs loop-0.txt, loop-1.txt,
 * ... one every LOOP_FILE_PERIOD until the i8042 delivers Ctrl-Alt-Del.
 * A failed request (an error reply, e.g. EIO from a restarted virtiofsd
 * that has seen no INIT, or no reply within LOOP_TIMEOUT_TSC) starts a
 * new FUSE session (INIT) and the same file again from its LOOKUP.
 */
void test_fsloop(const char *cmdline) {
  int session = fs.state == FS_READY;  /* an earlier test's INIT */
  if (!session && !fs_device(cmdline, 0, "fsloop")) return;
  fs.recover = 1;
  fs.timeout = LOOP_TIMEOUT_TSC;
  u64 files = 0, reinits = 0;
  u32 cad = 0;
  u64 next = rdtsc();
  while (!loop_wait(next, &cad)) {
    next = rdtsc() + LOOP_FILE_PERIOD;
    const char *op = "init";
    int rc = session ? 0 : fuse_init();
    if (rc == 0) {
      session = 1;
      rc = loop_write_file(files, &op);
    }
    if (rc == 0) {
      line("fsloop synced loop-");
      put_dec(files);
      put_str(".txt\n");
      files++;
      continue;
    }
    line("fsloop reinit after ");
    put_str(op);
    put_char(' ');
    put_rc(rc);
    put_char('\n');
    reinits++;
    session = 0;
    if (fs.state != FS_READY) break;  /* cannot happen: fs.recover */
  }
  line("fsloop files=");
  put_dec(files);
  put_str(" reinits=");
  put_dec(reinits);
  put_char('\n');
  line(files && fs.state == FS_READY ? "fsloop ok\n" : "fsloop failed\n");
}
