// 8-lane AVX2 + FMA vector. Only included inside an isa_begin.h region for AVX2+FMA.
#pragma once
#include <immintrin.h>

namespace art {

struct VecAVX2 {
  using T = __m256;
  static constexpr int W = 8;
  static inline T zero() { return _mm256_setzero_ps(); }
  static inline T set1(float a) { return _mm256_set1_ps(a); }
  static inline T load(const float* p) { return _mm256_loadu_ps(p); }
  static constexpr bool kIndexedLoads = false;   // see VecAVX512::load_at
  template <int SC>
  static inline T load_at(const float* base, int64_t idx) {
    return load(reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + idx * SC));
  }
  static inline void store(float* p, T a) { _mm256_storeu_ps(p, a); }
  static inline __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline T load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static inline void store_n(float* p, T a, int n) { _mm256_maskstore_ps(p, mask(n), a); }
  static inline T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static inline T add(T a, T b) { return _mm256_add_ps(a, b); }
  static inline T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static inline T div(T a, T b) { return _mm256_div_ps(a, b); }
  static inline T max(T a, T b) { return _mm256_max_ps(a, b); }
  static inline T min(T a, T b) { return _mm256_min_ps(a, b); }
  static inline T gather(const float* base, const int32_t* idx) {
    return _mm256_i32gather_ps(base, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), 4);
  }
  // p[idx[i]] for the W lanes, every idx[i] < 2W (see VecAVX512::permute2)
  static inline T permute2(const float* p, const int32_t* idx) { return gather(p, idx); }
};

}  // namespace art
