// Process clocks shared by the boot timer and the start-up metrics.
#pragma once

#include <cstdint>

namespace ember {

// CPU time this process has used, in microseconds.
uint64_t ProcessCpuMicros();

}  // namespace ember
