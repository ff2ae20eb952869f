// Loads a kernel image into guest memory: a bzImage through the 64-bit boot
// protocol, or an ELF vmlinux (entered through its PVH note when it has
// one, else at its 64-bit entry). Also places the initrd. Every check names
// what is wrong with the file; nothing is read twice.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arch/x86_64/pvh.h"
#include "kvm/guest_memory.h"

namespace ember::x86 {

enum class KernelFormat { kBzImage, kElf64, kElfPvh };
const char* KernelFormatName(KernelFormat format);

struct LoadedKernel {
  KernelFormat format;
  uint64_t entry;                     // guest-physical entry point
  uint64_t end;                       // first byte above everything the kernel occupies
  std::optional<setup_header> setup;  // bzImage only: copied into boot_params
  uint64_t cmdline_max;               // longest command line the kernel accepts, with NUL
  uint64_t initrd_max;                // highest address the initrd may reach (inclusive)
};

// `fd` is an open kernel file of `file_size` bytes; `name` is used in errors.
Result<LoadedKernel> LoadKernel(GuestMemory& memory, int fd, uint64_t file_size);

// Places the initrd as high as it can below the kernel's limit and the end
// of low RAM, above the kernel.
Result<InitrdPlacement> LoadInitrd(GuestMemory& memory, int fd, uint64_t file_size,
                                   const LoadedKernel& kernel);

}  // namespace ember::x86
