// The AML generator, byte for byte against the encodings of ACPI 6.x
// chapter 20 (AML) and 6.4 (resource descriptors), worked out by hand.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "arch/x86_64/acpi/aml.h"

namespace ember::x86::aml {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Encoded(const Term& term) {
  Result<Bytes> bytes = term.Encode();
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  return bytes.ok() ? *bytes : Bytes{};
}

std::string ErrorOf(const Term& term) {
  Result<Bytes> bytes = term.Encode();
  EXPECT_FALSE(bytes.ok());
  return bytes.ok() ? "" : bytes.status().message();
}

TEST(AmlPkgLengthTest, OneByteUpTo63InAllThenTwoThreeAndFourBytes) {
  EXPECT_EQ(Encoded(PkgLength(0)), (Bytes{0x01}));
  // 62 bytes of contents + 1 = 63: the largest one-byte PkgLength.
  EXPECT_EQ(Encoded(PkgLength(62)), (Bytes{0x3f}));
  // 63 + 2 = 65 = 0x41: lead byte 0x40 (one byte follows) | low nibble 1, then 0x04.
  EXPECT_EQ(Encoded(PkgLength(63)), (Bytes{0x41, 0x04}));
  // 4093 + 2 = 4095 = 0xfff: the largest two-byte PkgLength.
  EXPECT_EQ(Encoded(PkgLength(4093)), (Bytes{0x4f, 0xff}));
  // 4094 + 3 = 4097 = 0x1001: lead 0x80 | 1, then 0x00, 0x01.
  EXPECT_EQ(Encoded(PkgLength(4094)), (Bytes{0x81, 0x00, 0x01}));
  // 0xfffff is the largest three-byte value; one more byte of contents
  // makes 0x100001 in four.
  EXPECT_EQ(Encoded(PkgLength(0xfffff - 3)), (Bytes{0x8f, 0xff, 0xff}));
  EXPECT_EQ(Encoded(PkgLength(0xfffff - 2)), (Bytes{0xc1, 0x00, 0x00, 0x01}));
  // 0xfffffff (2^28 - 1) is the largest PkgLength of all.
  EXPECT_EQ(Encoded(PkgLength(0x0fffffff - 4)), (Bytes{0xcf, 0xff, 0xff, 0xff}));
  EXPECT_NE(ErrorOf(PkgLength(0x0fffffff - 3)).find("longer than a PkgLength"), std::string::npos);
}

TEST(AmlPkgLengthTest, ScopeBodiesAcrossTheOneByteLimit) {
  // "\_SB_" is 5 bytes; 57 more make 62 bytes of contents (PkgLength 63),
  // 58 more make 63 (PkgLength 65 in two bytes).
  Bytes small = Encoded(Scope("\\_SB", {Term::Raw(Bytes(57, 0xa3))}));
  ASSERT_EQ(small.size(), 1u + 1 + 62);
  EXPECT_EQ(small[0], 0x10);
  EXPECT_EQ(small[1], 0x3f);
  EXPECT_EQ(small[2], '\\');
  Bytes large = Encoded(Scope("\\_SB", {Term::Raw(Bytes(58, 0xa3))}));
  ASSERT_EQ(large.size(), 1u + 2 + 63);
  EXPECT_EQ(large[1], 0x41);
  EXPECT_EQ(large[2], 0x04);
  EXPECT_EQ(large[3], '\\');
  // 4096 bytes of contents: 4096 + 3 = 0x1003 in three bytes.
  Bytes big = Encoded(Scope("\\_SB", {Term::Raw(Bytes(4091, 0xa3))}));
  ASSERT_EQ(big.size(), 1u + 3 + 4096);
  EXPECT_EQ((Bytes{big[1], big[2], big[3]}), (Bytes{0x83, 0x00, 0x01}));
}

TEST(AmlIntegerTest, ShortestEncodingAtEachWidthBoundary) {
  EXPECT_EQ(Encoded(Integer(0)), (Bytes{0x00}));  // ZeroOp
  EXPECT_EQ(Encoded(Integer(1)), (Bytes{0x01}));  // OneOp
  EXPECT_EQ(Encoded(Integer(2)), (Bytes{0x0a, 0x02}));
  EXPECT_EQ(Encoded(Integer(0xff)), (Bytes{0x0a, 0xff}));
  EXPECT_EQ(Encoded(Integer(0x100)), (Bytes{0x0b, 0x00, 0x01}));
  EXPECT_EQ(Encoded(Integer(0xffff)), (Bytes{0x0b, 0xff, 0xff}));
  EXPECT_EQ(Encoded(Integer(0x10000)), (Bytes{0x0c, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(Encoded(Integer(0xffffffff)), (Bytes{0x0c, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(Encoded(Integer(0x100000000)),
            (Bytes{0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
  EXPECT_EQ(Encoded(Integer(0x0123456789abcdef)),
            (Bytes{0x0e, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01}));
  EXPECT_EQ(Encoded(Integer(UINT64_MAX)),
            (Bytes{0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST(AmlNameTest, SegmentsArePaddedAndPrefixed) {
  EXPECT_EQ(Encoded(NameSeg("_HID")), (Bytes{'_', 'H', 'I', 'D'}));
  EXPECT_EQ(Encoded(NameSeg("C0")), (Bytes{'C', '0', '_', '_'}));
  EXPECT_EQ(Encoded(NameString("_S5")), (Bytes{'_', 'S', '5', '_'}));
  EXPECT_EQ(Encoded(NameString("\\_SB")), (Bytes{'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(Encoded(NameString("\\_SB.COM1")),
            (Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
  EXPECT_EQ(Encoded(NameString("\\_SB.PCI0.ISA")),
            (Bytes{'\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_'}));
  EXPECT_EQ(Encoded(NameString("^^FOO")), (Bytes{'^', '^', 'F', 'O', 'O', '_'}));
  EXPECT_EQ(Encoded(NameString("")), (Bytes{0x00}));  // NullName
  EXPECT_EQ(Encoded(NameString("\\")), (Bytes{'\\', 0x00}));
}

TEST(AmlNameTest, BadNamesAreErrors) {
  for (const char* bad : {"1ABC", "ABCDE", "abc", "A-B", "A..B", "A.", ".A"}) {
    EXPECT_FALSE(NameString(bad).ok()) << bad;
  }
  EXPECT_NE(ErrorOf(Name("hid", Integer(1))).find("bad name segment"), std::string::npos);
}

TEST(AmlDataTest, StringsBuffersPackagesAndEisaIds) {
  EXPECT_EQ(Encoded(String("ACPI0007")),
            (Bytes{0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00}));
  EXPECT_EQ(Encoded(String("")), (Bytes{0x0d, 0x00}));
  EXPECT_FALSE(String("caf\xc3\xa9").ok());
  EXPECT_FALSE(String(std::string("a\0b", 3)).ok());

  // PNP0501: 'P' 'N' 'P' -> 16, 14, 16 in 5 bits each = 0x41d0 (big-endian),
  // then 0x05 0x01; as a little-endian DWORD 0x0105d041.
  EXPECT_EQ(Encoded(EisaId("PNP0501")), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_EQ(Encoded(EisaId("PNP0A03")), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
  for (const char* bad : {"pnp0501", "PNP050", "PNP05G1", "PNP05011", "P1P0501"}) {
    EXPECT_FALSE(EisaId(bad).ok()) << bad;
  }

  // BufferOp, PkgLength 6, BufferSize ByteConst 3, the bytes.
  EXPECT_EQ(Encoded(Buffer({1, 2, 3})), (Bytes{0x11, 0x06, 0x0a, 0x03, 1, 2, 3}));
  EXPECT_EQ(Encoded(Buffer({})), (Bytes{0x11, 0x02, 0x00}));
  // PackageOp, PkgLength 7, NumElements 4, elements.
  EXPECT_EQ(Encoded(Package({Integer(5), Integer(0), Integer(0), Integer(0)})),
            (Bytes{0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00}));
  EXPECT_NE(ErrorOf(Package(TermList(256, Integer(0)))).find("at most 255"), std::string::npos);
}

TEST(AmlObjectTest, NameScopeDeviceMethodReturn) {
  EXPECT_EQ(Encoded(Name("\\_S5", Package({Integer(5), Integer(0), Integer(0), Integer(0)}))),
            (Bytes{0x08, '\\', '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0, 0, 0}));
  EXPECT_EQ(Encoded(Scope("\\_SB", {})), (Bytes{0x10, 0x06, '\\', '_', 'S', 'B', '_'}));
  // ExtOpPrefix DeviceOp, PkgLength 11 (4 name + 6 Name(_UID, Zero) + 1).
  EXPECT_EQ(Encoded(Device("COM1", {Name("_UID", Integer(0))})),
            (Bytes{0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x00}));
  // MethodOp, PkgLength 9, name, flags (0 args, not serialized), Return (0xf).
  EXPECT_EQ(Encoded(Method("_STA", 0, {Return(Integer(0xf))})),
            (Bytes{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f}));
  EXPECT_FALSE(Method("_STA", 8, {}).ok());
}

TEST(AmlResourceTest, DescriptorsAndTemplate) {
  // Small I/O descriptor: tag 0x47, decode16, min, max, alignment, length.
  EXPECT_EQ(Encoded(Io(0x3f8, 0x3f8, 1, 8)),
            (Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}));
  EXPECT_FALSE(Io(0x400, 0x3f8, 1, 8).ok());
  // Large 0x86, length 9, read-write, base, length.
  const Bytes memory = {0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xc0, 0x00, 0x10, 0x00, 0x00};
  EXPECT_EQ(Encoded(Memory32Fixed(0xc0001000, 0x1000)), memory);
  // Large 0x89, length 6, flags consumer|edge (active-high, exclusive,
  // not wake capable), one interrupt, GSI 5.
  const Bytes interrupt = {0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00};
  EXPECT_EQ(Encoded(Interrupt(5)), interrupt);
  // Buffer of 12 + 9 + 2 (End Tag 0x79, checksum 0) = 23 bytes.
  Bytes expected = {0x11, 0x1a, 0x0a, 0x17};
  expected.insert(expected.end(), memory.begin(), memory.end());
  expected.insert(expected.end(), interrupt.begin(), interrupt.end());
  expected.insert(expected.end(), {0x79, 0x00});
  EXPECT_EQ(Encoded(ResourceTemplate({Memory32Fixed(0xc0001000, 0x1000), Interrupt(5)})), expected);
  EXPECT_EQ(Encoded(ResourceTemplate({})), (Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}));
}

TEST(AmlErrorTest, TheFirstErrorReachesTheTop) {
  Term device = Device(
      "V000", {Name("_HID", String("LNRO0005")), Name("_CRS", ResourceTemplate({Io(2, 1, 1, 1)})),
               Name("_STR", String("\x80"))});
  EXPECT_FALSE(device.ok());
  EXPECT_NE(ErrorOf(Scope("\\_SB", {device})).find("minimum above maximum"), std::string::npos);
  EXPECT_FALSE(Concat({Integer(1), NameSeg("x")}).ok());
  EXPECT_EQ(Encoded(Concat({Integer(1), Integer(2)})), (Bytes{0x01, 0x0a, 0x02}));
}

}  // namespace
}  // namespace ember::x86::aml
