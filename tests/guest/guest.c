/*
 * ember test guest: a freestanding x86-64 program that reports what the VMM
 * handed it on COM1.  See README.md for the contract and the output lines.
 *
 * Integer instructions, port I/O and MMIO only: no SSE, no exceptions, no
 * interrupts.  The default path (no tests requested) prints two lines and
 * exits; keep it that way, it is timed by the boot benchmark.
 */

#include "guest.h"
#include "lib.h"

/* ---- hardware access -------------------------------------------------- */

#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)
#define LSR_THRE	0x20
#define DEBUG_EXIT_PORT	0xf4	/* QEMU isa-debug-exit */
#define I8042_DATA_PORT	0x60
#define I8042_CMD_PORT	0x64	/* write: command; read: status */
#define I8042_STATUS_OBF 0x01	/* output buffer full: a byte waits at 0x60 */
#define I8042_RESET	0xfe

#define BOOT_TIMER	0xc0000000UL
#define BOOT_TIMER_MAGIC 123

#define LAPIC		0xfee00000UL
#define LAPIC_ICR_LO	0x300
#define LAPIC_ICR_HI	0x310
#define ICR_INIT	0x4500	/* INIT, level assert */
#define ICR_STARTUP	0x4600	/* STARTUP | vector */

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline void lapic_write(u32 reg, u32 v) {
  *(volatile u32 *)(LAPIC + reg) = v;
}

/* ---- output ------------------------------------------------------------- */

void put_char(char c) {
  while (!(inb(COM1_LSR) & LSR_THRE)) {
  }
  outb(COM1, (u8)c);
}

void put_str(const char *s) {
  while (*s) put_char(*s++);
}

void put_n(const char *s, uptr n) {
  while (n--) put_char(*s++);
}

static const char kHexDigits[] = "0123456789abcdef";

/* "0x" is part of the caller's format; no leading zeros. */
void put_hex(u64 v) {
  char buf[16];
  int n = 0;
  do {
    buf[n++] = kHexDigits[v & 15];
    v >>= 4;
  } while (v);
  while (n) put_char(buf[--n]);
}

void put_hex8(u32 v) {
  for (int shift = 28; shift >= 0; shift -= 4) put_char(kHexDigits[(v >> shift) & 15]);
}

void put_dec(u64 v) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put_char(buf[--n]);
}

/* Starts a line: "ember-guest: " then s. */
void line(const char *s) {
  put_str("ember-guest: ");
  put_str(s);
}

/* ---- boot information ------------------------------------------------ */

/* struct hvm_start_info (PVH) */
#define PVH_MAGIC		0x336ec578
#define SI_MAGIC		0
#define SI_VERSION		4
#define SI_NR_MODULES		12
#define SI_MODLIST_PADDR	16
#define SI_CMDLINE_PADDR	24
#define SI_RSDP_PADDR		32
#define SI_MEMMAP_PADDR		40
#define SI_MEMMAP_ENTRIES	48
#define PVH_MEMMAP_ENTRY_SIZE	24	/* {u64 addr, u64 size, u32 type, u32 reserved} */

/* struct boot_params ("zero page") */
#define BP_ACPI_RSDP_ADDR	0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_RAMDISK_IMAGE	0x218
#define BP_RAMDISK_SIZE		0x21c
#define BP_CMD_LINE_PTR		0x228
#define BP_E820_TABLE		0x2d0
#define BP_E820_ENTRY_SIZE	20	/* packed {u64 addr, u64 size, u32 type} */
#define BP_E820_MAX		128	/* room in the zero page */

/* The guest's page tables map 0-4 GiB only. */
#define MAPPED_END		0x100000000ULL

struct boot_info {
  uptr e820;            /* first entry; addr, size, type at 0, 8, 16 */
  u32 e820_entries;
  u32 e820_stride;
  uptr initrd;
  u64 initrd_size;
  u64 rsdp;             /* where the VMM says the ACPI RSDP is (0: not said) */
};

static void from_start_info(uptr si, struct boot_info *bi) {
  if (rd32(si + SI_VERSION) >= 1) {  /* memmap fields exist from version 1 */
    bi->e820 = (uptr)rd64(si + SI_MEMMAP_PADDR);
    bi->e820_entries = bi->e820 ? rd32(si + SI_MEMMAP_ENTRIES) : 0;
  }
  bi->e820_stride = PVH_MEMMAP_ENTRY_SIZE;
  bi->rsdp = rd64(si + SI_RSDP_PADDR);
  uptr modlist = (uptr)rd64(si + SI_MODLIST_PADDR);
  if (rd32(si + SI_NR_MODULES) && modlist) {
    bi->initrd = (uptr)rd64(modlist);
    bi->initrd_size = rd64(modlist + 8);
  }
}

static void from_boot_params(uptr bp, struct boot_info *bi) {
  bi->e820 = bp + BP_E820_TABLE;
  bi->e820_entries = rd8(bp + BP_E820_ENTRIES);
  if (bi->e820_entries > BP_E820_MAX) bi->e820_entries = BP_E820_MAX;
  bi->e820_stride = BP_E820_ENTRY_SIZE;
  bi->rsdp = rd64(bp + BP_ACPI_RSDP_ADDR);
  bi->initrd = rd32(bp + BP_RAMDISK_IMAGE) | (u64)rd32(bp + BP_EXT_RAMDISK_IMAGE) << 32;
  bi->initrd_size = rd32(bp + BP_RAMDISK_SIZE) | (u64)rd32(bp + BP_EXT_RAMDISK_SIZE) << 32;
}

/* ---- command line ------------------------------------------------------ */

enum {
  T_CMDLINE = 1 << 0,
  T_E820 = 1 << 1,
  T_INITRD = 1 << 2,
  T_CPUID = 1 << 3,
  T_MPTABLE = 1 << 4,
  T_SMP = 1 << 5,
  T_ACPI = 1 << 6,
  T_TIMER = 1 << 7,
  T_TICKS = 1 << 8,
  T_VIRTIO = 1 << 9,
  T_FS = 1 << 10,
  T_FSBENCH = 1 << 11,
  T_NET = 1 << 12,
  T_NETPEER = 1 << 13,
  T_NETLOOP = 1 << 14,
  T_NETBENCH = 1 << 15,
  T_FSLOOP = 1 << 16,
  T_CTRLALTDEL = 1 << 17,
  T_POWEROFF = 1 << 18,
  T_FLOOD = 1 << 19,
  T_BLK = 1 << 20,
  T_BLKBAD = 1 << 21,
  T_BLKSWAP = 1 << 22,
  T_BLKLOOP = 1 << 23,
  T_BLKRATE = 1 << 24,
  T_BLKBENCH = 1 << 25,
  T_NETTAP = 1 << 26,
  T_NETTAPBENCH = 1 << 27,
  T_VSOCK = 1 << 28,
  T_RNG = 1 << 29,
  T_MMDS = 1 << 30,
  T_HOSTILE = 1u << 31,
};

/* Bit i of the mask is kTestNames[i]; run_tests() gives the run order. */
static const char *const kTestNames[] = {"cmdline", "e820",    "initrd",  "cpuid",
                                         "mptable", "smp",     "acpi",    "timer",
                                         "ticks",   "virtio",  "fs",      "fsbench",
                                         "net",     "netpeer", "netloop", "netbench",
                                         "fsloop",  "ctrlaltdel", "poweroff", "flood",
                                         "blk",     "blkbad",  "blkswap", "blkloop",
                                         "blkrate", "blkbench", "nettap",
                                         "nettapbench", "vsock", "rng", "mmds",
                                         "hostile"};
#define NUM_TESTS (sizeof(kTestNames) / sizeof(kTestNames[0]))

static int is_sep(char c) { return (u8)c <= ' '; }  /* NUL, space, tab, newline */

static int name_is(const char *s, uptr n, const char *name) {
  while (n && *name == *s) n--, s++, name++;
  return n == 0 && *name == 0;
}

/* Parses "a,b,c" up to the end of the token; returns the test mask. */
static u32 parse_list(const char *p) {
  u32 mask = 0;
  while (!is_sep(*p)) {
    const char *name = p;
    while (!is_sep(*p) && *p != ',') p++;
    uptr n = (uptr)(p - name);
    if (n) {
      u32 i = 0;
      while (i < NUM_TESTS && !name_is(name, n, kTestNames[i])) i++;
      if (i < NUM_TESTS) {
        mask |= 1u << i;
      } else {
        line("unknown test ");
        put_n(name, n);
        put_char('\n');
      }
    }
    if (*p == ',') p++;
  }
  return mask;
}

/* Looks at every "ember.tests=" token; ignores the rest. */
static u32 parse_cmdline(const char *p) {
  static const char kKey[] = "ember.tests=";
  u32 mask = 0;
  for (;;) {
    while (*p && is_sep(*p)) p++;
    if (!*p) return mask;
    const char *k = kKey;
    while (*k && *p == *k) p++, k++;
    if (!*k) mask |= parse_list(p);
    while (!is_sep(*p)) p++;
  }
}

/* ---- tests ------------------------------------------------------------- */

static void test_e820(const struct boot_info *bi) {
  u64 ram = 0;
  uptr e = bi->e820;
  for (u32 i = 0; i < bi->e820_entries; i++, e += bi->e820_stride) {
    u64 addr = rd64(e), size = rd64(e + 8);
    u32 type = rd32(e + 16);
    line("e820 addr=0x");
    put_hex(addr);
    put_str(" size=0x");
    put_hex(size);
    put_str(" type=");
    put_dec(type);
    put_char('\n');
    if (type == 1) ram += size;
  }
  line("e820 entries=");
  put_dec(bi->e820_entries);
  put_str(" ram_kib=");
  put_dec(ram / 1024);
  put_char('\n');
}

/*
 * 32-bit wrapping sum of all bytes.  Eight bytes per step: even and odd
 * bytes go to two sets of four 16-bit lanes, folded every 256 words,
 * before a lane could overflow (256 * 255 < 65536).
 */
static u32 fold_lanes(u64 acc) {
  acc = (acc & 0x0000ffff0000ffffULL) + ((acc >> 16) & 0x0000ffff0000ffffULL);
  return (u32)acc + (u32)(acc >> 32);
}

u32 byte_sum(uptr p, u64 n) {
  const u64 kMask = 0x00ff00ff00ff00ffULL;
  u32 sum = 0;
  while (n >= 8) {
    u64 words = n / 8;
    if (words > 256) words = 256;
    n -= words * 8;
    u64 even = 0, odd = 0;
    const u64 *w = (const u64 *)p;
#pragma GCC unroll 4
    for (u64 i = 0; i < words; i++) {
      u64 v = w[i];
      even += v & kMask;
      odd += (v >> 8) & kMask;
    }
    p += words * 8;
    sum += fold_lanes(even) + fold_lanes(odd);
  }
  while (n--) sum += rd8(p++);
  return sum;
}

static void test_initrd(const struct boot_info *bi) {
  if (!bi->initrd || !bi->initrd_size) {
    line("initrd none\n");
    return;
  }
  if (bi->initrd >= MAPPED_END || bi->initrd_size > MAPPED_END - bi->initrd) {
    line("initrd unmapped addr=0x");  /* above 4 GiB: reading it would fault */
    put_hex(bi->initrd);
    put_char('\n');
    return;
  }
  line("initrd size=");
  put_dec(bi->initrd_size);
  put_str(" sum=0x");
  put_hex8(byte_sum(bi->initrd, bi->initrd_size));
  put_char('\n');
}

static u32 bsp_apic_id(void) {
  u32 a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  return b >> 24;
}

static void test_cpuid(void) {
  u32 a, b, c, d;
  cpuid(1, &a, &b, &c, &d);
  u32 hypervisor = c >> 31;
  u32 apic_id = b >> 24;
  u32 sig[3] = {0, 0, 0};
  if (hypervisor) cpuid(0x40000000, &a, &sig[0], &sig[1], &sig[2]);
  line("cpuid hypervisor=");
  put_dec(hypervisor);
  put_str(" apic_id=");
  put_dec(apic_id);
  put_str(" hv=");
  const char *s = (const char *)sig;
  uptr n = 12;
  while (n && !s[n - 1]) n--;
  put_n(s, n);
  put_char('\n');
}

/* ---- MP table ---------------------------------------------------------- */

#define MP_FLOAT_SIG	0x5f504d5f	/* "_MP_" */
#define MP_CONFIG_SIG	0x504d4350	/* "PCMP" */
#define MP_MAX_CPUS	256

enum { MP_OK, MP_MISSING, MP_BAD_CHECKSUM };

struct mp_info {
  u32 status;
  u32 cpus;          /* enabled processor entries */
  u32 ioapic;        /* address of the first I/O APIC entry, or 0 */
  u32 bp_id;         /* APIC ID of the entry flagged as boot processor */
  u8 ids[MP_MAX_CPUS];  /* APIC IDs of the enabled processors, sorted */
};

static struct mp_info mp = {0};  /* static: too big for a comfortable stack frame */

static u8 checksum(uptr p, u32 n) {
  u8 sum = 0;
  while (n--) sum += rd8(p++);
  return sum;
}

static uptr find_mp_float(uptr p, uptr end) {
  for (; p < end; p += 16)
    if (rd32(p) == MP_FLOAT_SIG) return p;
  return 0;
}

static void parse_mptable(struct mp_info *m) {
  m->cpus = 0;
  m->ioapic = 0;
  m->bp_id = 0x100;  /* none */
  m->status = MP_MISSING;
  uptr fp = find_mp_float(0x9fc00, 0xa0000);
  if (!fp) fp = find_mp_float(0xf0000, 0x100000);
  if (!fp) return;
  u32 fp_len = rd8(fp + 8) * 16u;
  if (!fp_len || checksum(fp, fp_len)) {
    m->status = MP_BAD_CHECKSUM;
    return;
  }
  uptr ct = rd32(fp + 4);
  if (!ct || rd32(ct) != MP_CONFIG_SIG) return;
  u32 len = rd16(ct + 4);
  if (checksum(ct, len)) {
    m->status = MP_BAD_CHECKSUM;
    return;
  }
  m->status = MP_OK;
  /* Walk the entries by the table's length, as Linux does: some firmware
     (qboot) leaves the entry count at 0. */
  uptr e = ct + 44, end = ct + len;
  while (e < end) {
    u8 type = rd8(e);
    if (type == 0) {  /* processor: type, apic id, version, flags (EN=1, BP=2) */
      u8 id = rd8(e + 1), flags = rd8(e + 3);
      if (flags & 2) m->bp_id = id;
      if ((flags & 1) && m->cpus < MP_MAX_CPUS) {
        u32 j = m->cpus++;
        for (; j && m->ids[j - 1] > id; j--) m->ids[j] = m->ids[j - 1];
        m->ids[j] = id;
      }
      e += 20;
    } else if (type <= 4) {  /* bus, I/O APIC, I/O and local interrupt: 8 bytes */
      if (type == 2 && !m->ioapic) m->ioapic = rd32(e + 4);
      e += 8;
    } else {
      break;  /* unknown entry: its length is unknown too */
    }
  }
}

static void test_mptable(const struct mp_info *m) {
  if (m->status == MP_MISSING) {
    line("mptable missing\n");
  } else if (m->status == MP_BAD_CHECKSUM) {
    line("mptable bad-checksum\n");
  } else {
    line("mptable cpus=");
    put_dec(m->cpus);
    put_str(" ioapic=0x");
    put_hex(m->ioapic);
    put_char('\n');
  }
}

/* ---- SMP ---------------------------------------------------------------- */

/* Written by the APs (entry.S); kept in .data so no loader must zero them. */
volatile u32 ap_count = 0;
volatile u8 ap_seen[256] = {0};

extern const u8 ap_trampoline[], ap_trampoline_end[];

/* About a second at common TSC rates; only spent if an AP never comes. */
#define AP_WAIT_TSC (1ULL << 31)

static void test_smp(const struct mp_info *m) {
  u32 self = bsp_apic_id();
  volatile u8 *dst = (volatile u8 *)AP_TRAMPOLINE;
  for (const u8 *src = ap_trampoline; src < ap_trampoline_end; src++) *dst++ = *src;

  u32 sent = 0;
  if (m->status == MP_OK) {
    for (u32 i = 0; i < m->cpus; i++) {
      u32 id = m->ids[i];
      /* Never INIT ourselves: not our ID, not the table's BP, not broadcast. */
      if (id == self || id == m->bp_id || id == 0xff) continue;
      lapic_write(LAPIC_ICR_HI, id << 24);
      lapic_write(LAPIC_ICR_LO, ICR_INIT);
      lapic_write(LAPIC_ICR_HI, id << 24);
      lapic_write(LAPIC_ICR_LO, ICR_STARTUP | AP_SIPI_VECTOR);
      sent++;
    }
  }
  u64 start = rdtsc();
  while (ap_count < sent && rdtsc() - start < AP_WAIT_TSC) __asm__ volatile("pause");

  if (m->status == MP_OK) {
    for (u32 i = 0; i < m->cpus; i++) {
      u32 id = m->ids[i];
      if (id == self || !ap_seen[id]) continue;  /* only APs that arrived */
      line("ap apic_id=");
      put_dec(id);
      put_str(" up\n");
    }
  }
  line("smp online=");
  put_dec(1 + ap_count);
  put_char('\n');
}

/* ---- ticks and ctrl-alt-del ---------------------------------------------- */

/*
 * A fixed TSC count, not a calibrated time: ember's guest sees no TSC
 * frequency (CPUID 0x15/0x16 and 0x40000010 are zero) and has no PIT to
 * calibrate against.  1e7 cycles is 3.8 ms at 2.6 GHz (2.5-5 ms at 2-4 GHz);
 * under PVM each tick line adds about 0.5 ms of serial port exits, so the
 * 50 ticks take about 0.2 s.
 */
#define TICKS		50
#define TICK_TSC	10000000ULL

/*
 * Slow, visible progress: the host pauses the VM and checks it stops.  The
 * loop also keeps the longest time between two consecutive TSC reads (a
 * tick line's serial exits at most, unless the vCPU did not run: the TSC
 * goes on while the host holds it) and the tick it fell in, a tick's line
 * included: the guest's own account of a pause.
 */
static void test_ticks(void) {
  u64 prev = rdtsc(), stall = 0;
  u32 stall_tick = 0;
  for (u32 i = 0; i < TICKS; i++) {
    line("tick ");
    put_dec(i);
    put_char('\n');
    u64 start = rdtsc();
    for (u64 now = start;; now = rdtsc()) {
      if (now - prev > stall) stall = now - prev, stall_tick = i;
      prev = now;
      if (now - start >= TICK_TSC) break;
      __asm__ volatile("pause");
    }
  }
  line("ticks stall tsc=");
  put_dec(stall);
  put_str(" tick=");
  put_dec(stall_tick);
  put_char('\n');
  line("ticks done\n");
}

/*
 * Polls the i8042 (IF=0, so no IRQ 1) until the make codes of Ctrl, Alt and
 * Del (set 1, what a translating controller delivers) have arrived in that
 * order; other bytes in between are ignored.  No timeout: the host bounds it.
 * cad_poll is one poll (netloop and fsloop call it between frames and files).
 */
int cad_poll(u32 *seen) {
  static const u8 kMakeCodes[] = {0x1d, 0x38, 0x53};
  if (*seen < sizeof(kMakeCodes) && (inb(I8042_CMD_PORT) & I8042_STATUS_OBF) &&
      inb(I8042_DATA_PORT) == kMakeCodes[*seen])
    ++*seen;
  return *seen == sizeof(kMakeCodes);
}

static void test_ctrlaltdel(void) {
  line("waiting for ctrl-alt-del\n");
  u32 seen = 0;
  while (!cad_poll(&seen)) __asm__ volatile("pause");
  line("ctrl-alt-del received\n");
}

/* 256 KiB on the console, more than a pipe holds: for a reader that stalls. */
static void test_flood(void) {
  line("flood start\n");
  for (u32 i = 0; i < 256 * 1024 / 64; i++) {
    for (u32 j = 0; j < 63; j++) put_char('x');
    put_char('\n');
  }
  line("flood end\n");
}

/* ---- main ---------------------------------------------------------------- */

static u32 start_info_ok(uptr si) {
  if (si && rd32(si + SI_MAGIC) == PVH_MAGIC) return 1;
  line("pvh start_info bad-magic\n");
  return 0;
}

/* Kept out of guest_main so the default path stays a handful of instructions. */
static void __attribute__((noinline)) run_tests(u32 tests, u32 kind, uptr info,
                                                const char *cmdline) {
  struct boot_info bi = {0};
  if (kind == KIND_PVH)
    from_start_info(info, &bi);
  else
    from_boot_params(info, &bi);

  if (tests & T_CMDLINE) {
    line("cmdline=");
    put_str(cmdline);
    put_char('\n');
  }
  if (tests & T_E820) test_e820(&bi);
  if (tests & T_INITRD) test_initrd(&bi);
  if (tests & T_CPUID) test_cpuid();
  if (tests & (T_MPTABLE | T_SMP)) parse_mptable(&mp);
  if (tests & T_MPTABLE) test_mptable(&mp);
  if (tests & T_SMP) test_smp(&mp);
  if (tests & T_ACPI) test_acpi(bi.rsdp);
  if (tests & T_TIMER) {
    *(volatile u8 *)BOOT_TIMER = BOOT_TIMER_MAGIC;
    line("boot-timer written\n");
  }
  if (tests & T_TICKS) test_ticks();
  if (tests & T_VIRTIO) test_virtio(cmdline);
  /* Early, so the device tests after it show the devices still work. */
  if (tests & T_HOSTILE) test_hostile(cmdline);
  if (tests & T_FS) test_fs(cmdline);
  if (tests & T_FSBENCH) test_fsbench(cmdline);
  if (tests & T_NET) test_net(cmdline);
  if (tests & T_NETPEER) test_netpeer(cmdline);
  if (tests & T_NETLOOP) test_netloop(cmdline);
  if (tests & T_NETBENCH) test_netbench(cmdline);
  if (tests & T_NETTAP) test_nettap(cmdline);
  if (tests & T_NETTAPBENCH) test_nettapbench(cmdline);
  if (tests & T_FSLOOP) test_fsloop(cmdline);
  if (tests & T_VSOCK) test_vsock(cmdline);
  if (tests & T_RNG) test_rng(cmdline);
  if (tests & T_MMDS) test_mmds(cmdline);
  if (tests & T_BLK) test_blk(cmdline);
  if (tests & T_BLKBAD) test_blkbad(cmdline);
  if (tests & T_BLKSWAP) test_blkswap(cmdline);
  if (tests & T_BLKLOOP) test_blkloop(cmdline);
  if (tests & T_BLKRATE) test_blkrate(cmdline);
  if (tests & T_BLKBENCH) test_blkbench(cmdline);
  if (tests & T_CTRLALTDEL) test_ctrlaltdel();
  if (tests & T_POWEROFF) test_poweroff();
  if (tests & T_FLOOD) test_flood();
}

void guest_main(u32 kind, uptr info) __attribute__((noreturn, used));

void guest_main(u32 kind, uptr info) {
  static const char *const kEntryLines[] = {
      "ember-guest: entry=pvh\n",
      "ember-guest: entry=elf64\n",
      "ember-guest: entry=bzimage\n",
  };
  put_str(kEntryLines[kind]);

  uptr cmdline = 0;
  if (kind == KIND_PVH) {
    if (start_info_ok(info))
      cmdline = (uptr)rd64(info + SI_CMDLINE_PADDR);
    else
      info = 0;
  } else if (info) {
    cmdline = rd32(info + BP_CMD_LINE_PTR) | (u64)rd32(info + BP_EXT_CMD_LINE_PTR) << 32;
  }
  if (!cmdline) cmdline = (uptr) "";

  u32 tests = info ? parse_cmdline((const char *)cmdline) : 0;
  if (tests) run_tests(tests, kind, info, (const char *)cmdline);

  line("done\n");
  outb(DEBUG_EXIT_PORT, 0);
  outb(I8042_CMD_PORT, I8042_RESET);
  for (;;) __asm__ volatile("cli; hlt");
}
