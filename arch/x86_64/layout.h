// Every guest-physical address ember uses on x86_64, in one place.
// Low memory (below 1 MiB) holds the boot structures ember writes; the kernel
// is loaded at 1 MiB; devices live in the 32-bit MMIO hole below 4 GiB.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember::layout {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// Boot GDT and an empty IDT, loaded into the vCPU before entry.
constexpr uint64_t kGdtStart = 0x500;
constexpr uint64_t kIdtStart = 0x520;

// PVH hvm_start_info, its module list (the initrd) and memory map.
constexpr uint64_t kPvhInfoStart = 0x6000;
constexpr uint64_t kPvhModlistStart = 0x6040;
constexpr uint64_t kPvhMemmapStart = 0x6080;
constexpr uint64_t kPvhMemmapMaxEntries = 128;

// Linux boot_params ("zero page").
constexpr uint64_t kZeroPageStart = 0x7000;

// Initial stack pointer for the 64-bit entry (the kernel sets its own).
constexpr uint64_t kBootStackPointer = 0x8ff0;

// Identity page tables for the 64-bit entry: one PML4, one PDPT and four
// page directories of 2 MiB pages mapping the first 4 GiB.
constexpr uint64_t kPml4Start = 0x9000;
constexpr uint64_t kPdptStart = 0xa000;
constexpr uint64_t kPdStart = 0xb000;
constexpr uint64_t kIdentityMappedBytes = 4 * kGiB;

// 0x10000-0x1ffff is left free for guest use (e.g. an AP start-up
// trampoline for SIPI vector 0x10).
constexpr uint64_t kGuestScratchStart = 0x10000;

// Kernel command line.
constexpr uint64_t kCmdlineStart = 0x20000;
constexpr uint64_t kCmdlineMaxSize = 2048;  // including the trailing NUL

// Intel MP table in the last KiB of base memory (where guests search it);
// the e820 map leaves [kEbdaStart, 1 MiB) out of RAM.
constexpr uint64_t kEbdaStart = 0x9fc00;
constexpr uint64_t kMptableStart = kEbdaStart;
constexpr uint64_t kMptableMaxSize = 0xa0000 - kEbdaStart;

// ACPI tables in the BIOS area, which the e820 map also leaves out of RAM:
// the RSDP first, on a 16-byte boundary in 0xe0000-0xfffff where guests
// search for it, then the tables it leads to.
constexpr uint64_t kAcpiStart = 0xe0000;
constexpr uint64_t kAcpiMaxSize = 0x100000 - kAcpiStart;

// Where kernels are loaded (bzImage protected-mode part, ELF minimum).
constexpr uint64_t kHighMemoryStart = 0x100000;

// 32-bit MMIO hole: RAM beyond 3 GiB continues at 4 GiB.
constexpr uint64_t kMmioHoleStart = 3 * kGiB;
constexpr uint64_t kMmioHoleEnd = 4 * kGiB;

// Devices in the MMIO hole.
constexpr uint64_t kBootTimerStart = 0xc000'0000;  // Firecracker-compatible
constexpr uint64_t kBootTimerSize = 0x1000;
// virtio-mmio slots, one 4 KiB window and one interrupt line each.
constexpr uint64_t kVirtioMmioStart = 0xc000'1000;
constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
// IOAPIC pins free for devices: not the timer (0), keyboard (1), cascade
// (2), COM1 (4), RTC (8) or mouse (12).
constexpr uint32_t kVirtioIrqs[] = {5, 6, 7, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
constexpr size_t kMaxVirtioDevices = sizeof(kVirtioIrqs) / sizeof(kVirtioIrqs[0]);
constexpr uint64_t kIoapicStart = 0xfec0'0000;
constexpr uint64_t kLapicStart = 0xfee0'0000;

// KVM's private pages for the TSS and the real-mode identity map; they
// must sit inside the hole, below the BIOS area at 4 GiB - 256 KiB.
constexpr uint64_t kKvmIdentityMapStart = 0xfffb'c000;
constexpr uint64_t kKvmTssStart = 0xfffb'd000;

// Legacy ports and interrupt lines.
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint32_t kCom1Irq = 4;
constexpr uint16_t kI8042Port = 0x60;
constexpr uint32_t kI8042Irq = 1;
constexpr uint32_t kIoapicPins = 24;
// Hardware-reduced ACPI power registers (the FADT's SLEEP_CONTROL_REG,
// SLEEP_STATUS_REG and RESET_REG), one byte each, and the byte that resets.
constexpr uint16_t kAcpiSleepControlPort = 0x600;
constexpr uint16_t kAcpiSleepStatusPort = 0x601;
constexpr uint16_t kAcpiResetPort = 0x602;
constexpr uint8_t kAcpiResetValue = 0x01;

constexpr uint32_t kMaxVcpus = 32;

}  // namespace ember::layout
