/*
 * Shared by the guest's C files (guest.c, acpi.c, virtio*.c): integer types,
 * port/MMIO helpers and the COM1 output functions (defined in guest.c).
 */
#ifndef EMBER_GUEST_LIB_H
#define EMBER_GUEST_LIB_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef int s32;
typedef long long s64;
typedef unsigned long uptr;

static inline void outb(u16 port, u8 v) {
  __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((u64)hi << 32) | lo;
}

/*
 * Time is a fixed TSC count: ember's guest sees no TSC frequency and has
 * no PIT to calibrate against.  This is the PVM host's 2.6 GHz.
 */
#define TSC_PER_MS 2600000ULL

/* Orders memory accesses for the compiler; x86 keeps the CPU's order. */
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

static inline u8 rd8(uptr a) { return *(const volatile u8 *)a; }
static inline u16 rd16(uptr a) { return *(const volatile u16 *)a; }
static inline u32 rd32(uptr a) { return *(const volatile u32 *)a; }
static inline u64 rd64(uptr a) { return *(const volatile u64 *)a; }
static inline void wr32(uptr a, u32 v) { *(volatile u32 *)a = v; }

/* guest.c */
void put_char(char c);
void put_str(const char *s);
void put_n(const char *s, uptr n);
void put_hex(u64 v);   /* no leading zeros; the caller prints "0x" */
void put_hex8(u32 v);  /* exactly 8 digits */
void put_dec(u64 v);
void line(const char *s);  /* "ember-guest: " then s */
u32 byte_sum(uptr p, u64 n);  /* 32-bit wrapping sum of n bytes */
/*
 * The ctrlaltdel test's i8042 matcher, one poll: reads the status port and,
 * if a byte waits, the data port.  *seen (start at 0) counts the make codes
 * of Ctrl, Alt, Del matched so far; returns 1 once all three have arrived.
 */
int cad_poll(u32 *seen);

/* virtio.c, virtio_fs.c, virtio_net.c; cmdline is the whole kernel command line */
void test_virtio(const char *cmdline);
void test_fs(const char *cmdline);
void test_fsbench(const char *cmdline);
void test_net(const char *cmdline);
void test_netpeer(const char *cmdline);
void test_netloop(const char *cmdline);
void test_netbench(const char *cmdline);
void test_nettap(const char *cmdline);
void test_nettapbench(const char *cmdline);
void test_fsloop(const char *cmdline);
void test_blk(const char *cmdline);
void test_blkbad(const char *cmdline);
void test_blkswap(const char *cmdline);
void test_blkloop(const char *cmdline);
void test_blkrate(const char *cmdline);
void test_blkbench(const char *cmdline);
void test_vsock(const char *cmdline);
void test_rng(const char *cmdline);
void test_mmds(const char *cmdline);
/* hostile.c: ember.hostile=SEED[,ROUNDS] */
void test_hostile(const char *cmdline);

/* acpi.c; rsdp is where the boot information says the RSDP is (0: not said) */
void test_acpi(u64 rsdp);
void test_poweroff(void);

#endif
