#include "arch/x86_64/vcpu_setup.h"

#include <sys/ioctl.h>

#include <cstring>
#include <memory>
#include <string>

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "base/hex.h"
#include "base/sys_error.h"
#include "kvm/kvm_abi.h"

namespace ember::x86 {
namespace {

constexpr uint32_t kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175, kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrCstar = 0xc0000083,
                   kMsrSyscallMask = 0xc0000084, kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrMiscEnable = 0x1a0;
constexpr uint64_t kMiscEnableFastStrings = 1;
constexpr uint32_t kMsrMtrrDefType = 0x2ff;
constexpr uint64_t kMtrrEnable = 1 << 11, kMtrrWriteBack = 6;

constexpr uint64_t kCr0Pe = 1, kCr0Et = 1 << 4, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLme = 1 << 8, kEferLma = 1 << 10;
constexpr uint64_t kRflagsReserved = 1 << 1;

constexpr uint32_t kApicLvtLint0 = 0x350, kApicLvtLint1 = 0x360;
constexpr uint32_t kDeliveryModeExtInt = 7, kDeliveryModeNmi = 4;

template <typename T>
Status Ioctl(int fd, unsigned long request, T* arg, const char* name) {
  if (ioctl(fd, request, arg) != 0) return ErrnoStatus(name);
  return Status::Ok();
}

uint32_t SetDeliveryMode(uint32_t lvt, uint32_t mode) { return (lvt & ~0x700u) | (mode << 8); }

}  // namespace

Status SetCpuid(int vcpu_fd, const std::vector<kvm_cpuid_entry2>& entries) {
  size_t bytes = sizeof(kvm_abi::Cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
  auto storage = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* cpuid = reinterpret_cast<kvm_abi::Cpuid2*>(storage.get());
  cpuid->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(cpuid->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  return Ioctl(vcpu_fd, kvm_abi::kSetCpuid2, cpuid, "KVM_SET_CPUID2");
}

Status SetBootMsrs(int vcpu_fd) {
  constexpr struct {
    uint32_t index;
    uint64_t value;
  } kBootMsrs[] = {
      {kMsrSysenterCs, 0},
      {kMsrSysenterEsp, 0},
      {kMsrSysenterEip, 0},
      {kMsrStar, 0},
      {kMsrCstar, 0},
      {kMsrKernelGsBase, 0},
      {kMsrSyscallMask, 0},
      {kMsrLstar, 0},
      {kMsrTsc, 0},
      {kMsrMiscEnable, kMiscEnableFastStrings},
      {kMsrMtrrDefType, kMtrrEnable | kMtrrWriteBack},
  };
  constexpr size_t kCount = sizeof(kBootMsrs) / sizeof(kBootMsrs[0]);
  uint64_t storage[(sizeof(kvm_abi::Msrs) + kCount * sizeof(kvm_msr_entry)) / sizeof(uint64_t)] =
      {};
  auto* msrs = reinterpret_cast<kvm_abi::Msrs*>(storage);
  msrs->nmsrs = kCount;
  for (size_t i = 0; i < kCount; ++i) {
    msrs->entries[i].index = kBootMsrs[i].index;
    msrs->entries[i].data = kBootMsrs[i].value;
  }
  int set = ioctl(vcpu_fd, kvm_abi::kSetMsrs, msrs);
  if (set < 0) return ErrnoStatus("KVM_SET_MSRS");
  if (static_cast<size_t>(set) != kCount) {
    return Status::Error("KVM refused MSR " + Hex(kBootMsrs[set].index) + " at boot");
  }
  return Status::Ok();
}

Status SetFpu(int vcpu_fd) {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;     // x87 default control word
  fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
  return Ioctl(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

Status SetLapicLints(int vcpu_fd) {
  kvm_lapic_state lapic{};
  EMBER_RETURN_IF_ERROR(Ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC"));
  auto patch = [&](uint32_t offset, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, sizeof(value));
    value = SetDeliveryMode(value, mode);
    std::memcpy(lapic.regs + offset, &value, sizeof(value));
  };
  patch(kApicLvtLint0, kDeliveryModeExtInt);
  patch(kApicLvtLint1, kDeliveryModeNmi);
  return Ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

Status WriteBootDescriptorTables(GuestMemory& memory, EntryMode mode) {
  auto gdt = BootGdt(mode == EntryMode::kLinux64 ? GdtMode::kLong64 : GdtMode::kProtected32);
  EMBER_RETURN_IF_ERROR(memory.WriteObject(layout::kGdtStart, gdt));
  return memory.WriteObject(layout::kIdtStart, uint64_t{0});
}

Status SetBootRegisters(int vcpu_fd, const BootEntry& entry) {
  const bool long_mode = entry.mode == EntryMode::kLinux64;
  auto gdt = BootGdt(long_mode ? GdtMode::kLong64 : GdtMode::kProtected32);

  kvm_sregs sregs{};
  EMBER_RETURN_IF_ERROR(Ioctl(vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS"));
  sregs.gdt.base = layout::kGdtStart;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.idt.base = layout::kIdtStart;
  sregs.idt.limit = sizeof(uint64_t) - 1;
  sregs.cs = SegmentFromGdtEntry(gdt[kCodeSelector / 8], kCodeSelector / 8);
  kvm_segment data = SegmentFromGdtEntry(gdt[kDataSelector / 8], kDataSelector / 8);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = SegmentFromGdtEntry(gdt[kTssSelector / 8], kTssSelector / 8);
  if (long_mode) {
    sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
    sregs.cr3 = entry.page_table_root;
    sregs.cr4 = kCr4Pae;
    sregs.efer = kEferLme | kEferLma;
  } else {
    sregs.cr0 = kCr0Pe | kCr0Et;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
  }
  EMBER_RETURN_IF_ERROR(Ioctl(vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS"));

  kvm_regs regs{};
  regs.rflags = kRflagsReserved;
  regs.rip = entry.entry_point;
  if (long_mode) {
    regs.rsp = regs.rbp = layout::kBootStackPointer;
    regs.rsi = entry.boot_info;
  } else {
    regs.rbx = entry.boot_info;
  }
  return Ioctl(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

}  // namespace ember::x86
