// A small generator for ACPI Machine Language (ACPI 6.x, chapter 20, "ACPI
// Machine Language Specification", and chapter 6.4, "Resource Data Types"):
// just what ember's DSDT needs.
//
// A Term is encoded bytes, or the reason they could not be encoded (a bad
// name, a string with a NUL, a package with too many elements). Composite
// terms take their children by value and carry the first child's error, so
// a whole definition block is written as one expression and checked once:
//
//   aml::Term device = aml::Device("V000", {
//       aml::Name("_HID", aml::String("LNRO0005")),
//       aml::Name("_CRS", aml::ResourceTemplate({aml::Memory32Fixed(base, 0x1000),
//                                                 aml::Interrupt(irq)})),
//   });
//   Result<std::vector<uint8_t>> bytes = device.Encode();
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ember::x86::aml {

class Term {
 public:
  static Term Raw(std::vector<uint8_t> bytes) { return Term(std::move(bytes), {}); }
  static Term Error(std::string message) { return Term({}, std::move(message)); }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // The encoded bytes, or the first error found while building them.
  Result<std::vector<uint8_t>> Encode() const;
  // Bytes only; empty when !ok(). For composing terms.
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  Term(std::vector<uint8_t> bytes, std::string error)
      : bytes_(std::move(bytes)), error_(std::move(error)) {}

  std::vector<uint8_t> bytes_;
  std::string error_;
};

using TermList = std::vector<Term>;

// PkgLength (20.2.4) of a package whose contents after the PkgLength are
// `content_length` bytes: 1 byte below 64 bytes in all, else 2 to 4 bytes
// (the encoded value counts its own bytes). Fails from 2^28 bytes.
Term PkgLength(size_t content_length);

// NameSeg: 1 to 4 characters [A-Z0-9_] (not starting with a digit), padded
// with '_' to 4 bytes.
Term NameSeg(std::string_view name);
// NameString: an optional root ('\') or parent ('^'...) prefix, then
// NameSegs separated by '.'; "" is the NullName.
Term NameString(std::string_view path);

// Data objects.
// The shortest encoding of `value`: ZeroOp, OneOp, then Byte/Word/DWord/
// QWordConst.
Term Integer(uint64_t value);
// A String (ASCII 0x01-0x7F) with its terminating NUL.
Term String(std::string_view text);
// EISA ID, e.g. "PNP0501": three upper-case letters and four hex digits,
// compressed into a DWordConst (PNP0501 is 0x0105D041).
Term EisaId(std::string_view id);
// Buffer whose size is the length of `data`.
Term Buffer(std::vector<uint8_t> data);
// Package of up to 255 elements.
Term Package(TermList elements);

// Named objects and statements.
Term Name(std::string_view name, Term value);
Term Scope(std::string_view name, TermList body);
Term Device(std::string_view name, TermList body);
// A not-serialized method with `arg_count` (0-7) arguments.
Term Method(std::string_view name, uint8_t arg_count, TermList body);
Term Return(Term value);

// Resource descriptors (6.4), for ResourceTemplate.
// I/O port range with 16-bit decode (small descriptor, 8 bytes).
Term Io(uint16_t minimum, uint16_t maximum, uint8_t alignment, uint8_t length);
// 32-bit fixed memory range, read-write (large descriptor, 12 bytes).
Term Memory32Fixed(uint32_t base, uint32_t length);
// Extended interrupt descriptor for one interrupt, as
// Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {gsi}.
Term Interrupt(uint32_t gsi);
// The descriptors followed by an End Tag (checksum 0), as a Buffer.
Term ResourceTemplate(TermList descriptors);

// Concatenates terms (a TermList outside any package).
Term Concat(TermList terms);

}  // namespace ember::x86::aml
