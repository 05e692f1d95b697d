// int8 kernels for aarch64: NEON with the dot-product extension (sdot,
// ARMv8.2 — Cortex-A55/A76, the Raspberry Pi 5, Jetson Orin) and without it
// (widening multiplies and pairwise adds — Cortex-A72, the Raspberry Pi 4).
//
// Both GEMMs multiply signed bytes: the uint8 activations enter as a - 128
// (a ^ 0x80), and the zero-point correction the op prepares absorbs the
// 128 (Q8Table::a_offset). The k4 weight layout is sdot's operand: 16
// bytes = 4 columns x 4 rows. The epilogue is q8_common.h's float32
// sequence on four lanes (vcvtnq rounds half to even, like nearbyint), so
// the results are bit-identical to every other table.
#include <arm_neon.h>

#include <algorithm>

#include "q8.h"

namespace art {
namespace q8_neon_common {
#include "q8_common.h"

static inline float32x4_t steps4(float32x4_t t, const Q8Epilogue& e) {
  if (e.act != Act::HSwish && e.act != Act::HSigmoid) return t;
  const float32x4_t g = vminq_f32(vmaxq_f32(vaddq_f32(t, vdupq_n_f32(3.f)), vdupq_n_f32(0.f)), vdupq_n_f32(6.f));
  return vmulq_f32(e.act == Act::HSwish ? vmulq_f32(t, g) : g, vdupq_n_f32(e.out_scale));
}

static inline float32x4_t act4(float32x4_t t, Act act) {
  const float32x4_t z = vdupq_n_f32(0.f), six = vdupq_n_f32(6.f);
  switch (act) {
    case Act::Relu: return vmaxq_f32(t, z);
    case Act::Relu6: return vminq_f32(vmaxq_f32(t, z), six);
    case Act::HSwish: {
      const float32x4_t g = vminq_f32(vmaxq_f32(vaddq_f32(t, vdupq_n_f32(3.f)), z), six);
      return vmulq_f32(vmulq_f32(t, g), vdupq_n_f32(kQ8Sixth));
    }
    case Act::HSigmoid:
      return vmulq_f32(vminq_f32(vmaxq_f32(vaddq_f32(t, vdupq_n_f32(3.f)), z), six), vdupq_n_f32(kQ8Sixth));
    default: return t;
  }
}

// rint(clamp(u, lo, hi)) + zo of 4 lanes (values 0..255 as int32)
static inline int32x4_t round4(float32x4_t u, float lo, float hi, int zo) {
  u = vminq_f32(vmaxq_f32(u, vdupq_n_f32(lo)), vdupq_n_f32(hi));
  return vaddq_s32(vcvtnq_s32_f32(u), vdupq_n_s32(zo));
}

static inline void store_bytes4(uint8_t* p, int32x4_t q) {
  const uint8x8_t b = vqmovun_s16(vcombine_s16(vqmovn_s32(q), vqmovn_s32(q)));
  vst1_lane_u32(reinterpret_cast<uint32_t*>(p), vreinterpret_u32_u8(b), 0);   // unaligned is fine on aarch64
}

// The epilogue of columns [n, n + 4) of row m (acc without the bias).
static inline void store4(const Q8GemmArgs& a, int m, int n, int32x4_t acc) {
  const Q8Epilogue& e = a.e;
  if (e.bias) acc = vaddq_s32(acc, vld1q_s32(e.bias + n));
  const float32x4_t t = vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(e.mul + n)), vld1q_f32(e.add + n));
  if (a.Cf) {
    vst1q_f32(a.Cf + (int64_t)m * a.ldc + n, act4(t, e.act));
    return;
  }
  store_bytes4(a.C + (int64_t)m * a.ldc + n, round4(steps4(t, e), e.lo, e.hi, e.zo));
}

// The four activations of row m at byte 4g, as signed (a - 128); past K: 0 (i.e. a = 128... no: the bytes past K
// must contribute nothing, so they are the signed zero)
static inline int32_t a4_signed(const uint8_t* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint32_t(uint8_t(p[i] ^ 0x80)) << (8 * i);
  return static_cast<int32_t>(v);
}

// Signed-byte GEMM with a zero-point correction for a - 128, scalar: the
// column tails of both NEON GEMMs.
static void gemm_signed_scalar(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  for (int m = m0; m < m1; ++m) {
    const uint8_t* A = a.A + (int64_t)m * a.lda;
    for (int n = n0; n < n1; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < a.K; ++k) acc += (int32_t(A[k]) - 128) * int32_t(q8_b(a, k, n));
      q8_store(a, m, n, acc);
    }
  }
}

// Depthwise: 8 channels a step, widened to 16 bits, multiply-accumulated into 32.
static void dwconv(const Q8DwArgs& a, int oy0, int oy1) {
  const int C8 = a.C & ~7;
  const int16x8_t zi = vdupq_n_s16(static_cast<int16_t>(a.zi));
  for (int oy = oy0; oy < oy1; ++oy) {
    for (int ox = 0; ox < a.Wo; ++ox) {
      const Q8Taps tp = q8_taps(a, oy, ox);
      const int iy0 = tp.iy0, ix0 = tp.ix0, ky0 = tp.ky0, ky1 = tp.ky1, kx0 = tp.kx0, kx1 = tp.kx1;
      uint8_t* out = a.out + ((int64_t)oy * a.Wo + ox) * a.C;
      for (int c = 0; c < C8; c += 8) {
        int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
        for (int ky = ky0; ky < ky1; ++ky) {
          const uint8_t* in = a.in + ((int64_t)(iy0 + ky) * a.W + ix0) * a.C + c;
          const int8_t* w = a.w + (int64_t)ky * a.k * a.wc + c;
          for (int kx = kx0; kx < kx1; ++kx) {
            const int16x8_t x = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(in + kx * a.C))), zi);
            const int16x8_t wv = vmovl_s8(vld1_s8(w + kx * a.wc));
            lo = vmlal_s16(lo, vget_low_s16(x), vget_low_s16(wv));
            hi = vmlal_s16(hi, vget_high_s16(x), vget_high_s16(wv));
          }
        }
        const Q8Epilogue& e = a.e;
        for (int h = 0; h < 2; ++h) {
          const int32x4_t acc = h ? hi : lo;
          const float32x4_t t =
              vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(e.mul + c + 4 * h)), vld1q_f32(e.add + c + 4 * h));
          store_bytes4(out + c + 4 * h, round4(steps4(t, e), e.lo, e.hi, e.zo));
        }
      }
      if (C8 < a.C) q8_dw_pixel(a, oy, ox, C8, a.C);
    }
  }
}

static void quantize(const float* x, int64_t n, float inv, float lo, float hi, int zo, uint8_t* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) store_bytes4(out + i, round4(vmulq_f32(vld1q_f32(x + i), vdupq_n_f32(inv)), lo, hi, zo));
  q8_quantize_scalar(x + i, n - i, inv, lo, hi, zo, out + i);
}

static inline int32x4_t load4_u8(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))))));
}

static void add(const uint8_t* a, int za, float ma, const uint8_t* b, int zb, float mb, int64_t n, float lo, float hi,
                int zo, uint8_t* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t fa = vmulq_f32(vcvtq_f32_s32(vsubq_s32(load4_u8(a + i), vdupq_n_s32(za))), vdupq_n_f32(ma));
    const float32x4_t fb = vmulq_f32(vcvtq_f32_s32(vsubq_s32(load4_u8(b + i), vdupq_n_s32(zb))), vdupq_n_f32(mb));
    store_bytes4(out + i, round4(vaddq_f32(fa, fb), lo, hi, zo));
  }
  q8_add_scalar(a + i, za, ma, b + i, zb, mb, n - i, lo, hi, zo, out + i);
}

static void scale_channels(const uint8_t* x, int64_t pixels, int C, int zi, const float* m, float lo, float hi, int zo,
                           uint8_t* out) {
  const int C4 = C & ~3;
  for (int64_t p = 0; p < pixels; ++p) {
    const uint8_t* xp = x + p * C;
    uint8_t* op = out + p * C;
    for (int c = 0; c < C4; c += 4) {
      const float32x4_t f = vmulq_f32(vcvtq_f32_s32(vsubq_s32(load4_u8(xp + c), vdupq_n_s32(zi))), vld1q_f32(m + c));
      store_bytes4(op + c, round4(f, lo, hi, zo));
    }
    for (int c = C4; c < C; ++c) op[c] = q8_round(static_cast<float>(int(xp[c]) - zi) * m[c], lo, hi, zo);
  }
}

static void channel_sum(const uint8_t* x, int64_t pixels, int C, int64_t stride, int32_t* out) {
  const int C8 = C & ~7;
  for (int c = 0; c < C8; c += 8) {
    uint32x4_t lo = vdupq_n_u32(0), hi = vdupq_n_u32(0);
    for (int64_t p = 0; p < pixels; ++p) {
      const uint16x8_t v = vmovl_u8(vld1_u8(x + p * stride + c));
      lo = vaddw_u16(lo, vget_low_u16(v));
      hi = vaddw_u16(hi, vget_high_u16(v));
    }
    vst1q_s32(out + c, vreinterpretq_s32_u32(lo));
    vst1q_s32(out + c + 4, vreinterpretq_s32_u32(hi));
  }
  for (int c = C8; c < C; ++c) {
    int32_t s = 0;
    for (int64_t p = 0; p < pixels; ++p) s += x[p * stride + c];
    out[c] = s;
  }
}
}  // namespace q8_neon_common

// ------------------------------------------------------------------ NEON without dot products
namespace q8_neon {
using namespace q8_neon_common;

// R rows x 4 columns: each group's 16 weight bytes (4 columns x 4 rows) times
// the row's four activations, widened to 16-bit products (vmull_s8) and
// added pairwise into 32 bits (vpadalq_s16); the pairs are folded at the end.
template <int R>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n) {
  int32x4_t lo[R], hi[R];
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = vdupq_n_s32(0);
  const int full = a.K >> 2, tail = a.K & 3, G = (a.K + 3) >> 2;
  const int8_t* b = a.B + (int64_t)n * 4;
  const int64_t gs = a.ldb * 4;
  for (int g = 0; g < G; ++g) {
    const int8x16_t bv = vld1q_s8(b + g * gs);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = a.A + (int64_t)(m + r) * a.lda + 4 * g;
      const int8x8_t av = vreinterpret_s8_s32(vdup_n_s32(a4_signed(p, g < full ? 4 : tail)));
      lo[r] = vpadalq_s16(lo[r], vmull_s8(vget_low_s8(bv), av));
      hi[r] = vpadalq_s16(hi[r], vmull_s8(vget_high_s8(bv), av));
    }
  }
  for (int r = 0; r < R; ++r) store4(a, m + r, n, vpaddq_s32(lo[r], hi[r]));
}

static void gemm(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  const int nfull = n0 + (n1 - n0) / 4 * 4;
  for (int n = n0; n < nfull; n += 4) {
    int m = m0;
    for (; m + 4 <= m1; m += 4) gemm_tile<4>(a, m, n);
    for (; m < m1; ++m) gemm_tile<1>(a, m, n);
  }
  if (nfull < n1) gemm_signed_scalar(a, m0, m1, nfull, n1);
}

const Q8Table table = {"neon", 4, 4, gemm, dwconv, quantize, add, channel_sum, scale_channels, q8_im2col_row,
                       q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 128};
}  // namespace q8_neon

// ------------------------------------------------------------------ NEON with dot products
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
namespace q8_neondot {
using namespace q8_neon_common;

// R rows x 16 columns (four vectors of 4 columns): sdot adds the products of
// a column's four weight bytes with the row's four activations per lane.
template <int R>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n) {
  int32x4_t acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  const int full = a.K >> 2, tail = a.K & 3, G = (a.K + 3) >> 2;
  const int8_t* b = a.B + (int64_t)n * 4;
  const int64_t gs = a.ldb * 4;
  for (int g = 0; g < G; ++g) {
    int8x16_t bv[4];
    for (int v = 0; v < 4; ++v) bv[v] = vld1q_s8(b + g * gs + 16 * v);
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = a.A + (int64_t)(m + r) * a.lda + 4 * g;
      const int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(a4_signed(p, g < full ? 4 : tail)));
      for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], bv[v], av);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) store4(a, m + r, n + 4 * v, acc[r][v]);
}

static void gemm(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  int n = n0;
  for (; n + 16 <= n1; n += 16) {
    int m = m0;
    for (; m + 4 <= m1; m += 4) gemm_tile<4>(a, m, n);
    for (; m < m1; ++m) gemm_tile<1>(a, m, n);
  }
  if (n < n1) q8_neon::gemm(a, m0, m1, n, n1);   // the last columns, 4 at a time
}

const Q8Table table = {"neondot", 4, 16, gemm, dwconv, quantize, add, channel_sum, scale_channels, q8_im2col_row,
                       q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 128};
}  // namespace q8_neondot
#pragma GCC pop_options

const Q8Table* q8_kernels_neon() { return &q8_neon::table; }
const Q8Table* q8_kernels_neondot() { return &q8_neondot::table; }
}  // namespace art
