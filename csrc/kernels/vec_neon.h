// 4-lane NEON vector (aarch64, where NEON is always present).
#pragma once
#include <arm_neon.h>

namespace art {

struct VecNEON {
  using T = float32x4_t;
  static constexpr int W = 4;
  static inline T zero() { return vdupq_n_f32(0.f); }
  static inline T set1(float a) { return vdupq_n_f32(a); }
  static inline T load(const float* p) { return vld1q_f32(p); }
  static constexpr bool kIndexedLoads = false;   // see VecAVX512::load_at
  template <int SC>
  static inline T load_at(const float* base, int64_t idx) {
    return load(reinterpret_cast<const float*>(reinterpret_cast<const char*>(base) + idx * SC));
  }
  static inline void store(float* p, T a) { vst1q_f32(p, a); }
  static inline T load_n(const float* p, int n) {
    float t[4] = {0.f, 0.f, 0.f, 0.f};
    for (int i = 0; i < n && i < 4; ++i) t[i] = p[i];
    return vld1q_f32(t);
  }
  static inline void store_n(float* p, T a, int n) {
    float t[4];
    vst1q_f32(t, a);
    for (int i = 0; i < n && i < 4; ++i) p[i] = t[i];
  }
  static inline T fma(T a, T b, T c) { return vfmaq_f32(c, a, b); }
  static inline T add(T a, T b) { return vaddq_f32(a, b); }
  static inline T mul(T a, T b) { return vmulq_f32(a, b); }
  static inline T div(T a, T b) { return vdivq_f32(a, b); }
  static inline T max(T a, T b) { return vmaxq_f32(a, b); }
  static inline T min(T a, T b) { return vminq_f32(a, b); }
  static inline T gather(const float* base, const int32_t* idx) {
    const float t[4] = {base[idx[0]], base[idx[1]], base[idx[2]], base[idx[3]]};
    return vld1q_f32(t);
  }
  // p[idx[i]] for the W lanes, every idx[i] < 2W (see VecAVX512::permute2)
  static inline T permute2(const float* p, const int32_t* idx) { return gather(p, idx); }
};

}  // namespace art
