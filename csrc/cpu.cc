// CPU feature detection, done once: picks the kernel table for this CPU.
// ART_ISA=scalar|avx2|avx512|neon (environment) forces a table, for tests
// and benchmarks; asking for one the CPU lacks falls back to the best it has.
#include <cstdlib>
#include <cstring>

#include "cpu.h"

namespace art {

namespace {

const KernelTable* best_table() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return kernels_avx512();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernels_avx2();
#elif defined(__aarch64__)
  return kernels_neon();
#endif
  return kernels_scalar();
}

bool supported(const char* name) {
  if (std::strcmp(name, "scalar") == 0) return true;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (std::strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
#elif defined(__aarch64__)
  if (std::strcmp(name, "neon") == 0) return true;
#endif
  return false;
}

}  // namespace

const KernelTable* table_by_name(const char* name) {
  if (!supported(name)) return nullptr;
  if (std::strcmp(name, "scalar") == 0) return kernels_scalar();
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(name, "avx2") == 0) return kernels_avx2();
  if (std::strcmp(name, "avx512") == 0) return kernels_avx512();
#elif defined(__aarch64__)
  if (std::strcmp(name, "neon") == 0) return kernels_neon();
#endif
  return nullptr;
}

const KernelTable* default_kernels() {
  static const KernelTable* t = [] {
    const char* want = std::getenv("ART_ISA");
    const KernelTable* forced = want ? table_by_name(want) : nullptr;
    return forced ? forced : best_table();
  }();
  return t;
}

}  // namespace art
