#include "arch/x86_64/mptable.h"

#include <cstddef>
#include <cstring>
#include <string>

#include "arch/x86_64/layout.h"
#include "arch/x86_64/table_bytes.h"

namespace ember::x86 {
namespace {

#pragma pack(push, 1)
struct FloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table;
  uint8_t length;  // in 16-byte units
  uint8_t revision;
  uint8_t checksum;
  uint8_t feature[5];
};
struct ConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem[8];
  char product[12];
  uint32_t oem_table;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_address;
  uint16_t extended_length;
  uint8_t extended_checksum;
  uint8_t reserved;
};
struct ProcessorEntry {
  uint8_t type;
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;
  uint32_t signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};
struct BusEntry {
  uint8_t type;
  uint8_t bus_id;
  char bus_type[6];
};
struct IoapicEntry {
  uint8_t type;
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;
  uint32_t address;
};
struct InterruptEntry {  // I/O and local interrupt assignments share a shape
  uint8_t type;
  uint8_t interrupt_type;
  uint16_t flags;
  uint8_t source_bus;
  uint8_t source_irq;
  uint8_t destination_apic;
  uint8_t destination_pin;
};
#pragma pack(pop)

static_assert(sizeof(FloatingPointer) == 16);
static_assert(sizeof(ConfigHeader) == 44);
static_assert(sizeof(ProcessorEntry) == 20);
static_assert(sizeof(BusEntry) == 8);
static_assert(sizeof(IoapicEntry) == 8);
static_assert(sizeof(InterruptEntry) == 8);

enum EntryType : uint8_t {
  kProcessor = 0,
  kBus = 1,
  kIoapic = 2,
  kIoInterrupt = 3,
  kLocalInterrupt = 4
};
enum InterruptType : uint8_t { kInt = 0, kNmi = 1, kExtInt = 3 };
constexpr uint8_t kCpuEnabled = 1, kCpuBootstrap = 2;
constexpr uint8_t kApicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint32_t kCpuSignature = (6 << 8) | (1 << 4) | 1;  // family 6 model 1 stepping 1
constexpr uint32_t kCpuFeatures = (1 << 0) | (1 << 9);       // FPU, APIC
constexpr uint8_t kIsaBus = 0;
constexpr uint8_t kAllApics = 0xff;
constexpr uint16_t kInterruptConforming = 0;

}  // namespace

Result<std::vector<uint8_t>> BuildMptable(uint32_t vcpu_count, uint64_t table_address) {
  if (vcpu_count == 0 || vcpu_count > layout::kMaxVcpus) {
    return Status::Error("MP table: vcpu count " + std::to_string(vcpu_count) + " out of range");
  }
  std::vector<uint8_t> table(sizeof(FloatingPointer) + sizeof(ConfigHeader));
  uint16_t entries = 0;
  for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu) {
    ProcessorEntry processor{};
    processor.type = kProcessor;
    processor.apic_id = static_cast<uint8_t>(cpu);
    processor.apic_version = kApicVersion;
    processor.flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
    processor.signature = kCpuSignature;
    processor.feature_flags = kCpuFeatures;
    AppendBytes(table, processor);
    ++entries;
  }
  BusEntry bus{kBus, kIsaBus, {'I', 'S', 'A', ' ', ' ', ' '}};
  AppendBytes(table, bus);
  ++entries;
  const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);
  AppendBytes(table, IoapicEntry{kIoapic, ioapic_id, kIoapicVersion, kCpuEnabled,
                                 static_cast<uint32_t>(layout::kIoapicStart)});
  ++entries;
  // Line n arrives on IOAPIC pin n (KVM's default routing), for every pin:
  // virtio devices use lines above 15 too.
  for (uint8_t irq = 0; irq < layout::kIoapicPins; ++irq) {
    AppendBytes(table, InterruptEntry{kIoInterrupt, kInt, kInterruptConforming, kIsaBus, irq,
                                      ioapic_id, irq});
    ++entries;
  }
  AppendBytes(table, InterruptEntry{kLocalInterrupt, kExtInt, kInterruptConforming, kIsaBus, 0,
                                    kAllApics, 0});
  AppendBytes(
      table, InterruptEntry{kLocalInterrupt, kNmi, kInterruptConforming, kIsaBus, 0, kAllApics, 1});
  entries += 2;
  if (table.size() > layout::kMptableMaxSize) {
    return Status::Error("MP table of " + std::to_string(table.size()) + " bytes exceeds its area");
  }

  ConfigHeader header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.length = static_cast<uint16_t>(table.size() - sizeof(FloatingPointer));
  header.revision = 4;
  std::memcpy(header.oem, "EMBER   ", 8);
  std::memcpy(header.product, "MICROVM     ", 12);
  header.entry_count = entries;
  header.lapic_address = static_cast<uint32_t>(layout::kLapicStart);
  std::memcpy(table.data() + sizeof(FloatingPointer), &header, sizeof(header));
  uint8_t* config = table.data() + sizeof(FloatingPointer);
  config[offsetof(ConfigHeader, checksum)] = TableChecksum(config, header.length);

  FloatingPointer pointer{};
  std::memcpy(pointer.signature, "_MP_", 4);
  pointer.config_table = static_cast<uint32_t>(table_address + sizeof(FloatingPointer));
  pointer.length = 1;
  pointer.revision = 4;
  std::memcpy(table.data(), &pointer, sizeof(pointer));
  table[offsetof(FloatingPointer, checksum)] = TableChecksum(table.data(), sizeof(FloatingPointer));
  return table;
}

}  // namespace ember::x86
