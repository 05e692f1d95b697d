// Kernel table selection by CPU features (once per process).
#pragma once
#include "kernels/kernels.h"

namespace art {

// The best table for this CPU (or the one ART_ISA names, if the CPU has it).
const KernelTable* default_kernels();
// A table by name ("scalar", "avx2", "avx512", "neon"), or null if this CPU
// or build lacks it.
const KernelTable* table_by_name(const char* name);

}  // namespace art
