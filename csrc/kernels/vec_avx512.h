// 16-lane AVX-512F vector. Only included inside an isa_begin.h region for AVX-512F.
#pragma once
#include <immintrin.h>

namespace art {

struct VecAVX512 {
  using T = __m512;
  static constexpr int W = 16;
  static inline T zero() { return _mm512_setzero_ps(); }
  static inline T set1(float a) { return _mm512_set1_ps(a); }
  static inline T load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, T a) { _mm512_storeu_ps(p, a); }
  static inline __mmask16 mask(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n > 0 ? n : 0)) - 1u); }
  static inline T load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static inline void store_n(float* p, T a, int n) { _mm512_mask_storeu_ps(p, mask(n), a); }
  static inline T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static inline T add(T a, T b) { return _mm512_add_ps(a, b); }
  static inline T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static inline T div(T a, T b) { return _mm512_div_ps(a, b); }
  static inline T max(T a, T b) { return _mm512_max_ps(a, b); }
  static inline T min(T a, T b) { return _mm512_min_ps(a, b); }
  // A load at base + idx * SC bytes as one instruction with that addressing
  // (SC = 1, 2, 4, 8): a depthwise strip reads its 14 input columns through
  // 4 base and 2 index registers. Left to the compiler, each column's offset
  // took a register of its own, and with 14 of them plus the weights' the
  // 15 general registers spilled into vector registers, whose moves compete
  // with the FMAs for ports 0 and 5. x86 GCC/Clang only (inline asm); the
  // memory operand tells the compiler the asm reads from base on.
#if defined(__GNUC__) && defined(__x86_64__)
  static constexpr bool kIndexedLoads = true;
  template <int SC>
  static inline T load_at(const float* base, int64_t idx) {
    T x;
    asm("vmovups (%1,%2,%c3), %0" : "=v"(x) : "r"(base), "r"(idx), "i"(SC), "m"(*(const char(*)[])base));
    return x;
  }
#else
  static constexpr bool kIndexedLoads = false;
  template <int SC>
  static inline T load_at(const float* base, int64_t idx) {
    return load(reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + idx * SC));
  }
#endif
  // base[idx[i]] for the W lanes
  static inline T gather(const float* base, const int32_t* idx) {
    return _mm512_i32gather_ps(_mm512_loadu_si512(idx), base, 4);
  }
  // p[idx[i]] for the W lanes, every idx[i] < 2W: two loads and one
  // two-source permute (a gather of 16 lanes costs several times that,
  // on AMD Zen 4 most of all)
  static inline T permute2(const float* p, const int32_t* idx) {
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), _mm512_loadu_si512(idx), _mm512_loadu_ps(p + W));
  }
};

}  // namespace art
