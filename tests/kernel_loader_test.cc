#include "arch/x86_64/kernel_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "base/unique_fd.h"
#include "tests/test_util.h"

namespace ember::x86 {
namespace {

struct Segment {
  uint64_t paddr;
  std::vector<uint8_t> bytes;
  uint64_t memsz;
};

template <typename T>
void Put(std::vector<uint8_t>& out, size_t offset, const T& value) {
  if (out.size() < offset + sizeof(T)) out.resize(offset + sizeof(T));
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

std::vector<uint8_t> MakeElf(uint64_t entry, const std::vector<Segment>& segments,
                             std::optional<uint32_t> pvh_entry) {
  std::vector<uint8_t> file;
  size_t phnum = segments.size() + (pvh_entry ? 1 : 0);
  Elf64_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS64;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_ident[EI_VERSION] = EV_CURRENT;
  ehdr.e_type = ET_EXEC;
  ehdr.e_machine = EM_X86_64;
  ehdr.e_entry = entry;
  ehdr.e_phoff = sizeof(Elf64_Ehdr);
  ehdr.e_phentsize = sizeof(Elf64_Phdr);
  ehdr.e_phnum = static_cast<uint16_t>(phnum);
  Put(file, 0, ehdr);
  size_t data_offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
  for (size_t i = 0; i < segments.size(); ++i) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_offset = data_offset;
    ph.p_paddr = ph.p_vaddr = segments[i].paddr;
    ph.p_filesz = segments[i].bytes.size();
    ph.p_memsz = segments[i].memsz;
    Put(file, sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), ph);
    file.resize(data_offset);
    file.insert(file.end(), segments[i].bytes.begin(), segments[i].bytes.end());
    data_offset = file.size();
  }
  if (pvh_entry) {
    // An unrelated note first, then Xen's PHYS32_ENTRY.
    std::vector<uint8_t> notes;
    Put(notes, 0, Elf64_Nhdr{4, 4, 1});
    Put(notes, 12, std::array<char, 4>{'G', 'N', 'U', 0});
    Put(notes, 16, uint32_t{0});
    Put(notes, 20, Elf64_Nhdr{4, 4, 18});
    Put(notes, 32, std::array<char, 4>{'X', 'e', 'n', 0});
    Put(notes, 36, *pvh_entry);
    Elf64_Phdr ph{};
    ph.p_type = PT_NOTE;
    ph.p_offset = data_offset;
    ph.p_filesz = notes.size();
    Put(file, sizeof(Elf64_Ehdr) + segments.size() * sizeof(Elf64_Phdr), ph);
    file.insert(file.end(), notes.begin(), notes.end());
  }
  return file;
}

std::vector<uint8_t> MakeBzImage(size_t payload_size, uint16_t version = 0x020f,
                                 uint16_t xloadflags = XLF_KERNEL_64, uint32_t init_size = 0) {
  const uint8_t setup_sects = 1;
  std::vector<uint8_t> file((setup_sects + 1) * 512, 0);
  setup_header header{};
  header.setup_sects = setup_sects;
  header.boot_flag = 0xaa55;
  header.header = 0x53726448;
  header.version = version;
  header.loadflags = LOADED_HIGH;
  header.xloadflags = xloadflags;
  header.syssize = static_cast<uint32_t>((payload_size + 15) / 16);
  header.pref_address = layout::kHighMemoryStart;
  header.relocatable_kernel = 1;
  header.cmdline_size = 255;
  header.initrd_addr_max = 0x37ffffff;
  header.init_size = init_size;
  std::memcpy(file.data() + 0x1f1, &header, sizeof(header));
  for (size_t i = 0; i < header.syssize * 16; ++i) file.push_back(static_cast<uint8_t>(i * 7));
  return file;
}

class KernelLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(64 * layout::kMiB));
    ASSERT_TRUE(memory.ok());
    memory_ = std::make_unique<GuestMemory>(std::move(*memory));
  }
  Result<LoadedKernel> Load(const std::vector<uint8_t>& bytes) {
    std::string path = dir_.File("kernel");
    testing::WriteFile(path, bytes);
    UniqueFd fd(open(path.c_str(), O_RDONLY));
    return LoadKernel(*memory_, fd.get(), bytes.size());
  }
  std::string ErrorOf(const std::vector<uint8_t>& bytes) {
    Result<LoadedKernel> kernel = Load(bytes);
    EXPECT_FALSE(kernel.ok());
    return kernel.ok() ? "" : kernel.status().message();
  }
  Result<InitrdPlacement> PlaceInitrd(size_t size, const LoadedKernel& kernel) {
    std::string path = dir_.File("initrd");
    testing::WriteFile(path, std::vector<uint8_t>(size, 0xab));
    UniqueFd fd(open(path.c_str(), O_RDONLY));
    return LoadInitrd(*memory_, fd.get(), size, kernel);
  }

  testing::TempDir dir_;
  std::unique_ptr<GuestMemory> memory_;
};

TEST_F(KernelLoaderTest, LoadsElfSegmentsAtTheirPhysicalAddresses) {
  std::vector<uint8_t> code = {0x90, 0x90, 0xf4};
  Result<LoadedKernel> kernel = Load(
      MakeElf(0x200001, {{0x200000, code, 0x3000}, {0x400000, {1, 2, 3, 4}, 4}}, std::nullopt));
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_EQ(kernel->format, KernelFormat::kElf64);
  EXPECT_EQ(kernel->entry, 0x200001u);
  EXPECT_EQ(kernel->end, 0x400004u);
  EXPECT_EQ(std::memcmp(memory_->HostAddress(0x200000, 3), code.data(), 3), 0);
  EXPECT_EQ(*memory_->HostAddress(0x400003, 1), 4);
  EXPECT_EQ(*memory_->HostAddress(0x200003, 1), 0) << "bss stays zero";
}

TEST_F(KernelLoaderTest, PvhNoteSelectsThe32BitEntry) {
  Result<LoadedKernel> kernel =
      Load(MakeElf(0x100010, {{0x100000, std::vector<uint8_t>(64, 0x90), 64}}, 0x100020));
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_EQ(kernel->format, KernelFormat::kElfPvh);
  EXPECT_EQ(kernel->entry, 0x100020u);
}

TEST_F(KernelLoaderTest, RefusesBrokenElfFiles) {
  std::vector<uint8_t> good =
      MakeElf(0x100000, {{0x100000, std::vector<uint8_t>(4096, 1), 4096}}, std::nullopt);
  std::vector<uint8_t> truncated(good.begin(), good.end() - 100);
  EXPECT_NE(ErrorOf(truncated).find("ELF kernel is truncated: ELF segment 0 needs bytes up to"),
            std::string::npos);
  std::vector<uint8_t> header_only(good.begin(), good.begin() + 40);
  EXPECT_NE(ErrorOf(header_only).find("truncated"), std::string::npos);
  std::vector<uint8_t> wrong_machine = good;
  wrong_machine[18] = EM_AARCH64;
  EXPECT_EQ(ErrorOf(wrong_machine), "ELF kernel is not for x86_64");
  std::vector<uint8_t> elf32 = good;
  elf32[EI_CLASS] = ELFCLASS32;
  EXPECT_EQ(ErrorOf(elf32), "ELF kernel is not 64-bit");
  EXPECT_NE(ErrorOf(MakeElf(0x100000, {{0x1000, {1}, 1}}, std::nullopt)).find("needs guest memory"),
            std::string::npos)
      << "segments below 1 MiB would overwrite boot structures";
  EXPECT_NE(ErrorOf(MakeElf(0x100000, {{0x100000, {1}, 128 * layout::kMiB}}, std::nullopt))
                .find("raise mem_size_mib"),
            std::string::npos);
  EXPECT_NE(ErrorOf(MakeElf(0x900000, {{0x100000, {1}, 1}}, std::nullopt)).find("entry point"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(MakeElf(0x100000, {}, std::nullopt)),
            "ELF kernel has an invalid program header table");
}

TEST_F(KernelLoaderTest, LoadsBzImageProtectedModePartAtOneMib) {
  std::vector<uint8_t> image = MakeBzImage(5000, 0x020f, XLF_KERNEL_64, 0x200000);
  Result<LoadedKernel> kernel = Load(image);
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_EQ(kernel->format, KernelFormat::kBzImage);
  EXPECT_EQ(kernel->entry, layout::kHighMemoryStart + 0x200);
  EXPECT_EQ(kernel->end, layout::kHighMemoryStart + 0x200000) << "init_size reserves room";
  ASSERT_TRUE(kernel->setup.has_value());
  EXPECT_EQ(kernel->setup->version, 0x020f);
  EXPECT_EQ(kernel->cmdline_max, 256u);
  EXPECT_EQ(std::memcmp(memory_->HostAddress(layout::kHighMemoryStart, image.size() - 1024),
                        image.data() + 1024, image.size() - 1024),
            0);
}

TEST_F(KernelLoaderTest, RefusesBrokenBzImages) {
  std::vector<uint8_t> good = MakeBzImage(8192);
  std::vector<uint8_t> truncated(good.begin(), good.end() - 16);
  EXPECT_NE(ErrorOf(truncated).find("bzImage is truncated: its header declares"),
            std::string::npos);
  std::vector<uint8_t> inside_header(good.begin(), good.begin() + 0x210);
  EXPECT_EQ(ErrorOf(inside_header), "bzImage is truncated inside its setup header");
  EXPECT_NE(ErrorOf(MakeBzImage(64, 0x020b)).find("too old"), std::string::npos);
  EXPECT_NE(ErrorOf(MakeBzImage(64, 0x020f, 0)).find("no 64-bit entry point"), std::string::npos);
  EXPECT_NE(ErrorOf(MakeBzImage(64, 0x020f, XLF_KERNEL_64, 200 * layout::kMiB))
                .find("raise mem_size_mib"),
            std::string::npos);
}

TEST_F(KernelLoaderTest, RefusesFilesThatAreNotKernels) {
  EXPECT_NE(ErrorOf(std::vector<uint8_t>(4096, 'x')).find("not a kernel"), std::string::npos);
  EXPECT_NE(ErrorOf(std::vector<uint8_t>(10, 'x')).find("not a kernel"), std::string::npos);
  EXPECT_NE(ErrorOf({}).find("not a kernel"), std::string::npos);
}

TEST_F(KernelLoaderTest, PlacesInitrdHighAndPageAligned) {
  Result<LoadedKernel> kernel = Load(MakeBzImage(4096));
  ASSERT_TRUE(kernel.ok());
  Result<InitrdPlacement> initrd = PlaceInitrd(10000, *kernel);
  ASSERT_TRUE(initrd.ok()) << initrd.status().message();
  EXPECT_EQ(initrd->address % 4096, 0u);
  EXPECT_EQ(initrd->size, 10000u);
  EXPECT_LE(initrd->address + initrd->size, memory_->low_ram_end());
  EXPECT_GT(initrd->address + 4096 + initrd->size, memory_->low_ram_end());
  EXPECT_EQ(*memory_->HostAddress(initrd->address + 9999, 1), 0xab);
}

TEST_F(KernelLoaderTest, RefusesInitrdThatDoesNotFit) {
  Result<LoadedKernel> kernel = Load(MakeBzImage(4096, 0x020f, XLF_KERNEL_64, 60 * layout::kMiB));
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  Result<InitrdPlacement> initrd = PlaceInitrd(8 * layout::kMiB, *kernel);
  ASSERT_FALSE(initrd.ok());
  EXPECT_NE(initrd.status().message().find("does not fit"), std::string::npos);
  Result<InitrdPlacement> empty = PlaceInitrd(0, *kernel);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "initrd is empty");
}

// Debian's cloud kernel, fetched by scripts/linux-guest.sh (which the test
// script runs first): parsed and placed for real.
TEST_F(KernelLoaderTest, LoadsDebianCloudKernel) {
  std::string path = testing::LinuxGuestDir() + "/vmlinuz";
  struct stat info {};
  // scripts/test.sh fetches it: a missing kernel is a broken set-up, not a skip.
  ASSERT_EQ(stat(path.c_str(), &info), 0)
      << "no Debian kernel at " << path << ": run scripts/linux-guest.sh first";
  Result<GuestMemory> memory = GuestMemory::Create(x86::GuestRamRanges(512 * layout::kMiB));
  ASSERT_TRUE(memory.ok());
  UniqueFd fd(open(path.c_str(), O_RDONLY));
  Result<LoadedKernel> kernel = LoadKernel(*memory, fd.get(), static_cast<uint64_t>(info.st_size));
  ASSERT_TRUE(kernel.ok()) << kernel.status().message();
  EXPECT_EQ(kernel->format, KernelFormat::kBzImage);
  EXPECT_EQ(kernel->entry, layout::kHighMemoryStart + 0x200);
  ASSERT_TRUE(kernel->setup.has_value());
  EXPECT_GE(kernel->setup->version, 0x020c);
  EXPECT_TRUE(kernel->setup->relocatable_kernel);
  EXPECT_GT(kernel->end, layout::kHighMemoryStart + 4 * layout::kMiB);
  EXPECT_GE(kernel->cmdline_max, 2048u);
  // The protected-mode part is in guest memory byte for byte.
  std::string file = testing::ReadFile(path);
  size_t offset = (kernel->setup->setup_sects + 1) * 512;
  EXPECT_EQ(std::memcmp(memory->HostAddress(layout::kHighMemoryStart, file.size() - offset),
                        file.data() + offset, file.size() - offset),
            0);
  // Too little memory for its init_size is refused with the reason.
  Result<GuestMemory> small = GuestMemory::Create(x86::GuestRamRanges(8 * layout::kMiB));
  ASSERT_TRUE(small.ok());
  Result<LoadedKernel> refused = LoadKernel(*small, fd.get(), static_cast<uint64_t>(info.st_size));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("raise mem_size_mib"), std::string::npos);
}

}  // namespace
}  // namespace ember::x86
