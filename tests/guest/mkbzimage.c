/*
 * mkbzimage: host tool that assembles guest.bzImage.
 *
 *   mkbzimage SETUP.bin GUEST.elf OUT
 *
 * SETUP.bin is the flat setup (boot sector with the setup header, plus
 * setup sectors); GUEST.elf is the guest linked at 0x100000.  The output is
 * SETUP.bin with setup_sects, syssize and init_size filled in, followed by
 * the ELF's loadable bytes as a flat image from 0x100000 (the protected-mode
 * part).
 */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR 0x100000u

static void die(const char *what, const char *path) {
  fprintf(stderr, "mkbzimage: %s: %s\n", path, what);
  exit(1);
}

static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open", path);
  if (fseek(f, 0, SEEK_END) != 0) die("cannot seek", path);
  long n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) die("cannot seek", path);
  unsigned char *buf = malloc(n ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) die("cannot read", path);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
  return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: mkbzimage SETUP.bin GUEST.elf OUT\n");
    return 2;
  }
  size_t setup_size, elf_size;
  unsigned char *setup = read_file(argv[1], &setup_size);
  unsigned char *elf = read_file(argv[2], &elf_size);

  if (setup_size < 1024 || setup_size % 512 || setup_size / 512 - 1 > 255)
    die("setup size must be 2..256 sectors", argv[1]);
  if (setup[0x1fe] != 0x55 || setup[0x1ff] != 0xaa || memcmp(setup + 0x202, "HdrS", 4))
    die("no setup header", argv[1]);

  if (elf_size < sizeof(Elf64_Ehdr)) die("not an ELF file", argv[2]);
  Elf64_Ehdr eh;
  memcpy(&eh, elf, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
      eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > elf_size)
    die("not an x86-64 ELF64 file", argv[2]);

  /* Flat image of the PT_LOAD segments, from LOAD_ADDR. */
  Elf64_Phdr *phdrs = calloc(eh.e_phnum ? eh.e_phnum : 1, sizeof *phdrs);
  if (!phdrs) die("out of memory", argv[2]);
  uint64_t file_end = LOAD_ADDR, mem_end = LOAD_ADDR;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr *ph = &phdrs[i];
    memcpy(ph, elf + eh.e_phoff + i * sizeof *ph, sizeof *ph);
    if (ph->p_type != PT_LOAD || !ph->p_memsz) continue;
    if (ph->p_paddr < LOAD_ADDR || ph->p_filesz > ph->p_memsz ||
        ph->p_offset + ph->p_filesz > elf_size || ph->p_paddr + ph->p_memsz > 0xffffffffull)
      die("bad PT_LOAD segment", argv[2]);
    if (ph->p_paddr + ph->p_filesz > file_end) file_end = ph->p_paddr + ph->p_filesz;
    if (ph->p_paddr + ph->p_memsz > mem_end) mem_end = ph->p_paddr + ph->p_memsz;
  }
  size_t pm_size = (size_t)((file_end - LOAD_ADDR + 15) & ~15ull);  /* syssize: 16-byte units */
  uint64_t init_size = (mem_end - LOAD_ADDR + 4095) & ~4095ull;
  if (pm_size <= 0x200) die("image too small for the 64-bit entry at 0x200", argv[2]);
  unsigned char *image = calloc(1, pm_size);
  if (!image) die("out of memory", argv[2]);
  for (int i = 0; i < eh.e_phnum; i++) {
    const Elf64_Phdr *ph = &phdrs[i];
    if (ph->p_type == PT_LOAD && ph->p_filesz)
      memcpy(image + (ph->p_paddr - LOAD_ADDR), elf + ph->p_offset, ph->p_filesz);
  }

  if (get32(setup + 0x214) != LOAD_ADDR) die("code32_start is not 0x100000", argv[1]);
  setup[0x1f1] = (unsigned char)(setup_size / 512 - 1);
  put32(setup + 0x1f4, (uint32_t)(pm_size / 16));
  put32(setup + 0x260, (uint32_t)init_size);

  FILE *out = fopen(argv[3], "wb");
  if (!out) die("cannot create", argv[3]);
  if (fwrite(setup, 1, setup_size, out) != setup_size ||
      fwrite(image, 1, pm_size, out) != pm_size || fclose(out) != 0)
    die("cannot write", argv[3]);
  return 0;
}
