#include "arch/x86_64/acpi/aml.h"

namespace ember::x86::aml {
namespace {

// Opcodes and prefixes (ACPI 6.x, 20.2 and 20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';
constexpr uint8_t kReturnOp = 0xa4;

// Resource descriptor tags (6.4.2 small, 6.4.3 large).
constexpr uint8_t kSmallIoTag = (0x08 << 3) | 7;   // I/O port, 7 bytes follow
constexpr uint8_t kSmallEndTag = (0x0f << 3) | 1;  // End Tag, 1 byte (checksum) follows
constexpr uint8_t kLargeMemory32Fixed = 0x86;
constexpr uint8_t kLargeExtendedInterrupt = 0x89;
constexpr uint8_t kIoDecode16 = 0x01;
constexpr uint8_t kMemoryReadWrite = 0x01;
// Extended interrupt flags: bit 0 consumer, bit 1 edge (0 level), bit 2
// active-low (0 high), bit 3 shared (0 exclusive), bit 4 wake capable.
constexpr uint8_t kInterruptConsumer = 1 << 0;
constexpr uint8_t kInterruptEdge = 1 << 1;

void AppendLe(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void Append(std::vector<uint8_t>& out, const std::vector<uint8_t>& bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// The first failed term in `terms`, if any.
const Term* FirstError(const TermList& terms) {
  for (const Term& term : terms) {
    if (!term.ok()) return &term;
  }
  return nullptr;
}

// `prefix`, a PkgLength, then `contents`: the shape of every package-like
// construct (Scope, Device, Method, Buffer, Package).
Term WithPkgLength(std::vector<uint8_t> prefix, const std::vector<uint8_t>& contents) {
  Term length = PkgLength(contents.size());
  if (!length.ok()) return length;
  Append(prefix, length.bytes());
  Append(prefix, contents);
  return Term::Raw(std::move(prefix));
}

bool IsLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsLeadNameChar(c) || (c >= '0' && c <= '9'); }
bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

Term Named(std::vector<uint8_t> opcode, std::string_view name, const TermList& body,
           std::vector<uint8_t> after_name = {}) {
  Term encoded_name = NameString(name);
  if (!encoded_name.ok()) return encoded_name;
  if (const Term* error = FirstError(body)) return *error;
  std::vector<uint8_t> contents = encoded_name.bytes();
  Append(contents, after_name);
  for (const Term& term : body) Append(contents, term.bytes());
  return WithPkgLength(std::move(opcode), contents);
}

}  // namespace

Result<std::vector<uint8_t>> Term::Encode() const {
  if (!ok()) return Status::Error("AML: " + error_);
  return bytes_;
}

Term PkgLength(size_t content_length) {
  // One byte holds lengths up to 63 in bits 0-5. Longer ones: bits 6-7 of
  // the lead byte count the 1-3 bytes that follow, bits 0-3 hold the low
  // nibble and the following bytes the rest, little-endian.
  if (content_length + 1 <= 0x3f) return Term::Raw({static_cast<uint8_t>(content_length + 1)});
  for (int extra = 1; extra <= 3; ++extra) {
    const size_t total = content_length + 1 + extra;
    if (total >= (size_t{1} << (4 + 8 * extra))) continue;
    std::vector<uint8_t> out = {static_cast<uint8_t>((extra << 6) | (total & 0x0f))};
    AppendLe(out, total >> 4, extra);
    return Term::Raw(std::move(out));
  }
  return Term::Error("package of " + std::to_string(content_length) +
                     " bytes is longer than a PkgLength can encode");
}

Term NameSeg(std::string_view name) {
  if (name.empty() || name.size() > 4 || !IsLeadNameChar(name[0])) {
    return Term::Error("bad name segment \"" + std::string(name) + "\"");
  }
  std::vector<uint8_t> out;
  for (char c : name) {
    if (!IsNameChar(c)) return Term::Error("bad name segment \"" + std::string(name) + "\"");
    out.push_back(static_cast<uint8_t>(c));
  }
  out.resize(4, '_');
  return Term::Raw(std::move(out));
}

Term NameString(std::string_view path) {
  std::vector<uint8_t> out;
  size_t pos = 0;
  if (!path.empty() && path[0] == '\\') {
    out.push_back(kRootChar);
    pos = 1;
  } else {
    while (pos < path.size() && path[pos] == '^') {
      out.push_back(kParentPrefixChar);
      ++pos;
    }
  }
  std::vector<uint8_t> segments;
  size_t count = 0;
  while (pos < path.size()) {
    size_t end = path.find('.', pos);
    if (end == std::string_view::npos) end = path.size();
    Term segment = NameSeg(path.substr(pos, end - pos));
    if (!segment.ok()) return Term::Error(segment.error() + " in \"" + std::string(path) + "\"");
    Append(segments, segment.bytes());
    ++count;
    pos = end + 1;
    if (end + 1 == path.size())
      return Term::Error("name \"" + std::string(path) + "\" ends in '.'");
  }
  if (count == 0) {
    out.push_back(0x00);  // NullName
  } else if (count == 2) {
    out.push_back(kDualNamePrefix);
  } else if (count > 2) {
    if (count > 255) return Term::Error("name \"" + std::string(path) + "\" has too many segments");
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(count));
  }
  Append(out, segments);
  return Term::Raw(std::move(out));
}

Term Integer(uint64_t value) {
  if (value == 0) return Term::Raw({kZeroOp});
  if (value == 1) return Term::Raw({kOneOp});
  std::vector<uint8_t> out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe(out, value, 1);
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe(out, value, 2);
  } else if (value <= 0xffff'ffff) {
    out.push_back(kDWordPrefix);
    AppendLe(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    AppendLe(out, value, 8);
  }
  return Term::Raw(std::move(out));
}

Term String(std::string_view text) {
  std::vector<uint8_t> out = {kStringPrefix};
  for (char c : text) {
    auto byte = static_cast<uint8_t>(c);
    if (byte == 0 || byte > 0x7f) {
      return Term::Error("string \"" + std::string(text) + "\" is not printable ASCII");
    }
    out.push_back(byte);
  }
  out.push_back(0x00);
  return Term::Raw(std::move(out));
}

Term EisaId(std::string_view id) {
  bool valid = id.size() == 7;
  for (size_t i = 0; valid && i < 7; ++i) {
    valid = i < 3 ? (id[i] >= 'A' && id[i] <= 'Z') : IsHexDigit(id[i]);
  }
  if (!valid) return Term::Error("bad EISA ID \"" + std::string(id) + "\"");
  // Three letters in 5 bits each ('A' is 1) make a big-endian 16-bit
  // vendor code; the four hex digits follow, also most significant first.
  auto letter = [&](size_t i) { return static_cast<uint32_t>(id[i] - '@'); };
  auto digit = [&](size_t i) {
    return static_cast<uint32_t>(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
  };
  const uint32_t vendor = (letter(0) << 10) | (letter(1) << 5) | letter(2);
  const uint8_t bytes[4] = {static_cast<uint8_t>(vendor >> 8), static_cast<uint8_t>(vendor),
                            static_cast<uint8_t>((digit(3) << 4) | digit(4)),
                            static_cast<uint8_t>((digit(5) << 4) | digit(6))};
  return Term::Raw({kDWordPrefix, bytes[0], bytes[1], bytes[2], bytes[3]});
}

Term Buffer(std::vector<uint8_t> data) {
  std::vector<uint8_t> contents = Integer(data.size()).bytes();  // BufferSize
  Append(contents, data);
  return WithPkgLength({kBufferOp}, contents);
}

Term Package(TermList elements) {
  if (const Term* error = FirstError(elements)) return *error;
  if (elements.size() > 255) {
    return Term::Error("package of " + std::to_string(elements.size()) + " elements (at most 255)");
  }
  std::vector<uint8_t> contents = {static_cast<uint8_t>(elements.size())};  // NumElements
  for (const Term& element : elements) Append(contents, element.bytes());
  return WithPkgLength({kPackageOp}, contents);
}

Term Name(std::string_view name, Term value) {
  Term encoded_name = NameString(name);
  if (!encoded_name.ok()) return encoded_name;
  if (!value.ok()) return value;
  std::vector<uint8_t> out = {kNameOp};
  Append(out, encoded_name.bytes());
  Append(out, value.bytes());
  return Term::Raw(std::move(out));
}

Term Scope(std::string_view name, TermList body) { return Named({kScopeOp}, name, body); }

Term Device(std::string_view name, TermList body) {
  return Named({kExtOpPrefix, kDeviceOp}, name, body);
}

Term Method(std::string_view name, uint8_t arg_count, TermList body) {
  if (arg_count > 7)
    return Term::Error("method " + std::string(name) + " with more than 7 arguments");
  // MethodFlags: bits 0-2 ArgCount, bit 3 SerializeFlag (0), bits 4-7 SyncLevel (0).
  return Named({kMethodOp}, name, body, {arg_count});
}

Term Return(Term value) {
  if (!value.ok()) return value;
  std::vector<uint8_t> out = {kReturnOp};
  Append(out, value.bytes());
  return Term::Raw(std::move(out));
}

Term Io(uint16_t minimum, uint16_t maximum, uint8_t alignment, uint8_t length) {
  if (minimum > maximum) return Term::Error("I/O descriptor with minimum above maximum");
  std::vector<uint8_t> out = {kSmallIoTag, kIoDecode16};
  AppendLe(out, minimum, 2);
  AppendLe(out, maximum, 2);
  out.push_back(alignment);
  out.push_back(length);
  return Term::Raw(std::move(out));
}

Term Memory32Fixed(uint32_t base, uint32_t length) {
  std::vector<uint8_t> out = {kLargeMemory32Fixed};
  AppendLe(out, 9, 2);  // length of what follows
  out.push_back(kMemoryReadWrite);
  AppendLe(out, base, 4);
  AppendLe(out, length, 4);
  return Term::Raw(std::move(out));
}

Term Interrupt(uint32_t gsi) {
  std::vector<uint8_t> out = {kLargeExtendedInterrupt};
  AppendLe(out, 6, 2);  // flags, table length, one 32-bit interrupt
  out.push_back(kInterruptConsumer | kInterruptEdge);
  out.push_back(1);
  AppendLe(out, gsi, 4);
  return Term::Raw(std::move(out));
}

Term ResourceTemplate(TermList descriptors) {
  if (const Term* error = FirstError(descriptors)) return *error;
  std::vector<uint8_t> data;
  for (const Term& descriptor : descriptors) Append(data, descriptor.bytes());
  data.push_back(kSmallEndTag);
  data.push_back(0x00);  // checksum 0: "treated as if the checksum succeeded"
  return Buffer(std::move(data));
}

Term Concat(TermList terms) {
  if (const Term* error = FirstError(terms)) return *error;
  std::vector<uint8_t> out;
  for (const Term& term : terms) Append(out, term.bytes());
  return Term::Raw(std::move(out));
}

}  // namespace ember::x86::aml
