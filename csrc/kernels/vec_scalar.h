// Portable 4-lane "vector" of plain floats: the fallback every CPU can run.
// Compilers turn these loops into SSE2/NEON code where the baseline allows.
#pragma once
#include <cstdint>
#include <cstring>

namespace art {

struct VecScalar {
  struct T { float v[4]; };
  static constexpr int W = 4;
  static inline T zero() { T r; for (int i = 0; i < W; ++i) r.v[i] = 0.f; return r; }
  static inline T set1(float a) { T r; for (int i = 0; i < W; ++i) r.v[i] = a; return r; }
  static inline T load(const float* p) { T r; std::memcpy(r.v, p, sizeof r.v); return r; }
  static constexpr bool kIndexedLoads = false;   // see VecAVX512::load_at
  template <int SC>
  static inline T load_at(const float* base, int64_t idx) {
    return load(reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + idx * SC));
  }
  static inline void store(float* p, T a) { std::memcpy(p, a.v, sizeof a.v); }
  static inline T load_n(const float* p, int n) {
    T r = zero(); for (int i = 0; i < n; ++i) r.v[i] = p[i]; return r;
  }
  static inline void store_n(float* p, T a, int n) { for (int i = 0; i < n; ++i) p[i] = a.v[i]; }
  static inline T fma(T a, T b, T c) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i]; return r; }
  static inline T add(T a, T b) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] + b.v[i]; return r; }
  static inline T mul(T a, T b) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] * b.v[i]; return r; }
  static inline T div(T a, T b) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] / b.v[i]; return r; }
  static inline T max(T a, T b) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r; }
  static inline T min(T a, T b) { T r; for (int i = 0; i < W; ++i) r.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i]; return r; }
  static inline T gather(const float* base, const int32_t* idx) { T r; for (int i = 0; i < W; ++i) r.v[i] = base[idx[i]]; return r; }
  // p[idx[i]] for the W lanes, every idx[i] < 2W (see VecAVX512::permute2)
  static inline T permute2(const float* p, const int32_t* idx) { return gather(p, idx); }
};

}  // namespace art
