#include "kvm/guest_memory.h"

#include <linux/memfd.h>  // MFD_HUGE_2MB
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "base/file_io.h"
#include "base/hex.h"
#include "base/sys_error.h"

namespace ember {

std::vector<RamRange> SplitAroundHole(uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  if (size <= hole_start) return {{0, size}};
  return {{0, hole_start}, {hole_end, size - hole_start}};
}

Result<GuestMemory> GuestMemory::Create(const std::vector<RamRange>& ranges, Pages pages) {
  const bool huge = pages == Pages::kHuge2M;
  uint64_t size_bytes = 0;
  uint64_t previous_end = 0;
  for (const RamRange& range : ranges) {
    if (range.size == 0 || range.guest_address < previous_end ||
        range.guest_address + range.size < range.guest_address) {
      return Status::Error("guest RAM ranges must be non-empty, ascending and apart");
    }
    if (huge && (range.guest_address % kHugePageBytes != 0 || range.size % kHugePageBytes != 0)) {
      return Status::Error("guest RAM ranges must be whole 2 MiB pages for huge_pages 2M");
    }
    previous_end = range.guest_address + range.size;
    size_bytes += range.size;
  }
  if (size_bytes == 0) return Status::Error("guest memory size is 0");
  GuestMemory memory;
  memory.memfd_.reset(
      memfd_create("ember-guest-ram", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0u)));
  if (!memory.memfd_.valid()) {
    return ErrnoStatus(
        huge ? "memfd_create on 2 MiB huge pages (does the host kernel have hugetlbfs?)"
             : "memfd_create for guest memory");
  }
  if (ftruncate(memory.memfd_.get(), static_cast<off_t>(size_bytes)) != 0) {
    return ErrnoStatus("sizing guest memory to " + std::to_string(size_bytes) + " bytes");
  }
  // Normal pages are not reserved (the guest pays for what it touches);
  // huge pages are, so that the mmap is where a short pool shows.
  void* mapping = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE,
                       MAP_SHARED | (huge ? 0 : MAP_NORESERVE), memory.memfd_.get(), 0);
  if (mapping == MAP_FAILED && huge && errno == ENOMEM) {
    return Status::Error("reserving " + std::to_string(size_bytes / kHugePageBytes) +
                         " huge pages of 2 MiB: the host's pool has too few free (see "
                         "HugePages_Free in /proc/meminfo; raise /proc/sys/vm/nr_hugepages)");
  }
  if (mapping == MAP_FAILED) {
    return ErrnoStatus("mapping " + std::to_string(size_bytes >> 20) + " MiB of guest memory");
  }
  memory.mapping_ = static_cast<uint8_t*>(mapping);
  memory.size_ = size_bytes;
  // A core dump of ember must not carry the guest's memory (its secrets,
  // and gigabytes). Best effort: only an old kernel would refuse.
  (void)madvise(mapping, size_bytes, MADV_DONTDUMP);
  uint64_t offset = 0;
  for (const RamRange& range : ranges) {
    memory.regions_.push_back({range.guest_address, range.size, offset, memory.mapping_ + offset});
    offset += range.size;
  }
  return memory;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : memfd_(std::move(other.memfd_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      regions_(std::move(other.regions_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    if (mapping_ != nullptr) munmap(mapping_, size_);
    memfd_ = std::move(other.memfd_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    size_ = std::exchange(other.size_, 0);
    regions_ = std::move(other.regions_);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

uint8_t* GuestMemory::HostAddress(uint64_t address, uint64_t length) const {
  for (const GuestRegion& region : regions_) {
    if (address >= region.guest_address && address - region.guest_address <= region.size &&
        length <= region.size - (address - region.guest_address)) {
      return region.host + (address - region.guest_address);
    }
  }
  return nullptr;
}

Status GuestMemory::Write(uint64_t address, std::span<const uint8_t> bytes) {
  uint8_t* host = HostAddress(address, bytes.size());
  if (host == nullptr) {
    return Status::Error("guest range " + Hex(address) + "+" + std::to_string(bytes.size()) +
                         " is outside guest memory");
  }
  std::memcpy(host, bytes.data(), bytes.size());
  return Status::Ok();
}

Status GuestMemory::Read(uint64_t address, std::span<uint8_t> out) const {
  const uint8_t* host = HostAddress(address, out.size());
  if (host == nullptr)
    return Status::Error("guest range " + Hex(address) + "+" + std::to_string(out.size()) +
                         " is outside guest memory");
  std::memcpy(out.data(), host, out.size());
  return Status::Ok();
}

Status GuestMemory::ReadFromFile(uint64_t address, int fd, uint64_t file_offset, uint64_t length,
                                 const char* what) {
  uint8_t* host = HostAddress(address, length);
  if (host == nullptr) {
    return Status::Error(std::string(what) + " does not fit in guest memory");
  }
  EMBER_ASSIGN_OR_RETURN(uint64_t done, PreadFull(fd, host, length, file_offset, what));
  if (done < length) {
    return Status::Error(std::string(what) + " is truncated: expected " +
                         std::to_string(file_offset + length) + " bytes, file has " +
                         std::to_string(file_offset + done));
  }
  return Status::Ok();
}

}  // namespace ember
