// CPU feature detection, done once: picks the kernel table for this CPU.
// ART_ISA=scalar|avx2|avx512|neon (environment) forces a table, for tests
// and benchmarks; asking for one the CPU lacks falls back to the best it has.
#include <cstdlib>
#include <cstring>

#include "cpu.h"
#include "kernels/q8.h"
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

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

// ----------------------------------------------------------------------------- int8
namespace {
bool q8_supported(const char* name) {
  if (std::strcmp(name, "scalar") == 0) return true;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (std::strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2");
  if (std::strcmp(name, "avxvnni") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
  if (std::strcmp(name, "avx512vnni") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
  if (std::strcmp(name, "neon") == 0) return true;
  if (std::strcmp(name, "neondot") == 0) return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
  return false;
}
}  // namespace

const Q8Table* q8_table_by_name(const char* name) {
  if (!q8_supported(name)) return nullptr;
  if (std::strcmp(name, "scalar") == 0) return q8_kernels_scalar();
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(name, "avx2") == 0) return q8_kernels_avx2();
  if (std::strcmp(name, "avxvnni") == 0) return q8_kernels_avxvnni();
  if (std::strcmp(name, "avx512vnni") == 0) return q8_kernels_avx512vnni();
#elif defined(__aarch64__)
  if (std::strcmp(name, "neon") == 0) return q8_kernels_neon();
  if (std::strcmp(name, "neondot") == 0) return q8_kernels_neondot();
#endif
  return nullptr;
}

const Q8Table* q8_kernels_for(const KernelTable* f32) {
  // ART_ISA8 forces an int8 table (tests, benchmarks); otherwise the best the
  // CPU has, within the family of the float table (scalar stays scalar, and
  // a 256-bit float table never gets 512-bit int8 kernels)
  if (const char* want = std::getenv("ART_ISA8"))
    if (const Q8Table* t = q8_table_by_name(want)) return t;
  if (f32 == nullptr || std::strcmp(f32->name, "scalar") == 0) return q8_kernels_scalar();
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(f32->name, "avx512") == 0 && q8_supported("avx512vnni")) return q8_kernels_avx512vnni();
  if (q8_supported("avxvnni")) return q8_kernels_avxvnni();
  if (q8_supported("avx2")) return q8_kernels_avx2();
#elif defined(__aarch64__)
  return q8_supported("neondot") ? q8_kernels_neondot() : q8_kernels_neon();
#endif
  return q8_kernels_scalar();
}

}  // namespace art
