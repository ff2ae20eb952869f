// The configuration as JSON, in the same shape the parsers accept, for
// GET /machine-config and GET /vm/config.
#pragma once

#include <nlohmann/json.hpp>

#include "config/vm_config.h"

namespace ember {

nlohmann::json RenderBootSource(const BootSourceConfig& config);
nlohmann::json RenderMachineConfig(const MachineConfig& config);
nlohmann::json RenderVmConfig(const VmConfig& config);

}  // namespace ember
