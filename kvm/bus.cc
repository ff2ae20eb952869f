#include "kvm/bus.h"

#include <algorithm>
#include <cstring>

#include "base/hex.h"

namespace ember {

Status Bus::Insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t size,
                   std::string device_name) {
  if (size == 0) return Status::Error(name_ + " bus: " + device_name + " has an empty range");
  if (base + size < base) {
    return Status::Error(name_ + " bus: " + device_name + " range wraps around");
  }
  auto next = std::upper_bound(ranges_.begin(), ranges_.end(), base,
                               [](uint64_t b, const Range& r) { return b < r.base; });
  auto overlaps = [&](const Range& other) {
    return base < other.base + other.size && other.base < base + size;
  };
  const Range* clash = nullptr;
  if (next != ranges_.end() && overlaps(*next)) clash = &*next;
  if (next != ranges_.begin() && overlaps(*std::prev(next))) clash = &*std::prev(next);
  if (clash != nullptr) {
    return Status::Error(name_ + " bus: " + device_name + " at " + Hex(base) + "+" + Hex(size) +
                         " overlaps " + clash->name + " at " + Hex(clash->base) + "+" +
                         Hex(clash->size));
  }
  ranges_.insert(next, Range{base, size, std::move(device_name), std::move(device)});
  return Status::Ok();
}

const Bus::Range* Bus::Find(uint64_t address) const {
  auto next = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                               [](uint64_t a, const Range& r) { return a < r.base; });
  if (next == ranges_.begin()) return nullptr;
  const Range& candidate = *std::prev(next);
  return address - candidate.base < candidate.size ? &candidate : nullptr;
}

bool Bus::Read(uint64_t address, std::span<uint8_t> data) const {
  const Range* range = Find(address);
  if (range == nullptr) {
    std::memset(data.data(), 0xff, data.size());
    return false;
  }
  range->device->Read(address - range->base, data);
  return true;
}

bool Bus::Write(uint64_t address, std::span<const uint8_t> data) const {
  const Range* range = Find(address);
  if (range == nullptr) return false;
  range->device->Write(address - range->base, data);
  return true;
}

}  // namespace ember
