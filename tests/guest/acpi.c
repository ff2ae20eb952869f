/*
 * The acpi and poweroff tests: finds the ACPI tables the way a firmware-less
 * guest does (the RSDP on a 16-byte boundary in 0xe0000-0xfffff), checks
 * every checksum on the way, counts what the tables describe, and powers
 * the machine off through the FADT's sleep control register.  See README.md.
 */

#include "lib.h"

#define RSDP_SIG	0x2052545020445352ULL	/* "RSD PTR " */
#define SIG(a, b, c, d)	((u32)(a) | (u32)(b) << 8 | (u32)(c) << 16 | (u32)(d) << 24)
#define SIG_FACP	SIG('F', 'A', 'C', 'P')
#define SIG_APIC	SIG('A', 'P', 'I', 'C')
#define SIG_DSDT	SIG('D', 'S', 'D', 'T')

/* Offsets in the tables (ACPI 6.x, chapter 5.2). */
#define RSDP_REVISION		15
#define RSDP_RSDT		16
#define RSDP_LENGTH		20
#define RSDP_XSDT		24
#define SDT_LENGTH		4
#define SDT_HEADER_SIZE		36
#define FADT_DSDT		40
#define FADT_X_DSDT		140
#define FADT_SLEEP_CONTROL	244	/* Generic Address Structure */
#define MADT_ENTRIES		44
#define GAS_SYSTEM_IO		1

#define SLP_EN			0x20
#define SLP_TYP_SHIFT		2
#define SLP_TYP_MASK		0x1c
#define S5_DEFAULT		5

/* The guest's page tables map 0-4 GiB; no sane table is bigger than 1 MiB. */
#define MAPPED_END		0x100000000ULL
#define MAX_TABLE		0x100000

/* About a second at common TSC rates. */
#define POWEROFF_WAIT_TSC	(1ULL << 31)

struct acpi_info {
  uptr rsdp;
  u32 tables;        /* entries of the XSDT (or RSDT) */
  u32 bad;           /* tables whose checksum or length is wrong */
  u32 cpus;          /* enabled processor local APICs in the MADT */
  u32 virtio;        /* "LNRO0005" in the DSDT */
  uptr dsdt;
  u32 dsdt_len;
  u32 have_sleep;    /* the FADT names a sleep control register */
  u8 sleep_space;
  u64 sleep_address;
};

static u8 sum8(uptr p, u32 n) {
  u8 sum = 0;
  while (n--) sum += rd8(p++);
  return sum;
}

/* A table at `p` whose length is sane and whose bytes sum to 0; its length, or 0. */
static u32 good_table(uptr p) {
  if (!p || p + SDT_HEADER_SIZE > MAPPED_END) return 0;
  u32 len = rd32(p + SDT_LENGTH);
  if (len < SDT_HEADER_SIZE || len > MAX_TABLE || p + len > MAPPED_END) return 0;
  return sum8(p, len) == 0 ? len : 0;
}

static uptr find_rsdp(void) {
  for (uptr p = 0xe0000; p < 0x100000; p += 16)
    if (rd64(p) == RSDP_SIG) return p;
  return 0;
}

static void parse_madt(uptr p, u32 len, struct acpi_info *a) {
  uptr e = p + MADT_ENTRIES, end = p + len;
  while (e + 2 <= end) {
    u8 type = rd8(e), elen = rd8(e + 1);
    if (elen < 2) break;
    /* Processor local APIC: type, length, UID, APIC ID, flags (bit 0 enabled). */
    if (type == 0 && elen >= 8 && (rd32(e + 4) & 1)) a->cpus++;
    e += elen;
  }
}

static void parse_fadt(uptr p, u32 len, struct acpi_info *a) {
  a->dsdt = len >= FADT_X_DSDT + 8 ? (uptr)rd64(p + FADT_X_DSDT) : 0;
  if (!a->dsdt) a->dsdt = rd32(p + FADT_DSDT);
  if (len >= FADT_SLEEP_CONTROL + 12) {
    a->sleep_space = rd8(p + FADT_SLEEP_CONTROL);
    a->sleep_address = rd64(p + FADT_SLEEP_CONTROL + 4);
    a->have_sleep = a->sleep_address != 0;
  }
}

static int match(uptr p, const char *s) {
  for (; *s; s++, p++)
    if (rd8(p) != (u8)*s) return 0;
  return 1;
}

/* Returns 0 without an RSDP, -1 when a checksum on the way to the XSDT is wrong. */
static int parse_acpi(struct acpi_info *a) {
  a->rsdp = find_rsdp();
  if (!a->rsdp) return 0;
  if (sum8(a->rsdp, 20)) return -1;
  u32 revision = rd8(a->rsdp + RSDP_REVISION);
  uptr root = 0;
  u32 entry_size = 4;
  if (revision >= 2) {
    u32 len = rd32(a->rsdp + RSDP_LENGTH);
    if (len < 36 || len > 4096 || sum8(a->rsdp, len)) return -1;
    root = (uptr)rd64(a->rsdp + RSDP_XSDT);
    entry_size = 8;
  }
  if (!root) {
    root = rd32(a->rsdp + RSDP_RSDT);
    entry_size = 4;
  }
  u32 root_len = good_table(root);
  if (!root_len) return -1;
  a->tables = (root_len - SDT_HEADER_SIZE) / entry_size;
  for (u32 i = 0; i < a->tables; i++) {
    uptr e = root + SDT_HEADER_SIZE + i * entry_size;
    uptr t = entry_size == 8 ? (uptr)rd64(e) : rd32(e);
    u32 len = good_table(t);
    if (!len) {
      a->bad++;
      continue;
    }
    if (rd32(t) == SIG_APIC) parse_madt(t, len, a);
    if (rd32(t) == SIG_FACP) parse_fadt(t, len, a);
  }
  if (a->dsdt) {
    a->dsdt_len = good_table(a->dsdt);
    if (!a->dsdt_len || rd32(a->dsdt) != SIG_DSDT) {
      a->bad++;
      a->dsdt_len = 0;
    }
    for (u32 i = SDT_HEADER_SIZE; i + 8 <= a->dsdt_len; i++)
      if (match(a->dsdt + i, "LNRO0005")) a->virtio++;
  }
  return 1;
}

/* boot_rsdp: what start_info or boot_params said (0: nothing). */
void test_acpi(u64 boot_rsdp) {
  struct acpi_info a = {0};
  int found = parse_acpi(&a);
  if (found == 0) {
    line("acpi rsdp missing\n");
    return;
  }
  if (found < 0) {
    line("acpi rsdp=0x");
    put_hex(a.rsdp);
    put_str(" bad-checksum\n");
    return;
  }
  if (boot_rsdp && boot_rsdp != a.rsdp) {
    line("acpi boot-info rsdp=0x");
    put_hex(boot_rsdp);
    put_str(" mismatch\n");
  }
  line("acpi rsdp=0x");
  put_hex(a.rsdp);
  put_str(" tables=");
  put_dec(a.tables);
  put_str(" cpus=");
  put_dec(a.cpus);
  put_str(" virtio=");
  put_dec(a.virtio);
  put_str(a.bad ? " checksums=bad\n" : " checksums=ok\n");
}

/* SLP_TYPa of \_S5: the first element of the package named _S5_ in the DSDT. */
static u32 s5_type(const struct acpi_info *a) {
  for (u32 i = SDT_HEADER_SIZE; i + 8 <= a->dsdt_len; i++) {
    uptr p = a->dsdt + i;
    if (!match(p, "_S5_") || rd8(p + 4) != 0x12) continue;  /* PackageOp */
    p += 5;
    p += 1 + (rd8(p) >> 6);  /* PkgLength: lead byte and 0-3 more */
    p += 1;                  /* NumElements */
    u8 op = rd8(p);
    if (op == 0x00 || op == 0x01) return op;  /* ZeroOp, OneOp */
    if (op == 0x0a) return rd8(p + 1);        /* BytePrefix */
  }
  return S5_DEFAULT;
}

void test_poweroff(void) {
  struct acpi_info a = {0};
  if (parse_acpi(&a) <= 0 || !a.have_sleep || a.sleep_space != GAS_SYSTEM_IO ||
      a.sleep_address > 0xffff) {
    line("poweroff no-acpi\n");
    return;
  }
  u8 value = (u8)(((s5_type(&a) << SLP_TYP_SHIFT) & SLP_TYP_MASK) | SLP_EN);
  line("poweroff port=0x");
  put_hex(a.sleep_address);
  put_str(" value=0x");
  put_hex(value);
  put_char('\n');
  outb((u16)a.sleep_address, value);
  /* The VMM stops the vCPU soon after the write; give it time. */
  u64 start = rdtsc();
  while (rdtsc() - start < POWEROFF_WAIT_TSC) __asm__ volatile("pause");
  line("poweroff failed\n");
}
