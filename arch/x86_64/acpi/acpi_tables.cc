#include "arch/x86_64/acpi/acpi_tables.h"

#include <cstddef>
#include <cstring>

#include "arch/x86_64/acpi/aml.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/table_bytes.h"

namespace ember::x86 {
namespace {

// ---- table layouts (ACPI 6.x, 5.2) ----------------------------------------

#pragma pack(push, 1)
struct Rsdp {         // 5.2.5.3
  char signature[8];  // "RSD PTR "
  uint8_t checksum;   // of the first 20 bytes (the ACPI 1.0 part)
  char oem_id[6];
  uint8_t revision;  // 2: ACPI 2.0 and later, with the XSDT
  uint32_t rsdt_address;
  uint32_t length;
  uint64_t xsdt_address;
  uint8_t extended_checksum;  // of all 36 bytes
  uint8_t reserved[3];
};
struct SdtHeader {  // 5.2.6
  char signature[4];
  uint32_t length;
  uint8_t revision;
  uint8_t checksum;
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
struct GenericAddress {  // 5.2.3.2
  uint8_t space_id;
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;
  uint64_t address;
};
struct Fadt {  // 5.2.9, revision 6 (ACPI 6.0 to 6.5)
  SdtHeader header;
  uint32_t firmware_ctrl;
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;
  uint8_t acpi_enable;
  uint8_t acpi_disable;
  uint8_t s4bios_req;
  uint8_t pstate_cnt;
  uint32_t pm1a_evt_blk;
  uint32_t pm1b_evt_blk;
  uint32_t pm1a_cnt_blk;
  uint32_t pm1b_cnt_blk;
  uint32_t pm2_cnt_blk;
  uint32_t pm_tmr_blk;
  uint32_t gpe0_blk;
  uint32_t gpe1_blk;
  uint8_t pm1_evt_len;
  uint8_t pm1_cnt_len;
  uint8_t pm2_cnt_len;
  uint8_t pm_tmr_len;
  uint8_t gpe0_blk_len;
  uint8_t gpe1_blk_len;
  uint8_t gpe1_base;
  uint8_t cst_cnt;
  uint16_t p_lvl2_lat;
  uint16_t p_lvl3_lat;
  uint16_t flush_size;
  uint16_t flush_stride;
  uint8_t duty_offset;
  uint8_t duty_width;
  uint8_t day_alrm;
  uint8_t mon_alrm;
  uint8_t century;
  uint16_t iapc_boot_arch;
  uint8_t reserved1;
  uint32_t flags;
  GenericAddress reset_reg;
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t minor_version;
  uint64_t x_firmware_ctrl;
  uint64_t x_dsdt;
  GenericAddress x_pm1a_evt_blk;
  GenericAddress x_pm1b_evt_blk;
  GenericAddress x_pm1a_cnt_blk;
  GenericAddress x_pm1b_cnt_blk;
  GenericAddress x_pm2_cnt_blk;
  GenericAddress x_pm_tmr_blk;
  GenericAddress x_gpe0_blk;
  GenericAddress x_gpe1_blk;
  GenericAddress sleep_control_reg;
  GenericAddress sleep_status_reg;
  char hypervisor_vendor_identity[8];
};
struct MadtHeader {  // 5.2.12
  SdtHeader header;
  uint32_t local_apic_address;
  uint32_t flags;
};
struct MadtLocalApic {  // 5.2.12.2, type 0
  uint8_t type;
  uint8_t length;
  uint8_t processor_uid;
  uint8_t apic_id;
  uint32_t flags;
};
struct MadtIoApic {  // 5.2.12.3, type 1
  uint8_t type;
  uint8_t length;
  uint8_t ioapic_id;
  uint8_t reserved;
  uint32_t address;
  uint32_t gsi_base;
};
struct MadtLocalApicNmi {  // 5.2.12.7, type 4
  uint8_t type;
  uint8_t length;
  uint8_t processor_uid;
  uint16_t flags;
  uint8_t lint;
};
#pragma pack(pop)

static_assert(sizeof(Rsdp) == 36);
static_assert(sizeof(SdtHeader) == 36);
static_assert(sizeof(GenericAddress) == 12);
static_assert(offsetof(Fadt, flags) == 112);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, sleep_control_reg) == 244);
static_assert(offsetof(Fadt, hypervisor_vendor_identity) == 268);
static_assert(sizeof(Fadt) == 276);
static_assert(sizeof(MadtHeader) == 44);
static_assert(sizeof(MadtLocalApic) == 8);
static_assert(sizeof(MadtIoApic) == 12);
static_assert(sizeof(MadtLocalApicNmi) == 6);

// ---- constants ----------------------------------------------------------------

constexpr char kOemId[6] = {'E', 'M', 'B', 'E', 'R', ' '};
constexpr char kCreatorId[4] = {'E', 'M', 'B', 'R'};
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;

constexpr uint8_t kRsdpRevision = 2;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 5;  // ACPI 6.5's layout (the same since 6.0)
constexpr uint8_t kMadtRevision = 5;
constexpr uint8_t kDsdtRevision = 2;  // 2 and up: 64-bit AML integers

// FADT flags (5.2.9).
constexpr uint32_t kFadtPowerButtonIsDevice = 1 << 4;  // no fixed-feature power button
constexpr uint32_t kFadtSleepButtonIsDevice = 1 << 5;  // nor sleep button
constexpr uint32_t kFadtResetRegSupported = 1 << 10;
constexpr uint32_t kFadtHardwareReduced = 1 << 20;
// IA-PC boot architecture flags (5.2.9.3).
constexpr uint16_t kBootArch8042 = 1 << 1;  // ports 0x60/0x64 (reset, Ctrl-Alt-Del)
constexpr uint16_t kBootArchNoVga = 1 << 2;
constexpr uint16_t kBootArchNoMsi = 1 << 3;  // no PCI at all
constexpr uint16_t kBootArchNoCmosRtc = 1 << 5;
// Generic Address Structure: system I/O space, byte access.
constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasByteAccess = 1;

// MADT.
constexpr uint32_t kMadtPcatCompat = 1 << 0;  // KVM's irqchip has the dual 8259s too
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint32_t kLocalApicEnabled = 1 << 0;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint8_t kLint1 = 1;

constexpr uint64_t kTableAlignment = 16;
constexpr uint8_t kS5SleepType = 5;

// ---- helpers ------------------------------------------------------------------

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Fills in the header at the start of `table` (whose first 36 bytes are
// room for it), length and checksum included.
std::vector<uint8_t> Table(const char (&signature)[5], uint8_t revision,
                           std::vector<uint8_t> table) {
  SdtHeader header{};
  std::memcpy(header.signature, signature, 4);
  header.length = static_cast<uint32_t>(table.size());
  header.revision = revision;
  std::memcpy(header.oem_id, kOemId, sizeof(kOemId));
  std::memcpy(header.oem_table_id, "EMBR", 4);  // "EMBR" + signature: EMBRDSDT, ...
  std::memcpy(header.oem_table_id + 4, signature, 4);
  header.oem_revision = kOemRevision;
  std::memcpy(header.creator_id, kCreatorId, sizeof(kCreatorId));
  header.creator_revision = kCreatorRevision;
  std::memcpy(table.data(), &header, sizeof(header));
  table[offsetof(SdtHeader, checksum)] = TableChecksum(table.data(), table.size());
  return table;
}

GenericAddress IoPort(uint16_t port) {
  return GenericAddress{kGasSystemIo, 8, 0, kGasByteAccess, port};
}

// Device names: a letter and three hex digits ("C01F", "V007"); the
// index is below 0x1000 (CheckMachine).
std::string DeviceName(char letter, size_t index) {
  constexpr char kHex[] = "0123456789ABCDEF";
  return {letter, kHex[(index >> 8) & 0xf], kHex[(index >> 4) & 0xf], kHex[index & 0xf]};
}

// ---- the tables -------------------------------------------------------------

// A processor device; its _UID is the MADT local APIC's ACPI Processor UID.
aml::Term CpuDevice(uint32_t cpu) {
  aml::TermList body = {
      aml::Name("_HID", aml::String("ACPI0007")),
      aml::Name("_UID", aml::Integer(cpu)),
  };
  return aml::Device(DeviceName('C', cpu), std::move(body));
}

aml::Term Com1Device() {
  aml::TermList body = {
      aml::Name("_HID", aml::EisaId("PNP0501")),
      aml::Name("_UID", aml::Integer(0)),
      aml::Name("_CRS", aml::ResourceTemplate({
                            aml::Io(layout::kCom1Port, layout::kCom1Port, 1, 8),
                            aml::Interrupt(layout::kCom1Irq),
                        })),
  };
  return aml::Device("COM1", std::move(body));
}

// The i8042, keyboard only (ember's has no aux port): data, then command
// port. A hardware-reduced platform has no legacy PIC, so Linux maps no
// ISA line on its own: without this device its i8042 driver gets no
// keyboard interrupt (Ctrl-Alt-Del). The driver finds it through PnP,
// which the kernel parameter i8042.nopnp turns off.
aml::Term KeyboardDevice() {
  constexpr uint16_t kCommandPort = layout::kI8042Port + 4;
  aml::TermList body = {
      aml::Name("_HID", aml::EisaId("PNP0303")),
      aml::Name("_CRS", aml::ResourceTemplate({
                            aml::Io(layout::kI8042Port, layout::kI8042Port, 1, 1),
                            aml::Io(kCommandPort, kCommandPort, 1, 1),
                            aml::Interrupt(layout::kI8042Irq),
                        })),
  };
  return aml::Device("PS2K", std::move(body));
}

// A virtio-mmio transport; Linux's virtio_mmio driver matches "LNRO0005".
aml::Term VirtioDevice(size_t index, const AcpiVirtioMmioDevice& device) {
  const auto base = static_cast<uint32_t>(device.base);
  const auto size = static_cast<uint32_t>(device.size);
  aml::TermList body = {
      aml::Name("_HID", aml::String("LNRO0005")),
      aml::Name("_UID", aml::Integer(index)),
      aml::Name("_CRS", aml::ResourceTemplate({
                            aml::Memory32Fixed(base, size),
                            aml::Interrupt(device.irq),
                        })),
  };
  return aml::Device(DeviceName('V', index), std::move(body));
}

Result<std::vector<uint8_t>> BuildDsdt(const AcpiMachine& machine) {
  aml::TermList devices;
  for (uint32_t cpu = 0; cpu < machine.vcpu_count; ++cpu) devices.push_back(CpuDevice(cpu));
  devices.push_back(Com1Device());
  devices.push_back(KeyboardDevice());
  for (size_t i = 0; i < machine.virtio_devices.size(); ++i) {
    devices.push_back(VirtioDevice(i, machine.virtio_devices[i]));
  }
  // S5 (soft off): SLP_TYPa, SLP_TYPb and two reserved values; on a
  // hardware-reduced platform SLP_TYPa goes to SLEEP_CONTROL_REG.
  aml::Term s5 =
      aml::Package({aml::Integer(kS5SleepType), aml::Integer(0), aml::Integer(0), aml::Integer(0)});
  aml::Term body = aml::Concat({
      aml::Scope("\\_SB", std::move(devices)),
      aml::Name("\\_S5", std::move(s5)),
  });
  EMBER_ASSIGN_OR_RETURN(std::vector<uint8_t> aml_bytes, body.Encode());
  std::vector<uint8_t> table(sizeof(SdtHeader));
  table.insert(table.end(), aml_bytes.begin(), aml_bytes.end());
  return Table("DSDT", kDsdtRevision, std::move(table));
}

std::vector<uint8_t> BuildMadt(const AcpiMachine& machine) {
  std::vector<uint8_t> table(sizeof(MadtHeader));
  MadtHeader madt{};
  madt.local_apic_address = static_cast<uint32_t>(layout::kLapicStart);
  madt.flags = kMadtPcatCompat;
  std::memcpy(table.data(), &madt, sizeof(madt));
  for (uint32_t cpu = 0; cpu < machine.vcpu_count; ++cpu) {
    const auto id = static_cast<uint8_t>(cpu);
    AppendBytes(table,
                MadtLocalApic{kMadtLocalApic, sizeof(MadtLocalApic), id, id, kLocalApicEnabled});
  }
  // The IOAPIC's ID follows the vCPUs', as in the MP table; GSI n is pin n.
  AppendBytes(table,
              MadtIoApic{kMadtIoApic, sizeof(MadtIoApic), static_cast<uint8_t>(machine.vcpu_count),
                         0, static_cast<uint32_t>(layout::kIoapicStart), 0});
  // LINT1 of every local APIC is the NMI input (flags 0: bus-conforming).
  AppendBytes(table, MadtLocalApicNmi{kMadtLocalApicNmi, sizeof(MadtLocalApicNmi), kAllProcessors,
                                      0, kLint1});
  return Table("APIC", kMadtRevision, std::move(table));
}

std::vector<uint8_t> BuildFadt(uint64_t dsdt_address) {
  Fadt fadt{};
  fadt.flags = kFadtHardwareReduced | kFadtResetRegSupported | kFadtPowerButtonIsDevice |
               kFadtSleepButtonIsDevice;
  fadt.iapc_boot_arch = kBootArch8042 | kBootArchNoVga | kBootArchNoMsi | kBootArchNoCmosRtc;
  fadt.reset_reg = IoPort(layout::kAcpiResetPort);
  fadt.reset_value = layout::kAcpiResetValue;
  fadt.minor_version = kFadtMinorVersion;
  // No FACS (allowed when hardware-reduced); the DSDT only through X_DSDT.
  fadt.x_dsdt = dsdt_address;
  fadt.sleep_control_reg = IoPort(layout::kAcpiSleepControlPort);
  fadt.sleep_status_reg = IoPort(layout::kAcpiSleepStatusPort);
  std::memcpy(fadt.hypervisor_vendor_identity, "EMBER   ", 8);
  std::vector<uint8_t> table;
  AppendBytes(table, fadt);
  return Table("FACP", kFadtRevision, std::move(table));
}

std::vector<uint8_t> BuildXsdt(const std::vector<uint64_t>& entries) {
  std::vector<uint8_t> table(sizeof(SdtHeader));
  for (uint64_t entry : entries) AppendBytes(table, entry);
  return Table("XSDT", kXsdtRevision, std::move(table));
}

std::vector<uint8_t> BuildRsdp(uint64_t xsdt_address) {
  Rsdp rsdp{};
  std::memcpy(rsdp.signature, "RSD PTR ", 8);
  std::memcpy(rsdp.oem_id, kOemId, sizeof(kOemId));
  rsdp.revision = kRsdpRevision;
  rsdp.length = sizeof(Rsdp);
  rsdp.xsdt_address = xsdt_address;  // no RSDT: ACPI 2.0+ guests use the XSDT
  auto* bytes = reinterpret_cast<uint8_t*>(&rsdp);
  rsdp.checksum = TableChecksum(bytes, 20);
  rsdp.extended_checksum = TableChecksum(bytes, sizeof(Rsdp));
  std::vector<uint8_t> out;
  AppendBytes(out, rsdp);
  return out;
}

Status CheckMachine(const AcpiMachine& machine) {
  if (machine.vcpu_count == 0 || machine.vcpu_count > layout::kMaxVcpus) {
    return Status::Error("vcpu count " + std::to_string(machine.vcpu_count) + " out of range");
  }
  for (size_t i = 0; i < machine.virtio_devices.size(); ++i) {
    const AcpiVirtioMmioDevice& device = machine.virtio_devices[i];
    const std::string which = "virtio-mmio device " + std::to_string(i);
    if (device.size == 0 || device.base + device.size > (uint64_t{1} << 32) ||
        device.base + device.size < device.base) {
      return Status::Error(which + " is not a window below 4 GiB");
    }
    if (device.irq >= layout::kIoapicPins) {
      return Status::Error(which + ": line " + std::to_string(device.irq) +
                           " is not an IOAPIC pin");
    }
  }
  if (machine.virtio_devices.size() > 0xfff) return Status::Error("too many virtio-mmio devices");
  return Status::Ok();
}

}  // namespace

std::vector<AcpiVirtioMmioDevice> VirtioMmioSlots(size_t count) {
  std::vector<AcpiVirtioMmioDevice> slots;
  for (size_t slot = 0; slot < count && slot < layout::kMaxVirtioDevices; ++slot) {
    slots.push_back({layout::kVirtioMmioStart + slot * layout::kVirtioMmioSlotSize,
                     layout::kVirtioMmioSlotSize, layout::kVirtioIrqs[slot]});
  }
  return slots;
}

Result<AcpiTables> BuildAcpiTables(const AcpiMachine& machine) {
  EMBER_RETURN_IF_ERROR(CheckMachine(machine).Context("ACPI tables"));
  Result<std::vector<uint8_t>> dsdt = BuildDsdt(machine);
  if (!dsdt.ok()) return dsdt.status().Context("ACPI tables: DSDT");
  std::vector<uint8_t> madt = BuildMadt(machine);

  // Addresses first (the FADT, XSDT and RSDP point at the others).
  constexpr size_t kXsdtEntries = 2;  // FADT, MADT (the FADT leads to the DSDT)
  const uint64_t rsdp_address = layout::kAcpiStart;
  const uint64_t xsdt_address = AlignUp(rsdp_address + sizeof(Rsdp), kTableAlignment);
  const uint64_t fadt_address =
      AlignUp(xsdt_address + sizeof(SdtHeader) + kXsdtEntries * sizeof(uint64_t), kTableAlignment);
  const uint64_t madt_address = AlignUp(fadt_address + sizeof(Fadt), kTableAlignment);
  const uint64_t dsdt_address = AlignUp(madt_address + madt.size(), kTableAlignment);
  const uint64_t end = dsdt_address + dsdt->size();
  if (end > layout::kAcpiStart + layout::kAcpiMaxSize) {
    return Status::Error("ACPI tables: " + std::to_string(end - layout::kAcpiStart) +
                         " bytes exceed their area of " + std::to_string(layout::kAcpiMaxSize));
  }

  AcpiTables tables;
  tables.rsdp_address = rsdp_address;
  tables.tables.push_back({"RSD PTR ", rsdp_address, BuildRsdp(xsdt_address)});
  tables.tables.push_back({"XSDT", xsdt_address, BuildXsdt({fadt_address, madt_address})});
  tables.tables.push_back({"FACP", fadt_address, BuildFadt(dsdt_address)});
  tables.tables.push_back({"APIC", madt_address, std::move(madt)});
  tables.tables.push_back({"DSDT", dsdt_address, std::move(*dsdt)});
  return tables;
}

Result<uint64_t> WriteAcpiTables(GuestMemory& memory, const AcpiMachine& machine) {
  EMBER_ASSIGN_OR_RETURN(AcpiTables tables, BuildAcpiTables(machine));
  for (const AcpiTable& table : tables.tables) {
    EMBER_RETURN_IF_ERROR(
        memory.Write(table.guest_address, table.bytes).Context("ACPI table " + table.signature));
  }
  return tables.rsdp_address;
}

}  // namespace ember::x86
