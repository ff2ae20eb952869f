#include "arch/x86_64/kernel_loader.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "arch/x86_64/layout.h"
#include "base/file_io.h"
#include "base/hex.h"
#include "base/sys_error.h"

namespace ember::x86 {
namespace {

constexpr uint64_t kSetupHeaderOffset = 0x1f1;
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kMinBootProtocol = 0x020c;  // xloadflags (64-bit entry) exist from 2.12
constexpr uint64_t kSectorSize = 512;
constexpr uint8_t kDefaultSetupSectors = 4;
constexpr uint64_t kEntry64Offset = 0x200;
constexpr uint64_t kPageSize = 4096;
constexpr size_t kMaxProgramHeaders = 64;
constexpr uint64_t kMaxNoteBytes = 64 * 1024;

Status ReadExact(int fd, void* out, uint64_t length, uint64_t offset, const char* what) {
  EMBER_ASSIGN_OR_RETURN(uint64_t done, PreadFull(fd, out, length, offset, what));
  if (done < length) return Status::Error(std::string(what) + " is truncated");
  return Status::Ok();
}

Status CheckFitsInLowRam(const GuestMemory& memory, uint64_t start, uint64_t length,
                         const std::string& what) {
  uint64_t end = start + length;
  if (end < start || start < layout::kHighMemoryStart || end > memory.low_ram_end()) {
    return Status::Error(what + " needs guest memory " + Hex(start) + "-" + Hex(end) +
                         ", but RAM below the MMIO hole is 1 MiB-" + Hex(memory.low_ram_end()) +
                         " (raise mem_size_mib or relink the kernel)");
  }
  return Status::Ok();
}

Result<LoadedKernel> LoadBzImage(GuestMemory& memory, int fd, uint64_t file_size,
                                 const setup_header& header) {
  if (header.version < kMinBootProtocol) {
    return Status::Error("bzImage boot protocol " + Hex(header.version) +
                         " is too old: ember needs 2.12 or newer");
  }
  if (!(header.xloadflags & XLF_KERNEL_64)) {
    return Status::Error("bzImage has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)");
  }
  if (!(header.loadflags & LOADED_HIGH)) {
    return Status::Error("zImage (loaded low) is not supported: use a bzImage");
  }
  uint64_t setup_sectors = header.setup_sects == 0 ? kDefaultSetupSectors : header.setup_sects;
  uint64_t kernel_offset = (setup_sectors + 1) * kSectorSize;
  uint64_t kernel_size = static_cast<uint64_t>(header.syssize) * 16;
  if (kernel_size == 0) return Status::Error("bzImage header declares an empty kernel (syssize 0)");
  if (kernel_offset + kernel_size > file_size) {
    return Status::Error("bzImage is truncated: its header declares " +
                         std::to_string(kernel_offset + kernel_size) + " bytes, the file has " +
                         std::to_string(file_size));
  }
  // A relocatable kernel may run anywhere; others only where they were
  // linked. The protected-mode part is copied as is from the file.
  uint64_t load_address =
      header.relocatable_kernel ? layout::kHighMemoryStart : header.pref_address;
  uint64_t file_bytes = file_size - kernel_offset;
  uint64_t footprint = std::max<uint64_t>(file_bytes, header.init_size);
  EMBER_RETURN_IF_ERROR(CheckFitsInLowRam(memory, load_address, footprint, "the bzImage"));
  EMBER_RETURN_IF_ERROR(
      memory.ReadFromFile(load_address, fd, kernel_offset, file_bytes, "bzImage"));

  LoadedKernel kernel{};
  kernel.format = KernelFormat::kBzImage;
  kernel.entry = load_address + kEntry64Offset;
  kernel.end = load_address + footprint;
  kernel.setup = header;
  kernel.cmdline_max =
      std::min<uint64_t>(layout::kCmdlineMaxSize, static_cast<uint64_t>(header.cmdline_size) + 1);
  kernel.initrd_max = header.initrd_addr_max;
  return kernel;
}

// Looks for the Xen PHYS32_ENTRY note in one PT_NOTE segment.
Result<std::optional<uint64_t>> FindPvhEntry(int fd, const Elf64_Phdr& note_segment) {
  if (note_segment.p_filesz > kMaxNoteBytes) return std::optional<uint64_t>();
  std::vector<uint8_t> notes(note_segment.p_filesz);
  EMBER_RETURN_IF_ERROR(
      ReadExact(fd, notes.data(), notes.size(), note_segment.p_offset, "ELF note segment"));
  size_t offset = 0;
  auto align4 = [](uint64_t n) { return (n + 3) & ~uint64_t{3}; };
  while (offset + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr note;
    std::memcpy(&note, notes.data() + offset, sizeof(note));
    uint64_t name_at = offset + sizeof(note);
    uint64_t desc_at = name_at + align4(note.n_namesz);
    uint64_t next = desc_at + align4(note.n_descsz);
    if (next > notes.size()) return Status::Error("ELF note segment is malformed");
    bool is_xen = note.n_namesz == 4 && std::memcmp(notes.data() + name_at, "Xen", 4) == 0;
    if (is_xen && note.n_type == kXenElfNotePhys32Entry) {
      if (note.n_descsz != 4 && note.n_descsz != 8) {
        return Status::Error("PVH entry note has a " + std::to_string(note.n_descsz) +
                             "-byte address");
      }
      uint64_t entry = 0;
      std::memcpy(&entry, notes.data() + desc_at, note.n_descsz);
      return std::optional<uint64_t>(entry);
    }
    offset = next;
  }
  return std::optional<uint64_t>();
}

Result<LoadedKernel> LoadElf(GuestMemory& memory, int fd, uint64_t file_size) {
  Elf64_Ehdr ehdr;
  if (file_size < sizeof(ehdr)) return Status::Error("ELF kernel is truncated inside its header");
  EMBER_RETURN_IF_ERROR(ReadExact(fd, &ehdr, sizeof(ehdr), 0, "ELF header"));
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) return Status::Error("ELF kernel is not 64-bit");
  if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) return Status::Error("ELF kernel is not little-endian");
  if (ehdr.e_machine != EM_X86_64) return Status::Error("ELF kernel is not for x86_64");
  if (ehdr.e_phentsize != sizeof(Elf64_Phdr) || ehdr.e_phnum == 0 ||
      ehdr.e_phnum > kMaxProgramHeaders) {
    return Status::Error("ELF kernel has an invalid program header table");
  }
  uint64_t table_size = uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr);
  if (ehdr.e_phoff > file_size || table_size > file_size - ehdr.e_phoff) {
    return Status::Error("ELF kernel is truncated: program headers lie beyond the end of the file");
  }
  std::vector<Elf64_Phdr> headers(ehdr.e_phnum);
  EMBER_RETURN_IF_ERROR(
      ReadExact(fd, headers.data(), table_size, ehdr.e_phoff, "ELF program headers"));

  LoadedKernel kernel{};
  kernel.format = KernelFormat::kElf64;
  kernel.entry = ehdr.e_entry;
  kernel.cmdline_max = layout::kCmdlineMaxSize;
  kernel.initrd_max = layout::kMmioHoleStart - 1;
  size_t loaded = 0;
  for (size_t i = 0; i < headers.size(); ++i) {
    const Elf64_Phdr& ph = headers[i];
    std::string what = "ELF segment " + std::to_string(i);
    if (ph.p_type == PT_NOTE) {
      EMBER_ASSIGN_OR_RETURN(std::optional<uint64_t> pvh_entry, FindPvhEntry(fd, ph));
      if (pvh_entry) {
        kernel.format = KernelFormat::kElfPvh;
        kernel.entry = *pvh_entry;
      }
      continue;
    }
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz) return Status::Error(what + " has filesz above memsz");
    if (ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset) {
      return Status::Error("ELF kernel is truncated: " + what + " needs bytes up to " +
                           std::to_string(ph.p_offset + ph.p_filesz) + ", the file has " +
                           std::to_string(file_size));
    }
    EMBER_RETURN_IF_ERROR(CheckFitsInLowRam(memory, ph.p_paddr, ph.p_memsz, what));
    // Memory past p_filesz is fresh memfd memory and already zero.
    EMBER_RETURN_IF_ERROR(
        memory.ReadFromFile(ph.p_paddr, fd, ph.p_offset, ph.p_filesz, what.c_str()));
    kernel.end = std::max(kernel.end, ph.p_paddr + ph.p_memsz);
    ++loaded;
  }
  if (loaded == 0) return Status::Error("ELF kernel has no loadable segment");
  if (!memory.Contains(kernel.entry, 1) || kernel.entry < layout::kHighMemoryStart ||
      kernel.entry >= kernel.end) {
    return Status::Error("ELF kernel entry point " + Hex(kernel.entry) +
                         " is not inside the loaded image");
  }
  return kernel;
}

}  // namespace

const char* KernelFormatName(KernelFormat format) {
  switch (format) {
    case KernelFormat::kBzImage:
      return "bzImage";
    case KernelFormat::kElf64:
      return "ELF (64-bit entry)";
    case KernelFormat::kElfPvh:
      return "ELF (PVH entry)";
  }
  return "?";
}

Result<LoadedKernel> LoadKernel(GuestMemory& memory, int fd, uint64_t file_size) {
  // One read covers the ELF identification and the bzImage setup header.
  uint8_t head[kSetupHeaderOffset + sizeof(setup_header)] = {};
  uint64_t head_size = std::min<uint64_t>(sizeof(head), file_size);
  EMBER_RETURN_IF_ERROR(ReadExact(fd, head, head_size, 0, "kernel image"));
  if (head_size >= SELFMAG && std::memcmp(head, ELFMAG, SELFMAG) == 0) {
    return LoadElf(memory, fd, file_size);
  }
  setup_header header;
  std::memcpy(&header, head + kSetupHeaderOffset, sizeof(header));
  if (head_size < sizeof(head)) {
    if (head_size >= 0x206 && header.boot_flag == kBootFlag && header.header == kHeaderMagic) {
      return Status::Error("bzImage is truncated inside its setup header");
    }
    return Status::Error("not a kernel: " + std::to_string(file_size) +
                         " bytes with neither an ELF header nor a bzImage setup header");
  }
  if (header.boot_flag != kBootFlag || header.header != kHeaderMagic) {
    return Status::Error("not a kernel: neither an ELF header nor a bzImage setup header (HdrS)");
  }
  return LoadBzImage(memory, fd, file_size, header);
}

Result<InitrdPlacement> LoadInitrd(GuestMemory& memory, int fd, uint64_t file_size,
                                   const LoadedKernel& kernel) {
  if (file_size == 0) return Status::Error("initrd is empty");
  uint64_t limit = std::min(memory.low_ram_end(), kernel.initrd_max + 1);
  uint64_t floor = (kernel.end + kPageSize - 1) & ~(kPageSize - 1);
  if (file_size > limit || ((limit - file_size) & ~(kPageSize - 1)) < floor) {
    return Status::Error("initrd of " + std::to_string(file_size) +
                         " bytes does not fit in guest memory between the kernel's end " +
                         Hex(floor) + " and " + Hex(limit) + " (raise mem_size_mib)");
  }
  uint64_t address = (limit - file_size) & ~(kPageSize - 1);
  EMBER_RETURN_IF_ERROR(memory.ReadFromFile(address, fd, 0, file_size, "initrd"));
  return InitrdPlacement{address, file_size};
}

}  // namespace ember::x86
