// int8 kernels for x86: AVX2 (sign-extended 16-bit products, vpmaddwd),
// AVX-VNNI (vpdpbusd on 256-bit vectors) and AVX-512 VNNI (vpdpbusd on
// 512-bit vectors, masked tails). Each region is compiled for its ISA by
// target attributes (isa_begin.h). The epilogue is the same float32
// sequence as q8_common.h's scalar one, so every table is bit-identical.
#include <cstring>

#include "q8.h"
// register-tile loops fully unrolled before scalar replacement: without it
// GCC keeps the accumulator arrays in memory and stores them every step
#if defined(__clang__)
#define ART_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define ART_UNROLL _Pragma("GCC unroll 16")
#else
#define ART_UNROLL
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: false positives in its AVX-512 headers
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// ------------------------------------------------------------------ AVX2
#define ART_TARGET "avx2"
#include "isa_begin.h"
namespace art {
namespace q8_avx2 {
#include "q8_common.h"
#include "q8_x86_avx2.h"

// One R x 8 tile: 8 columns of k4 weights are 32 bytes; each half widened to
// 16-bit (4 columns x 4 rows) and multiplied pairwise with the row's four
// activations (vpmaddwd), the pair sums added at the end.
template <int R>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n) {
  __m256i lo[R], hi[R];
  ART_UNROLL
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_si256();
  const int full = a.K >> 2, tail = a.K & 3, G = (a.K + 3) >> 2;
  const uint8_t* Ap[R];
  ART_UNROLL
  for (int r = 0; r < R; ++r) Ap[r] = a.A + (int64_t)(m + r) * a.lda;
  const int8_t* b = a.B + (int64_t)n * 4;
  const int64_t gs = a.ldb * 4;
  for (int g = 0; g < G; ++g) {
    const __m256i bb = _mm256_loadu_si256((const __m256i*)(b + g * gs));
    const __m256i b0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(bb));
    const __m256i b1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(bb, 1));
    const bool last = g == full;
    ART_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256i av =
          _mm256_cvtepu8_epi16(_mm_set1_epi32(last ? q8_a4_tail(Ap[r] + 4 * g, tail) : q8_a4(Ap[r] + 4 * g)));
      lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(av, b0));
      hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(av, b1));
    }
  }
  ART_UNROLL
  for (int r = 0; r < R; ++r) store8(a, m + r, n, _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo[r], hi[r]), 0xD8));
}

static void gemm(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  const int nfull = n0 + (n1 - n0) / 8 * 8;
  for (int n = n0; n < nfull; n += 8) {
    int m = m0;
    for (; m + 4 <= m1; m += 4) gemm_tile<4>(a, m, n);
    switch (m1 - m) {
      case 3: gemm_tile<3>(a, m, n); break;
      case 2: gemm_tile<2>(a, m, n); break;
      case 1: gemm_tile<1>(a, m, n); break;
      default: break;
    }
  }
  if (nfull < n1) q8_gemm_scalar(a, m0, m1, nfull, n1);
}

const Q8Table table = {"avx2", 4, 8, gemm, dwconv, quantize, add, channel_sum, scale_channels,
                       q8_im2col_row, q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
}  // namespace q8_avx2
}  // namespace art
#include "isa_end.h"
#undef ART_TARGET

// ------------------------------------------------------------------ AVX-VNNI
#define ART_TARGET "avx2,avxvnni"
#include "isa_begin.h"
namespace art {
namespace q8_avxvnni {
#include "q8_common.h"
#include "q8_x86_avx2.h"

// One R x (8 * NV) tile: vpdpbusd adds four uint8 x int8 products per lane.
template <int R, int NV>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n) {
  __m256i acc[R][NV];
  ART_UNROLL
  for (int r = 0; r < R; ++r)
    ART_UNROLL
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
  const int full = a.K >> 2, tail = a.K & 3, G = (a.K + 3) >> 2;
  const uint8_t* Ap[R];
  ART_UNROLL
  for (int r = 0; r < R; ++r) Ap[r] = a.A + (int64_t)(m + r) * a.lda;
  const int8_t* b = a.B + (int64_t)n * 4;
  const int64_t gs = a.ldb * 4;
  for (int g = 0; g < G; ++g) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + g * gs));
    const __m256i b1 = NV > 1 ? _mm256_loadu_si256((const __m256i*)(b + g * gs + 32)) : b0;
    const bool last = g == full;
    ART_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256i av = _mm256_set1_epi32(last ? q8_a4_tail(Ap[r] + 4 * g, tail) : q8_a4(Ap[r] + 4 * g));
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
      if (NV > 1) acc[r][NV - 1] = _mm256_dpbusd_avx_epi32(acc[r][NV - 1], av, b1);
    }
  }
  ART_UNROLL
  for (int r = 0; r < R; ++r) {
    store8(a, m + r, n, acc[r][0]);
    if (NV > 1) store8(a, m + r, n + 8, acc[r][NV - 1]);
  }
}

template <int NV>
static inline void gemm_cols(const Q8GemmArgs& a, int m0, int m1, int n) {
  int m = m0;
  for (; m + 6 <= m1; m += 6) gemm_tile<6, NV>(a, m, n);
  switch (m1 - m) {
    case 5: gemm_tile<5, NV>(a, m, n); break;
    case 4: gemm_tile<4, NV>(a, m, n); break;
    case 3: gemm_tile<3, NV>(a, m, n); break;
    case 2: gemm_tile<2, NV>(a, m, n); break;
    case 1: gemm_tile<1, NV>(a, m, n); break;
    default: break;
  }
}

static void gemm(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  int n = n0;
  for (; n + 16 <= n1; n += 16) gemm_cols<2>(a, m0, m1, n);
  for (; n + 8 <= n1; n += 8) gemm_cols<1>(a, m0, m1, n);
  if (n < n1) q8_gemm_scalar(a, m0, m1, n, n1);
}

const Q8Table table = {"avxvnni", 6, 16, gemm, dwconv, quantize, add, channel_sum, scale_channels,
                       q8_im2col_row, q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
}  // namespace q8_avxvnni
}  // namespace art
#include "isa_end.h"
#undef ART_TARGET

// ------------------------------------------------------------------ AVX-512 VNNI
#define ART_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2"
#include "isa_begin.h"
namespace art {
namespace q8_avx512vnni {
#include "q8_common.h"
#include "q8_x86_avx2.h"

static inline __mmask16 lanes(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n > 0 ? n : 0)) - 1u); }

static inline __m512 act16(__m512 t, Act act) {
  const __m512 z = _mm512_setzero_ps(), six = _mm512_set1_ps(6.f);
  switch (act) {
    case Act::Relu: return _mm512_max_ps(t, z);
    case Act::Relu6: return _mm512_min_ps(_mm512_max_ps(t, z), six);
    case Act::HSwish: {
      __m512 g = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, _mm512_set1_ps(3.f)), z), six);
      return _mm512_mul_ps(_mm512_mul_ps(t, g), _mm512_set1_ps(kQ8Sixth));
    }
    case Act::HSigmoid: {
      __m512 g = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, _mm512_set1_ps(3.f)), z), six);
      return _mm512_mul_ps(g, _mm512_set1_ps(kQ8Sixth));
    }
    default: return t;
  }
}

// The epilogue of 16 columns [n, n + cnt) of row m.
static inline void store16(const Q8GemmArgs& a, int m, int n, __m512i acc, __mmask16 k) {
  const Q8Epilogue& e = a.e;
  if (e.bias) acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(k, e.bias + n));
  __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_maskz_loadu_ps(k, e.mul + n));
  t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(k, e.add + n));
  t = act16(t, e.act);
  if (a.Cf) {
    _mm512_mask_storeu_ps(a.Cf + (int64_t)m * a.ldc + n, k, t);
    return;
  }
  __m512 u = _mm512_mul_ps(t, _mm512_set1_ps(e.inv_out));
  u = _mm512_min_ps(_mm512_max_ps(u, _mm512_set1_ps(e.lo)), _mm512_set1_ps(e.hi));
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(u), _mm512_set1_epi32(e.zo));
  _mm_mask_storeu_epi8(a.C + (int64_t)m * a.ldc + n, k, _mm512_cvtepi32_epi8(q));
}

template <int R, int NV>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n, int nr) {
  __m512i acc[R][NV];
  ART_UNROLL
  for (int r = 0; r < R; ++r)
    ART_UNROLL
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  const __mmask16 k0 = lanes(nr), k1 = lanes(nr - 16);
  const int full = a.K >> 2, tail = a.K & 3, G = (a.K + 3) >> 2;
  const uint8_t* Ap[R];
  ART_UNROLL
  for (int r = 0; r < R; ++r) Ap[r] = a.A + (int64_t)(m + r) * a.lda;
  const int8_t* b = a.B + (int64_t)n * 4;
  const int64_t gs = a.ldb * 4;
  for (int g = 0; g < G; ++g) {
    const __m512i b0 = _mm512_maskz_loadu_epi32(k0, b + g * gs);
    const __m512i b1 = NV > 1 ? _mm512_maskz_loadu_epi32(k1, b + g * gs + 64) : b0;
    const bool last = g == full;
    ART_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_set1_epi32(last ? q8_a4_tail(Ap[r] + 4 * g, tail) : q8_a4(Ap[r] + 4 * g));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
      if (NV > 1) acc[r][NV - 1] = _mm512_dpbusd_epi32(acc[r][NV - 1], av, b1);
    }
  }
  ART_UNROLL
  for (int r = 0; r < R; ++r) {
    store16(a, m + r, n, acc[r][0], k0);
    if (NV > 1) store16(a, m + r, n + 16, acc[r][NV - 1], k1);
  }
}

template <int NV>
static inline void gemm_cols(const Q8GemmArgs& a, int m0, int m1, int n, int nr) {
  int m = m0;
  for (; m + 8 <= m1; m += 8) gemm_tile<8, NV>(a, m, n, nr);
  switch (m1 - m) {
    case 7: gemm_tile<7, NV>(a, m, n, nr); break;
    case 6: gemm_tile<6, NV>(a, m, n, nr); break;
    case 5: gemm_tile<5, NV>(a, m, n, nr); break;
    case 4: gemm_tile<4, NV>(a, m, n, nr); break;
    case 3: gemm_tile<3, NV>(a, m, n, nr); break;
    case 2: gemm_tile<2, NV>(a, m, n, nr); break;
    case 1: gemm_tile<1, NV>(a, m, n, nr); break;
    default: break;
  }
}

static void gemm(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  int n = n0;
  for (; n + 32 <= n1; n += 32) gemm_cols<2>(a, m0, m1, n, 32);
  if (n1 - n > 16) gemm_cols<2>(a, m0, m1, n, n1 - n);
  else if (n < n1) gemm_cols<1>(a, m0, m1, n, n1 - n);
}

// ---- depthwise over packed weights (vpdpbusd over groups of four taps)
//
// Four taps of 64 channels are interleaved byte-wise (vpunpck{l,h}bw, then
// {l,h}wd within each 128-bit lane) into four vectors whose 32-bit lanes
// hold the four taps of one channel — the operand of vpdpbusd, which adds
// their products with the packed weights in one instruction. The unpacks
// leave channel 16L + 4i + j in lane (L, j) of vector i; the weights and the
// epilogue's per-channel values are stored in that order, and the packs of
// the epilogue (vpackssdw, vpackuswb, also per 128-bit lane) put the
// channels back in order. The input rows are copied into a ring of k rows
// padded with the zero point (real 0): no tap is ever outside, and the
// zero-point term is the constant -zp * sum of all k*k weights (pbias).
// 64, 32 or 16 channels a step: narrower steps read the same layout.
constexpr int kDwBlock = 64;

static inline int64_t dw_slots(int64_t C) { return (C + kDwBlock - 1) / kDwBlock * kDwBlock; }
static inline int64_t dw_channel(int64_t p) {
  const int64_t b = p / kDwBlock, r = p % kDwBlock, i = r / 16, L = (r % 16) / 4, j = r % 4;
  return b * kDwBlock + 16 * L + 4 * i + j;
}
static inline int dw_groups(int k) { return (k * k + 3) / 4; }
static inline int64_t dw_packed_bytes(int k, int64_t wc) { return int64_t(dw_groups(k)) * dw_slots(wc) * 4; }
static inline int64_t dw_row_stride(int W, int C, int k) { return int64_t(W + 2 * (k / 2)) * ((C + 15) / 16 * 16); }
static inline int64_t dw_ring_bytes(int k, int W, int C) { return int64_t(k) * dw_row_stride(W, C, k) + 64; }

static void dw_pack(const int8_t* w, int k, int64_t wc, int8_t* out) {
  const int G = dw_groups(k);
  const int64_t S = dw_slots(wc);
  for (int g = 0; g < G; ++g)
    for (int64_t p = 0; p < S; ++p) {
      const int64_t ch = dw_channel(p);
      for (int t4 = 0; t4 < 4; ++t4) {
        const int tap = 4 * g + t4;
        out[(g * S + p) * 4 + t4] = tap < k * k && ch < wc ? w[int64_t(tap) * wc + ch] : int8_t(0);
      }
    }
}

// 512-, 256- and 128-bit forms of the steps (AVX-512 VL + VNNI + BW): one
// definition, the width pasted into the intrinsics' names (_mm512_, _mm256_, _mm_)
template <int N> struct DwMask;
template <> struct DwMask<64> { static __mmask64 first(int n) { return n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1; } };
template <> struct DwMask<32> { static __mmask32 first(int n) { return n >= 32 ? ~__mmask32(0) : (__mmask32(1) << n) - 1; } };
template <> struct DwMask<16> { static __mmask16 first(int n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); } };
#define ART_DW_WIDTH(NAME, W, IT, FT, BYTES)                                                              \
  struct NAME {                                                                                          \
    using I = IT; using F = FT;                                                                          \
    static constexpr int N = BYTES;                                                                      \
    static I load(const void* p) { return _mm##W##_loadu_epi8(p); }                                      \
    static I unlo8(I a, I b) { return _mm##W##_unpacklo_epi8(a, b); }                                    \
    static I unhi8(I a, I b) { return _mm##W##_unpackhi_epi8(a, b); }                                    \
    static I unlo16(I a, I b) { return _mm##W##_unpacklo_epi16(a, b); }                                  \
    static I unhi16(I a, I b) { return _mm##W##_unpackhi_epi16(a, b); }                                  \
    static I dot(I acc, I a, I b) { return _mm##W##_dpbusd_epi32(acc, a, b); }                           \
    static F cvt(I a) { return _mm##W##_cvtepi32_ps(a); }                                                \
    static F loadf(const float* p) { return _mm##W##_loadu_ps(p); }                                      \
    static F mul(F a, F b) { return _mm##W##_mul_ps(a, b); }                                             \
    static F add(F a, F b) { return _mm##W##_add_ps(a, b); }                                             \
    static F max(F a, F b) { return _mm##W##_max_ps(a, b); }                                             \
    static F min(F a, F b) { return _mm##W##_min_ps(a, b); }                                             \
    static F set1(float v) { return _mm##W##_set1_ps(v); }                                               \
    static I round(F a) { return _mm##W##_cvtps_epi32(a); }                                              \
    static I add32(I a, I b) { return _mm##W##_add_epi32(a, b); }                                        \
    static I set1i(int v) { return _mm##W##_set1_epi32(v); }                                             \
    static I packs32(I a, I b) { return _mm##W##_packs_epi32(a, b); }                                    \
    static I packus16(I a, I b) { return _mm##W##_packus_epi16(a, b); }                                  \
    static void store(uint8_t* p, I v, int n) { _mm##W##_mask_storeu_epi8(p, DwMask<BYTES>::first(n), v); } \
  };
ART_DW_WIDTH(DwZ, 512, __m512i, __m512, 64)
ART_DW_WIDTH(DwY, 256, __m256i, __m256, 32)
ART_DW_WIDTH(DwX, , __m128i, __m128, 16)
#undef ART_DW_WIDTH

template <class D>
static inline typename D::F dw_act(typename D::F t, Act act) {
  const typename D::F z = D::set1(0.f), six = D::set1(6.f);
  switch (act) {
    case Act::Relu: return D::max(t, z);
    case Act::Relu6: return D::min(D::max(t, z), six);
    case Act::HSwish: return D::mul(D::mul(t, D::min(D::max(D::add(t, D::set1(3.f)), z), six)), D::set1(kQ8Sixth));
    case Act::HSigmoid: return D::mul(D::min(D::max(D::add(t, D::set1(3.f)), z), six), D::set1(kQ8Sixth));
    default: return t;
  }
}

// One output pixel's channels [c, c + D::N) (n of them stored): taps[t] is
// tap t's input at this pixel, channel 0; w the packed weights of this
// channel block at group 0 (groups S*4 bytes apart); q = c's slot offset.
template <class D>
static inline void dw_step(const Q8DwArgs& a, const uint8_t* const* taps, int64_t off, int G, const int8_t* w,
                           int64_t gstride, int64_t q, uint8_t* out, int n) {
  using I = typename D::I;
  I acc[4];
  for (int i = 0; i < 4; ++i) acc[i] = D::load(a.pbias + q + 16 * i);
  for (int g = 0; g < G; ++g) {
    const I x0 = D::load(taps[4 * g] + off), x1 = D::load(taps[4 * g + 1] + off);
    const I x2 = D::load(taps[4 * g + 2] + off), x3 = D::load(taps[4 * g + 3] + off);
    const I l01 = D::unlo8(x0, x1), h01 = D::unhi8(x0, x1), l23 = D::unlo8(x2, x3), h23 = D::unhi8(x2, x3);
    const int8_t* wg = w + g * gstride;
    acc[0] = D::dot(acc[0], D::unlo16(l01, l23), D::load(wg));
    acc[1] = D::dot(acc[1], D::unhi16(l01, l23), D::load(wg + 64));
    acc[2] = D::dot(acc[2], D::unlo16(h01, h23), D::load(wg + 128));
    acc[3] = D::dot(acc[3], D::unhi16(h01, h23), D::load(wg + 192));
  }
  const Q8Epilogue& e = a.e;
  I q32[4];
  for (int i = 0; i < 4; ++i) {
    typename D::F t = D::add(D::mul(D::cvt(acc[i]), D::loadf(a.pmul + q + 16 * i)), D::loadf(a.padd + q + 16 * i));
    t = dw_act<D>(t, e.act);
    typename D::F u = D::mul(t, D::set1(e.inv_out));
    u = D::min(D::max(u, D::set1(e.lo)), D::set1(e.hi));
    q32[i] = D::add32(D::round(u), D::set1i(e.zo));
  }
  D::store(out, D::packus16(D::packs32(q32[0], q32[1]), D::packs32(q32[2], q32[3])), n);
}

static void dwconv_packed(const Q8DwArgs& a, int oy0, int oy1) {
  const int k = a.k, p = k / 2, G = dw_groups(k);
  const int64_t Cp = (a.C + 15) / 16 * 16;   // channels a padded pixel holds
  const int64_t rs = dw_row_stride(a.W, a.C, k);
  const int64_t S = dw_slots(a.wc);
  const int64_t gstride = S * 4;
  // ring slot of input row iy: rows oy*s - p .. + k - 1 for output row oy
  auto slot = [&](int iy) { return a.ring + int64_t(((iy % k) + k) % k) * rs; };
  auto fill = [&](int iy) {
    uint8_t* r = slot(iy);
    std::memset(r, a.zi, rs);
    if (iy < 0 || iy >= a.H) return;
    const uint8_t* src = a.in + int64_t(iy) * a.W * a.C;
    uint8_t* dst = r + p * Cp;
    if (Cp == a.C) std::memcpy(dst, src, int64_t(a.W) * a.C);
    else
      for (int x = 0; x < a.W; ++x) std::memcpy(dst + x * Cp, src + int64_t(x) * a.C, a.C);
  };
  int next = oy0 * a.stride - p;   // the next input row the ring lacks
  const uint8_t* taps[52];
  for (int oy = oy0; oy < oy1; ++oy) {
    const int last = oy * a.stride - p + k;   // rows up to last - 1 are needed
    if (next < last - k) next = last - k;
    for (; next < last; ++next) fill(next);
    for (int t = 0; t < 4 * G; ++t) {
      const int tt = t < k * k ? t : 0;   // taps past k*k have zero weights
      taps[t] = slot(oy * a.stride - p + tt / k) + (tt % k) * Cp;
    }
    uint8_t* orow = a.out + int64_t(oy) * a.Wo * a.C;
    for (int ox = 0; ox < a.Wo; ++ox) {
      const int64_t px = int64_t(ox) * a.stride * Cp;
      uint8_t* o = orow + int64_t(ox) * a.C;
      int64_t c = 0;
      for (; c + 64 <= Cp; c += 64) dw_step<DwZ>(a, taps, px + c, G, a.wp + c * 4, gstride, c, o + c, int(std::min<int64_t>(64, a.C - c)));
      if (c + 32 <= Cp) {   // lanes 0-1 of the block at c (slots c + 16i + 4L + j)
        dw_step<DwY>(a, taps, px + c, G, a.wp + c * 4, gstride, c, o + c, int(std::min<int64_t>(32, a.C - c)));
        c += 32;
      }
      if (c < Cp) dw_step<DwX>(a, taps, px + c, G, a.wp + (c - c % 64) * 4 + (c % 64) / 16 * 16, gstride,
                               c - c % 64 + (c % 64) / 16 * 4, o + c, int(a.C - c));
    }
  }
}

const Q8Table table = {"avx512vnni", 8, 32, gemm, dwconv, quantize, add, channel_sum, scale_channels,
                       q8_im2col_row, q8_resize_row, dwconv_packed, dw_packed_bytes, dw_pack, dw_slots, dw_channel,
                       dw_ring_bytes};
}  // namespace q8_avx512vnni
}  // namespace art
#include "isa_end.h"
#undef ART_TARGET

namespace art {
const Q8Table* q8_kernels_avx2() { return &q8_avx2::table; }
const Q8Table* q8_kernels_avxvnni() { return &q8_avxvnni::table; }
const Q8Table* q8_kernels_avx512vnni() { return &q8_avx512vnni::table; }
}  // namespace art
