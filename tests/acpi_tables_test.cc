// ACPI tables: headers, checksums, lengths and cross-pointers checked here,
// and every table handed to an independent parser, the disassembler of
// ACPICA's iasl (acpica-tools, installed by scripts/install-deps.sh).
#include "arch/x86_64/acpi/acpi_tables.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <regex>
#include <string>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "tests/test_util.h"

namespace ember::x86 {
namespace {

uint8_t Sum(const std::vector<uint8_t>& bytes, size_t length) {
  return static_cast<uint8_t>(std::accumulate(bytes.begin(), bytes.begin() + length, 0u));
}

template <typename T>
T At(const std::vector<uint8_t>& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

std::string Text(const std::vector<uint8_t>& bytes, size_t offset, size_t length) {
  return std::string(reinterpret_cast<const char*>(bytes.data()) + offset, length);
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

const AcpiTable& Find(const AcpiTables& tables, const std::string& signature) {
  for (const AcpiTable& table : tables.tables) {
    if (table.signature == signature) return table;
  }
  ADD_FAILURE() << "no table " << signature;
  static const AcpiTable kNone{};
  return kNone;
}

// The generic address structure at `offset`: space, width, offset, access, address.
void ExpectIoRegister(const std::vector<uint8_t>& fadt, size_t offset, uint16_t port) {
  EXPECT_EQ(fadt[offset], 1) << "system I/O space at FADT offset " << offset;
  EXPECT_EQ(fadt[offset + 1], 8) << "bit width at " << offset;
  EXPECT_EQ(fadt[offset + 2], 0) << "bit offset at " << offset;
  EXPECT_EQ(fadt[offset + 3], 1) << "byte access at " << offset;
  EXPECT_EQ(At<uint64_t>(fadt, offset + 4), port) << "port at " << offset;
}

struct Board {
  uint32_t vcpus;
  size_t virtio;
};

class AcpiTablesTest : public ::testing::TestWithParam<Board> {
 protected:
  void SetUp() override {
    AcpiMachine machine;
    machine.vcpu_count = GetParam().vcpus;
    machine.virtio_devices = VirtioMmioSlots(GetParam().virtio);
    Result<AcpiTables> built = BuildAcpiTables(machine);
    ASSERT_TRUE(built.ok()) << built.status().message();
    tables_ = std::move(*built);
  }
  AcpiTables tables_;
};

TEST_P(AcpiTablesTest, RsdpIsWhereGuestsSearchWithBothChecksums) {
  const AcpiTable& rsdp = Find(tables_, "RSD PTR ");
  EXPECT_EQ(tables_.rsdp_address, rsdp.guest_address);
  EXPECT_EQ(rsdp.guest_address % 16, 0u);
  EXPECT_GE(rsdp.guest_address, 0xe0000u);
  EXPECT_LT(rsdp.guest_address, 0x100000u);
  ASSERT_EQ(rsdp.bytes.size(), 36u);
  EXPECT_EQ(Text(rsdp.bytes, 0, 8), "RSD PTR ");
  EXPECT_EQ(Sum(rsdp.bytes, 20), 0) << "ACPI 1.0 checksum";
  EXPECT_EQ(Sum(rsdp.bytes, 36), 0) << "extended checksum";
  EXPECT_EQ(Text(rsdp.bytes, 9, 6), "EMBER ");
  EXPECT_EQ(rsdp.bytes[15], 2) << "revision";
  EXPECT_EQ(At<uint32_t>(rsdp.bytes, 20), 36u) << "length";
  EXPECT_EQ(At<uint64_t>(rsdp.bytes, 24), Find(tables_, "XSDT").guest_address);
}

TEST_P(AcpiTablesTest, EveryTableHasItsHeaderLengthAndChecksum) {
  const std::map<std::string, uint8_t> revisions = {
      {"XSDT", 1}, {"FACP", 6}, {"APIC", 5}, {"DSDT", 2}};
  ASSERT_EQ(tables_.tables.size(), 5u);
  uint64_t previous_end = 0;
  for (const AcpiTable& table : tables_.tables) {
    SCOPED_TRACE(table.signature);
    // In the area, in order, apart.
    EXPECT_GE(table.guest_address, layout::kAcpiStart);
    EXPECT_LE(table.guest_address + table.bytes.size(), layout::kAcpiStart + layout::kAcpiMaxSize);
    EXPECT_GE(table.guest_address, previous_end);
    EXPECT_EQ(table.guest_address % 8, 0u);
    previous_end = table.guest_address + table.bytes.size();
    if (table.signature == "RSD PTR ") continue;
    ASSERT_GE(table.bytes.size(), 36u);
    EXPECT_EQ(Text(table.bytes, 0, 4), table.signature);
    EXPECT_EQ(At<uint32_t>(table.bytes, 4), table.bytes.size()) << "length";
    EXPECT_EQ(table.bytes[8], revisions.at(table.signature)) << "revision";
    EXPECT_EQ(Sum(table.bytes, table.bytes.size()), 0) << "checksum";
    EXPECT_EQ(Text(table.bytes, 10, 6), "EMBER ");
    EXPECT_EQ(Text(table.bytes, 16, 8), "EMBR" + table.signature);
    EXPECT_EQ(At<uint32_t>(table.bytes, 24), 1u) << "OEM revision";
    EXPECT_EQ(Text(table.bytes, 28, 4), "EMBR");
    EXPECT_EQ(At<uint32_t>(table.bytes, 32), 1u) << "creator revision";
  }
}

TEST_P(AcpiTablesTest, XsdtLeadsToFadtAndMadtAndFadtToDsdt) {
  const AcpiTable& xsdt = Find(tables_, "XSDT");
  ASSERT_EQ(xsdt.bytes.size(), 36u + 2 * 8);
  EXPECT_EQ(At<uint64_t>(xsdt.bytes, 36), Find(tables_, "FACP").guest_address);
  EXPECT_EQ(At<uint64_t>(xsdt.bytes, 44), Find(tables_, "APIC").guest_address);
  const std::vector<uint8_t>& fadt = Find(tables_, "FACP").bytes;
  EXPECT_EQ(At<uint32_t>(fadt, 40), 0u) << "32-bit DSDT: only X_DSDT is used";
  EXPECT_EQ(At<uint64_t>(fadt, 140), Find(tables_, "DSDT").guest_address) << "X_DSDT";
  EXPECT_EQ(At<uint32_t>(fadt, 36), 0u) << "no FACS";
  EXPECT_EQ(At<uint64_t>(fadt, 132), 0u) << "no X_FACS";
}

TEST_P(AcpiTablesTest, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  const std::vector<uint8_t>& fadt = Find(tables_, "FACP").bytes;
  ASSERT_EQ(fadt.size(), 276u);
  const uint32_t flags = At<uint32_t>(fadt, 112);
  EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
  EXPECT_EQ(At<uint16_t>(fadt, 109), (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5))
      << "IAPC_BOOT_ARCH: 8042, no VGA, no MSI, no CMOS RTC";
  ExpectIoRegister(fadt, 116, layout::kAcpiResetPort);
  EXPECT_EQ(fadt[128], layout::kAcpiResetValue);
  EXPECT_EQ(fadt[131], 5) << "FADT minor version";
  ExpectIoRegister(fadt, 244, layout::kAcpiSleepControlPort);
  ExpectIoRegister(fadt, 256, layout::kAcpiSleepStatusPort);
  EXPECT_EQ(Text(fadt, 268, 8), "EMBER   ") << "hypervisor vendor identity";
}

TEST_P(AcpiTablesTest, MadtListsEveryVcpuAndTheIoapic) {
  const std::vector<uint8_t>& madt = Find(tables_, "APIC").bytes;
  EXPECT_EQ(At<uint32_t>(madt, 36), 0xfee00000u);
  EXPECT_EQ(At<uint32_t>(madt, 40), 1u) << "PCAT_COMPAT";
  uint32_t cpus = 0, ioapics = 0, nmis = 0;
  size_t offset = 44;
  while (offset + 2 <= madt.size()) {
    const uint8_t type = madt[offset], length = madt[offset + 1];
    ASSERT_GE(length, 2) << "entry at " << offset;
    ASSERT_LE(offset + length, madt.size());
    if (type == 0) {
      ASSERT_EQ(length, 8);
      EXPECT_EQ(madt[offset + 2], cpus) << "ACPI processor UID";
      EXPECT_EQ(madt[offset + 3], cpus) << "APIC ID";
      EXPECT_EQ(At<uint32_t>(madt, offset + 4), 1u) << "enabled";
      ++cpus;
    } else if (type == 1) {
      ASSERT_EQ(length, 12);
      EXPECT_EQ(madt[offset + 2], GetParam().vcpus) << "IOAPIC ID after the vCPUs'";
      EXPECT_EQ(At<uint32_t>(madt, offset + 4), layout::kIoapicStart);
      EXPECT_EQ(At<uint32_t>(madt, offset + 8), 0u) << "GSI base";
      ++ioapics;
    } else if (type == 4) {
      ASSERT_EQ(length, 6);
      EXPECT_EQ(madt[offset + 2], 0xff) << "all processors";
      EXPECT_EQ(madt[offset + 5], 1) << "LINT1";
      ++nmis;
    } else {
      ADD_FAILURE() << "unexpected MADT entry type " << int{type};
    }
    offset += length;
  }
  EXPECT_EQ(offset, madt.size());
  EXPECT_EQ(cpus, GetParam().vcpus);
  EXPECT_EQ(ioapics, 1u);
  EXPECT_EQ(nmis, 1u);
}

TEST_P(AcpiTablesTest, DsdtNamesCpusCom1I8042VirtioDevicesAndS5) {
  const std::vector<uint8_t>& dsdt = Find(tables_, "DSDT").bytes;
  const std::string aml = Text(dsdt, 36, dsdt.size() - 36);
  EXPECT_EQ(Count(aml, std::string("\x0d"
                                   "ACPI0007\0",
                                   10)),
            GetParam().vcpus);
  EXPECT_EQ(Count(aml, std::string("\x0d"
                                   "LNRO0005\0",
                                   10)),
            GetParam().virtio);
  // COM1 and the i8042: _HID EisaId("PNP0501") and EisaId("PNP0303") as
  // DWordConsts; their ports and lines.
  EXPECT_EQ(Count(aml, "\x0c\x41\xd0\x05\x01"), 1u);
  EXPECT_EQ(Count(aml, "\x0c\x41\xd0\x03\x03"), 1u);
  EXPECT_EQ(Count(aml, std::string("\x47\x01\xf8\x03\xf8\x03\x01\x08"
                                   "\x89\x06\x00\x03\x01\x04\x00\x00\x00",
                                   17)),
            1u);
  EXPECT_EQ(Count(aml, std::string("\x47\x01\x60\x00\x60\x00\x01\x01"
                                   "\x47\x01\x64\x00\x64\x00\x01\x01"
                                   "\x89\x06\x00\x03\x01\x01\x00\x00\x00",
                                   25)),
            1u);
  // Name(\_S5_, Package(4) {5, 0, 0, 0}).
  EXPECT_EQ(Count(aml, std::string("\x08\\_S5_\x12\x07\x04\x0a\x05\x00\x00\x00", 14)), 1u);
  // Each virtio device's window and line, as Memory32Fixed and Interrupt.
  for (size_t slot = 0; slot < GetParam().virtio; ++slot) {
    const uint32_t base = static_cast<uint32_t>(layout::kVirtioMmioStart + slot * 0x1000);
    std::string memory = "\x86\x09";
    memory += std::string("\x00\x01", 2);
    memory += std::string(reinterpret_cast<const char*>(&base), 4);
    memory += std::string("\x00\x10\x00\x00", 4);
    std::string interrupt = std::string("\x89\x06\x00\x03\x01", 5) +
                            static_cast<char>(layout::kVirtioIrqs[slot]) + std::string(3, '\0');
    EXPECT_EQ(Count(aml, memory + interrupt), 1u) << "slot " << slot;
  }
}

// ---- iasl -------------------------------------------------------------------

std::string FindIasl() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    std::string path = std::string(dir) + "/iasl";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

struct IaslRun {
  int exit_code;
  std::string messages;  // iasl's stdout and stderr
  std::string output;    // the file it wrote
};

// Runs iasl with `options` on dir/`input`, its output named by the prefix
// dir/`output_stem` (iasl adds the extension: .dsl or .aml).
IaslRun RunIasl(const std::string& iasl, const testing::TempDir& dir,
                std::vector<std::string> options, const std::string& input,
                const std::string& output) {
  std::vector<std::string> argv = {iasl};
  argv.insert(argv.end(), options.begin(), options.end());
  const std::string stem = output.substr(0, output.rfind('.'));
  argv.insert(argv.end(), {"-p", dir.File(stem), dir.File(input)});
  testing::ProcessResult result = testing::RunProcess(argv, 30000);
  return {result.exit_code, result.out + result.err, testing::ReadFile(dir.File(output))};
}

std::vector<uint8_t> Bytes(const std::string& text) { return {text.begin(), text.end()}; }

// A table with the fields a recompilation rewrites zeroed: the checksum
// and iasl's own creator ID and revision.
std::vector<uint8_t> WithoutCompilerFields(std::vector<uint8_t> table) {
  if (table.size() < 36) return table;
  table[9] = 0;
  std::fill(table.begin() + 28, table.begin() + 36, 0);
  return table;
}

// Every table but the RSDP goes through `iasl -d` (which must parse it
// without a complaint), and the disassembly back through the compiler
// with optimizations off (-oa), which must give the same bytes. iasl
// 20200925 (Debian 12) does not disassemble a binary RSDP, so the RSDP's
// fields are written out as iasl's data-table source instead, and iasl's
// compilation of them (it computes both checksums) must equal ember's.
TEST_P(AcpiTablesTest, IaslParsesEveryTableAndRebuildsTheSameBytes) {
  const std::string iasl = FindIasl();
  ASSERT_FALSE(iasl.empty()) << "iasl not found: install acpica-tools (scripts/install-deps.sh)";
  testing::TempDir dir;
  const std::regex complaint("error|warning|invalid|incorrect|unknown|bad ", std::regex::icase);
  const std::string compiled_cleanly = "Compilation successful. 0 Errors, 0 Warnings, 0 Remarks";
  for (const AcpiTable& table : tables_.tables) {
    SCOPED_TRACE(table.signature);
    if (table.signature == "RSD PTR ") {
      char source[512];
      std::snprintf(source, sizeof(source),
                    "[0008] Signature : \"RSD PTR \"\n"
                    "[0001] Checksum : 00\n"
                    "[0006] Oem ID : \"EMBER \"\n"
                    "[0001] Revision : 02\n"
                    "[0004] RSDT Address : 00000000\n"
                    "[0004] Length : 00000024\n"
                    "[0008] XSDT Address : %016llX\n"
                    "[0001] Extended Checksum : 00\n"
                    "[0003] Reserved : 000000\n",
                    static_cast<unsigned long long>(Find(tables_, "XSDT").guest_address));
      testing::WriteFile(dir.File("rsdp.asl"), std::string(source));
      IaslRun compiled = RunIasl(iasl, dir, {}, "rsdp.asl", "rsdp_iasl.aml");
      EXPECT_EQ(compiled.exit_code, 0) << compiled.messages;
      EXPECT_NE(compiled.messages.find(compiled_cleanly), std::string::npos) << compiled.messages;
      EXPECT_EQ(Bytes(compiled.output), table.bytes);
      continue;
    }

    const std::string name = table.signature;
    testing::WriteFile(dir.File(name + ".dat"), table.bytes);
    IaslRun disassembled = RunIasl(iasl, dir, {"-d"}, name + ".dat", name + ".dsl");
    EXPECT_EQ(disassembled.exit_code, 0) << disassembled.messages;
    EXPECT_FALSE(std::regex_search(disassembled.messages, complaint)) << disassembled.messages;
    const std::string& dsl = disassembled.output;
    ASSERT_FALSE(dsl.empty()) << disassembled.messages;
    EXPECT_FALSE(std::regex_search(dsl, complaint)) << dsl;

    if (name == "APIC") {
      EXPECT_EQ(Count(dsl, "[Processor Local APIC]"), GetParam().vcpus) << dsl;
      for (uint32_t cpu = 0; cpu < GetParam().vcpus; ++cpu) {
        char id[64];
        std::snprintf(id, sizeof(id), "Local Apic ID : %02X", cpu);
        EXPECT_NE(dsl.find(id), std::string::npos) << id << "\n" << dsl;
      }
      EXPECT_EQ(Count(dsl, "[I/O APIC]"), 1u) << dsl;
    } else if (name == "DSDT") {
      for (uint32_t cpu = 0; cpu < GetParam().vcpus; ++cpu) {
        char device[32];
        std::snprintf(device, sizeof(device), "Device (C%03X)", cpu);
        EXPECT_NE(dsl.find(device), std::string::npos) << device << "\n" << dsl;
      }
      EXPECT_EQ(Count(dsl, "\"ACPI0007\""), GetParam().vcpus);
      EXPECT_EQ(Count(dsl, "\"LNRO0005\""), GetParam().virtio) << dsl;
      for (size_t slot = 0; slot < GetParam().virtio; ++slot) {
        char device[32];
        std::snprintf(device, sizeof(device), "Device (V%03zX)", slot);
        EXPECT_NE(dsl.find(device), std::string::npos) << device << "\n" << dsl;
      }
      EXPECT_NE(dsl.find("EisaId (\"PNP0501\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("EisaId (\"PNP0303\")"), std::string::npos) << dsl;
      EXPECT_NE(dsl.find("Name (\\_S5, Package (0x04)"), std::string::npos) << dsl;
    } else if (name == "FACP") {
      EXPECT_NE(dsl.find("Hardware Reduced (V5) : 1"), std::string::npos) << dsl;
    }

    IaslRun recompiled = RunIasl(iasl, dir, {"-oa"}, name + ".dsl", name + "_iasl.aml");
    EXPECT_EQ(recompiled.exit_code, 0) << recompiled.messages;
    EXPECT_NE(recompiled.messages.find(compiled_cleanly), std::string::npos) << recompiled.messages;
    EXPECT_EQ(WithoutCompilerFields(Bytes(recompiled.output)), WithoutCompilerFields(table.bytes));
  }
}

INSTANTIATE_TEST_SUITE_P(VcpusAndDevices, AcpiTablesTest,
                         ::testing::Values(Board{1, 0}, Board{1, 1}, Board{1, 8}, Board{2, 0},
                                           Board{2, 1}, Board{2, 8}, Board{32, 0}, Board{32, 1},
                                           Board{32, 8}),
                         [](const auto& info) {
                           return std::to_string(info.param.vcpus) + "vcpu_" +
                                  std::to_string(info.param.virtio) + "virtio";
                         });

TEST(AcpiTablesLimitsTest, RefusesMachinesItCannotDescribe) {
  AcpiMachine machine;
  machine.vcpu_count = 0;
  EXPECT_FALSE(BuildAcpiTables(machine).ok());
  machine.vcpu_count = layout::kMaxVcpus + 1;
  EXPECT_FALSE(BuildAcpiTables(machine).ok());
  machine.vcpu_count = 1;
  machine.virtio_devices = {{0xffff'f000, 0x2000, 5}};
  Result<AcpiTables> above = BuildAcpiTables(machine);
  ASSERT_FALSE(above.ok());
  EXPECT_NE(above.status().message().find("virtio-mmio device 0"), std::string::npos)
      << above.status().message();
  machine.virtio_devices = {{layout::kVirtioMmioStart, 0x1000, layout::kIoapicPins}};
  Result<AcpiTables> pin = BuildAcpiTables(machine);
  ASSERT_FALSE(pin.ok());
  EXPECT_NE(pin.status().message().find("not an IOAPIC pin"), std::string::npos);
}

TEST(AcpiTablesLimitsTest, LargestBoardFitsItsArea) {
  AcpiMachine machine;
  machine.vcpu_count = layout::kMaxVcpus;
  machine.virtio_devices = VirtioMmioSlots(layout::kMaxVirtioDevices);
  ASSERT_EQ(machine.virtio_devices.size(), layout::kMaxVirtioDevices);
  Result<AcpiTables> tables = BuildAcpiTables(machine);
  ASSERT_TRUE(tables.ok()) << tables.status().message();
  const AcpiTable& last = tables->tables.back();
  EXPECT_LE(last.guest_address + last.bytes.size(), layout::kAcpiStart + layout::kAcpiMaxSize);
}

TEST(AcpiTablesMemoryTest, WritesEveryTableIntoGuestMemory) {
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(16 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  AcpiMachine machine;
  machine.vcpu_count = 2;
  machine.virtio_devices = VirtioMmioSlots(1);
  Result<uint64_t> rsdp = WriteAcpiTables(*memory, machine);
  ASSERT_TRUE(rsdp.ok()) << rsdp.status().message();
  EXPECT_EQ(*rsdp, layout::kAcpiStart);
  Result<AcpiTables> tables = BuildAcpiTables(machine);
  ASSERT_TRUE(tables.ok());
  for (const AcpiTable& table : tables->tables) {
    std::vector<uint8_t> read(table.bytes.size());
    ASSERT_TRUE(memory->Read(table.guest_address, read).ok());
    EXPECT_EQ(read, table.bytes) << table.signature;
  }
}

}  // namespace
}  // namespace ember::x86
