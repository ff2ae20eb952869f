// Linux's boot_params ("zero page") for the 64-bit boot protocol.
#pragma once

#include <asm/bootparam.h>

#include <optional>
#include <vector>

#include "arch/x86_64/e820.h"
#include "arch/x86_64/pvh.h"
#include "base/status.h"

namespace ember::x86 {

// `setup` is the bzImage's setup header, or nullopt for an ELF vmlinux
// (ember then fills the fields a loader must). `acpi_rsdp_address` (0: no
// ACPI) goes to acpi_rsdp_addr (boot protocol 2.14+; older kernels ignore
// it and search for the RSDP).
Result<boot_params> BuildBootParams(const std::optional<setup_header>& setup,
                                    uint64_t cmdline_address, uint64_t cmdline_size,
                                    const std::vector<E820Entry>& e820,
                                    const std::optional<InitrdPlacement>& initrd,
                                    uint64_t acpi_rsdp_address = 0);

}  // namespace ember::x86
