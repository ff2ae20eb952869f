// Fuzz target: kernel images (boot-source.kernel_image_path is the user's,
// but the file is hostile: a platform boots whatever image its tenant
// names). The input is the image: bzImage (64-bit boot protocol), ELF
// vmlinux, ELF with a PVH note; loaded into 32 MiB of guest memory, then an
// initrd placed after it and the boot parameters built, as InstanceStart
// does. An error naming the problem, never a crash or a write outside RAM.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/kernel_loader.h"
#include "base/unique_fd.h"
#include "jail/seccomp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  static GuestMemory* memory = [] {
    SetSeccompEnabled(false);
    Result<GuestMemory> created = GuestMemory::Create(x86::GuestRamRanges(32 << 20));
    if (!created.ok()) std::abort();
    return new GuestMemory(std::move(*created));
  }();
  static UniqueFd initrd = [] {
    UniqueFd fd(memfd_create("fuzz-initrd", MFD_CLOEXEC));
    if (!fd.valid() || ftruncate(fd.get(), 4096) != 0) std::abort();
    return fd;
  }();
  UniqueFd kernel(memfd_create("fuzz-kernel", MFD_CLOEXEC));
  if (!kernel.valid()) std::abort();
  if (size > 0 && write(kernel.get(), data, size) != static_cast<ssize_t>(size)) std::abort();
  Result<x86::LoadedKernel> loaded = x86::LoadKernel(*memory, kernel.get(), size);
  if (!loaded.ok()) return 0;
  Result<x86::InitrdPlacement> placed = x86::LoadInitrd(*memory, initrd.get(), 4096, *loaded);
  std::optional<x86::InitrdPlacement> placement;
  if (placed.ok()) placement = *placed;
  (void)x86::BuildBootParams(loaded->setup, 0x20000, 64, {{0, 0x9fc00, 1}, {0x100000, 31 << 20, 1}},
                             placement);
  return 0;
}
