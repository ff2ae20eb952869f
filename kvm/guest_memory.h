// Guest RAM: one memfd mapped MAP_SHARED (vhost-user backends map the same
// pages through the fd), laid out as the regions the architecture gives
// (on x86, RAM split around the 32-bit MMIO hole: arch/x86_64/e820.h).
// Fresh memfd pages read as zero, so nothing is ever cleared here.
//
// Thread-safety: the layout is immutable after Create(); the bytes are shared
// with the guest and with backends, so accessors do no locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ember {

struct GuestRegion {
  uint64_t guest_address;
  uint64_t size;
  uint64_t file_offset;  // offset inside the memfd
  uint8_t* host;         // start of this region in ember's mapping
};

// Splits `size` bytes of RAM around [hole_start, hole_end): pure arithmetic
// for the architecture's memory map.
struct RamRange {
  uint64_t guest_address;
  uint64_t size;
};
std::vector<RamRange> SplitAroundHole(uint64_t size, uint64_t hole_start, uint64_t hole_end);

class GuestMemory {
 public:
  // What backs the memfd: the kernel's 4 KiB pages, mapped lazily, or
  // 2 MiB pages from the hugetlb pool, all reserved by Create (so a short
  // pool is an error here, never a SIGBUS when the guest touches a page).
  enum class Pages { kNormal, kHuge2M };
  static constexpr uint64_t kHugePageBytes = uint64_t{2} << 20;

  // One region per range; the ranges must ascend and not overlap (and,
  // for kHuge2M, be whole huge pages).
  static Result<GuestMemory> Create(const std::vector<RamRange>& ranges,
                                    Pages pages = Pages::kNormal);

  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  const std::vector<GuestRegion>& regions() const { return regions_; }
  uint64_t size() const { return size_; }
  int memfd() const { return memfd_.get(); }

  // End (exclusive) of the RAM that starts at guest address 0.
  uint64_t low_ram_end() const { return regions_.front().size; }

  // Host pointer for [address, address + length) if the whole range is RAM
  // inside one region, nullptr otherwise.
  uint8_t* HostAddress(uint64_t address, uint64_t length) const;
  bool Contains(uint64_t address, uint64_t length) const {
    return HostAddress(address, length) != nullptr;
  }

  Status Write(uint64_t address, std::span<const uint8_t> bytes);
  template <typename T>
  Status WriteObject(uint64_t address, const T& object) {
    return Write(address, {reinterpret_cast<const uint8_t*>(&object), sizeof(T)});
  }
  Status Read(uint64_t address, std::span<uint8_t> out) const;

  // Reads `length` bytes of a file straight into guest memory, with no
  // intermediate copy. Fails (naming what) on a short file.
  Status ReadFromFile(uint64_t address, int fd, uint64_t file_offset, uint64_t length,
                      const char* what);

 private:
  GuestMemory() = default;

  UniqueFd memfd_;
  uint8_t* mapping_ = nullptr;
  uint64_t size_ = 0;
  std::vector<GuestRegion> regions_;
};

}  // namespace ember
