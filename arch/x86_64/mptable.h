// Intel MultiProcessor Specification 1.4 table: how guests without ACPI
// find their vCPUs, the IOAPIC and the ISA interrupt routing.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace ember::x86 {

// Builds the floating pointer followed by the configuration table, for a
// table placed at guest address `table_address`.
Result<std::vector<uint8_t>> BuildMptable(uint32_t vcpu_count, uint64_t table_address);

}  // namespace ember::x86
