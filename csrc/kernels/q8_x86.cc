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
                       q8_im2col_row, q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
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
                       q8_im2col_row, q8_resize_row, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
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

static inline __m512 steps16(__m512 t, const Q8Epilogue& e) {
  if (e.act != Act::HSwish && e.act != Act::HSigmoid) return t;
  const __m512 g = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(t, _mm512_set1_ps(3.f)), _mm512_setzero_ps()),
                                 _mm512_set1_ps(6.f));
  return _mm512_mul_ps(e.act == Act::HSwish ? _mm512_mul_ps(t, g) : g, _mm512_set1_ps(e.out_scale));
}

// The per-column epilogue values of 16 columns, loaded once per tile.
struct Col16 {
  __m512 mul, add;
  __mmask16 k;
};

static inline Col16 col16(const Q8Epilogue& e, int n, __mmask16 k) {
  return {_mm512_maskz_loadu_ps(k, e.mul + n), _mm512_maskz_loadu_ps(k, e.add + n), k};
}

// The epilogue of 16 columns [n, n + 16) of row m (acc already holds the bias).
static inline void store16(const Q8GemmArgs& a, int m, int n, __m512i acc, const Col16& c) {
  const Q8Epilogue& e = a.e;
  const __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), c.mul), c.add);
  if (a.Cf) {
    _mm512_mask_storeu_ps(a.Cf + (int64_t)m * a.ldc + n, c.k, act16(t, e.act));
    return;
  }
  const __m512 u = _mm512_min_ps(_mm512_max_ps(steps16(t, e), _mm512_set1_ps(e.lo)), _mm512_set1_ps(e.hi));
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(u), _mm512_set1_epi32(e.zo));
  _mm_mask_storeu_epi8(a.C + (int64_t)m * a.ldc + n, c.k, _mm512_cvtepi32_epi8(q));
}

template <int R, int NV>
static inline void gemm_tile(const Q8GemmArgs& a, int m, int n, int nr) {
  __m512i acc[R][NV];
  const __mmask16 k0 = lanes(nr), k1 = lanes(nr - 16);
  const __m512i bias0 = a.e.bias ? _mm512_maskz_loadu_epi32(k0, a.e.bias + n) : _mm512_setzero_si512();
  const __m512i bias1 = a.e.bias && NV > 1 ? _mm512_maskz_loadu_epi32(k1, a.e.bias + n + 16) : _mm512_setzero_si512();
  ART_UNROLL
  for (int r = 0; r < R; ++r) {
    acc[r][0] = bias0;
    if (NV > 1) acc[r][NV - 1] = bias1;
  }
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
  const Col16 c0 = col16(a.e, n, k0), c1 = NV > 1 ? col16(a.e, n + 16, k1) : c0;
  ART_UNROLL
  for (int r = 0; r < R; ++r) {
    store16(a, m + r, n, acc[r][0], c0);
    if (NV > 1) store16(a, m + r, n + 16, acc[r][NV - 1], c1);
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
// vpdpbusd adds four uint8 x int8 products per 32-bit lane; here the four
// are four horizontally adjacent taps (kx = 4m .. 4m + 3) of one channel.
// Each input row is interleaved once, when it enters this thread's ring of k
// rows: for every position x, four pixels x .. x + 3 of 64 channels become
// four vectors whose lanes hold a channel's four pixels (vpunpck{l,h}bw, then
// {l,h}wd, within each 128-bit lane: channel 16L + 4i + j lands in lane
// (L, j) of vector i). Rows and pixels outside the image are the zero point
// (real 0), so no tap is ever skipped and the zero-point term is the
// constant -zp * (sum of the k*k weights) (pbias). The weights are packed
// once per engine in the same channel order, per group (ky, m); the
// epilogue's packs (vpackssdw, vpackuswb, also per 128-bit lane) put the
// channels back in order. The inner loop is then loads and vpdpbusd only,
// four output pixels sharing each weight load. One block of 64 channels at
// a time over the whole band of rows: the ring (k rows of one block) stays
// in L1/L2 and every interleaved row is used by k output rows before it
// leaves. The last block may be 32 or 16 channels wide: the narrower steps
// read lanes of the same layout. Strides 1, 2 and 4 (position x of a quad
// is a multiple of the stride: rows keep only those).
constexpr int kDwBlock = 64;

static inline int64_t dw_slots(int64_t C) { return (C + kDwBlock - 1) / kDwBlock * kDwBlock; }
static inline int64_t dw_channel(int64_t p) {
  const int64_t b = p / kDwBlock, r = p % kDwBlock, i = r / 16, L = (r % 16) / 4, j = r % 4;
  return b * kDwBlock + 16 * L + 4 * i + j;
}
static inline bool dw_packed_stride(int s) { return s >= 1 && 4 % s == 0; }
static inline int dw_quads(int k) { return (k + 3) / 4; }
static inline int64_t dw_packed_bytes(int k, int64_t wc) { return int64_t(k) * dw_quads(k) * dw_slots(wc) * 4; }
static inline int64_t dw_positions(int W, int k, int s) { return (W + 2 * (k / 2) + s - 1) / s; }
static inline int64_t dw_ring_bytes(int k, int W, int C, int s) { return int64_t(k) * dw_positions(W, k, s) * 256; }

static void dw_pack(const int8_t* w, int k, int64_t wc, int8_t* out) {
  const int M = dw_quads(k);
  const int64_t S = dw_slots(wc);
  for (int ky = 0; ky < k; ++ky)
    for (int m = 0; m < M; ++m)
      for (int64_t p = 0; p < S; ++p) {
        const int64_t ch = dw_channel(p);
        for (int t4 = 0; t4 < 4; ++t4) {
          const int kx = 4 * m + t4;
          out[((int64_t(ky) * M + m) * S + p) * 4 + t4] = kx < k && ch < wc ? w[(int64_t(ky) * k + kx) * wc + ch] : int8_t(0);
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

// hswish / hsigmoid from real units to output steps (q8.h); other acts: t is u
template <class D>
static inline typename D::F dw_steps(typename D::F t, const Q8Epilogue& e) {
  if (e.act != Act::HSwish && e.act != Act::HSigmoid) return t;
  const typename D::F g = D::min(D::max(D::add(t, D::set1(3.f)), D::set1(0.f)), D::set1(6.f));
  return D::mul(e.act == Act::HSwish ? D::mul(t, g) : g, D::set1(e.out_scale));
}

// Interleave channels [c, c + 64) of input row iy into ring row r (positions x = 0, s, 2s, ...).
static void dw_fill(const Q8DwArgs& a, int iy, int64_t c, uint8_t* r) {
  const int p = a.k / 2, s = a.stride;
  const int64_t npos = dw_positions(a.W, a.k, s);
  const bool in_image = iy >= 0 && iy < a.H;
  const __m512i zp = _mm512_set1_epi8(static_cast<char>(a.zi));
  const uint8_t* row = a.in + int64_t(in_image ? iy : 0) * a.W * a.C + c;
  const __mmask64 k = DwMask<64>::first(int(a.C - c));
  for (int64_t pos = 0; pos < npos; ++pos) {
    __m512i v[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t px = pos * s + j - p;
      v[j] = in_image && px >= 0 && px < a.W ? _mm512_mask_loadu_epi8(zp, k, row + px * a.C) : zp;
    }
    const __m512i l01 = _mm512_unpacklo_epi8(v[0], v[1]), h01 = _mm512_unpackhi_epi8(v[0], v[1]);
    const __m512i l23 = _mm512_unpacklo_epi8(v[2], v[3]), h23 = _mm512_unpackhi_epi8(v[2], v[3]);
    uint8_t* q = r + pos * 256;
    _mm512_storeu_si512(q, _mm512_unpacklo_epi16(l01, l23));
    _mm512_storeu_si512(q + 64, _mm512_unpackhi_epi16(l01, l23));
    _mm512_storeu_si512(q + 128, _mm512_unpacklo_epi16(h01, h23));
    _mm512_storeu_si512(q + 192, _mm512_unpackhi_epi16(h01, h23));
  }
}

// T output pixels' channels of one step (D::N wide): rows[ky] are the ring
// rows, q0 the first pixel's byte offset in a row (its position, channel
// step), pstep the bytes between pixels, w the packed weights of the step
// (groups gstride bytes apart), sl the step's first slot.
template <class D, int T>
static inline void dw_pixels(const Q8DwArgs& a, uint8_t* const* rows, int64_t q0, int64_t pstep, int64_t qstep,
                             const int8_t* w, int64_t gstride, int64_t sl, uint8_t* out, int64_t ostride, int n) {
  using I = typename D::I;
  const int k = a.k, M = dw_quads(k);
  I acc[T][4];
  ART_UNROLL
  for (int i = 0; i < 4; ++i) {
    const I b = D::load(a.pbias + sl + 16 * i);
    ART_UNROLL
    for (int t = 0; t < T; ++t) acc[t][i] = b;
  }
  for (int ky = 0; ky < k; ++ky) {
    const uint8_t* r = rows[ky] + q0;
    for (int m = 0; m < M; ++m) {
      const int8_t* wg = w + (int64_t(ky) * M + m) * gstride;
      const I w0 = D::load(wg), w1 = D::load(wg + 64), w2 = D::load(wg + 128), w3 = D::load(wg + 192);
      const uint8_t* rq = r + m * qstep;
      ART_UNROLL
      for (int t = 0; t < T; ++t) {
        const uint8_t* x = rq + t * pstep;
        acc[t][0] = D::dot(acc[t][0], D::load(x), w0);
        acc[t][1] = D::dot(acc[t][1], D::load(x + 64), w1);
        acc[t][2] = D::dot(acc[t][2], D::load(x + 128), w2);
        acc[t][3] = D::dot(acc[t][3], D::load(x + 192), w3);
      }
    }
  }
  const Q8Epilogue& e = a.e;
  typename D::F mul[4], add[4];
  ART_UNROLL
  for (int i = 0; i < 4; ++i) {
    mul[i] = D::loadf(a.pmul + sl + 16 * i);
    add[i] = D::loadf(a.padd + sl + 16 * i);
  }
  ART_UNROLL
  for (int t = 0; t < T; ++t) {
    I q32[4];
    ART_UNROLL
    for (int i = 0; i < 4; ++i) {
      typename D::F u = D::add(D::mul(D::cvt(acc[t][i]), mul[i]), add[i]);
      u = D::min(D::max(dw_steps<D>(u, e), D::set1(e.lo)), D::set1(e.hi));
      q32[i] = D::add32(D::round(u), D::set1i(e.zo));
    }
    D::store(out + t * ostride, D::packus16(D::packs32(q32[0], q32[1]), D::packs32(q32[2], q32[3])), n);
  }
}

// Output pixels [ox, ox + T) of one block of channels [c, c + width) (D: the step's width).
template <class D, int T>
static inline void dw_block(const Q8DwArgs& a, uint8_t* const* rows, int ox, int64_t c, uint8_t* orow) {
  const int64_t gstride = dw_slots(a.wc) * 4;
  const int64_t qstep = 4 / a.stride * 256;   // bytes between the quads of a row (4 pixels = 4/s positions)
  dw_pixels<D, T>(a, rows, int64_t(ox) * 256, 256, qstep, a.wp + c * 4, gstride, c, orow + int64_t(ox) * a.C + c, a.C,
                  int(std::min<int64_t>(D::N, a.C - c)));
}

template <class D>
static void dw_rows(const Q8DwArgs& a, int oy0, int oy1, int64_t c) {
  const int k = a.k, p = k / 2, s = a.stride;
  const int64_t rowb = dw_positions(a.W, k, s) * 256;
  auto slot = [&](int iy) { return a.ring + int64_t(((iy % k) + k) % k) * rowb; };
  int next = oy0 * s - p;   // the next input row the ring lacks
  uint8_t* rows[16];
  for (int oy = oy0; oy < oy1; ++oy) {
    const int last = oy * s - p + k;
    if (next < last - k) next = last - k;
    for (; next < last; ++next) dw_fill(a, next, c, slot(next));
    for (int ky = 0; ky < k; ++ky) rows[ky] = slot(oy * s - p + ky);
    uint8_t* orow = a.out + int64_t(oy) * a.Wo * a.C;
    int ox = 0;
    for (; ox + 4 <= a.Wo; ox += 4) dw_block<D, 4>(a, rows, ox, c, orow);
    switch (a.Wo - ox) {
      case 3: dw_block<D, 3>(a, rows, ox, c, orow); break;
      case 2: dw_block<D, 2>(a, rows, ox, c, orow); break;
      case 1: dw_block<D, 1>(a, rows, ox, c, orow); break;
      default: break;
    }
  }
}

static void dwconv_packed(const Q8DwArgs& a, int oy0, int oy1) {
  for (int64_t c = 0; c < a.C; c += 64) {
    const int64_t rem = a.C - c;
    if (rem > 32) dw_rows<DwZ>(a, oy0, oy1, c);
    else if (rem > 16) dw_rows<DwY>(a, oy0, oy1, c);
    else dw_rows<DwX>(a, oy0, oy1, c);
  }
}

// ---- elementwise, 16 lanes a step, masked tails (the AVX2 ones of q8_x86_avx2.h on 512 bits)
static inline __m512i load16_u8(const uint8_t* p, __mmask16 k) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p)); }

// rint(clamp(u, lo, hi)) + zo of 16 lanes, stored as bytes
static inline void round16(uint8_t* p, __m512 u, float lo, float hi, int zo, __mmask16 k) {
  u = _mm512_min_ps(_mm512_max_ps(u, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
  _mm_mask_storeu_epi8(p, k, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(u), _mm512_set1_epi32(zo))));
}

static void quantize16(const float* x, int64_t n, float inv, float lo, float hi, int zo, uint8_t* out) {
  const __m512 vi = _mm512_set1_ps(inv);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) round16(out + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vi), lo, hi, zo, 0xFFFF);
  if (i < n) {
    const __mmask16 k = lanes(int(n - i));
    round16(out + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vi), lo, hi, zo, k);
  }
}

static void add16(const uint8_t* a, int za, float ma, const uint8_t* b, int zb, float mb, int64_t n, float lo, float hi,
                  int zo, uint8_t* out) {
  const __m512i vza = _mm512_set1_epi32(za), vzb = _mm512_set1_epi32(zb);
  const __m512 vma = _mm512_set1_ps(ma), vmb = _mm512_set1_ps(mb);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes(int(std::min<int64_t>(16, n - i)));
    const __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load16_u8(a + i, k), vza)), vma);
    const __m512 fb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load16_u8(b + i, k), vzb)), vmb);
    round16(out + i, _mm512_add_ps(fa, fb), lo, hi, zo, k);
  }
}

static void channel_sum16(const uint8_t* x, int64_t pixels, int C, int64_t stride, int32_t* out) {
  for (int c = 0; c < C; c += 16) {
    const __mmask16 k = lanes(C - c);
    __m512i s = _mm512_setzero_si512();
    for (int64_t p = 0; p < pixels; ++p) s = _mm512_add_epi32(s, load16_u8(x + p * stride + c, k));
    _mm512_mask_storeu_epi32(out + c, k, s);
  }
}

static void scale_channels16(const uint8_t* x, int64_t pixels, int C, int zi, const float* m, float lo, float hi, int zo,
                             uint8_t* out) {
  const __m512i vz = _mm512_set1_epi32(zi);
  for (int64_t p = 0; p < pixels; ++p)
    for (int c = 0; c < C; c += 16) {
      const __mmask16 k = lanes(C - c);
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(load16_u8(x + p * C + c, k), vz)),
                                     _mm512_maskz_loadu_ps(k, m + c));
      round16(out + p * C + c, f, lo, hi, zo, k);
    }
}

// Bilinear resize of one row, 16 output elements a step: the four source
// bytes of each gathered (32-bit gathers at byte offsets, the low byte kept),
// then q8_resize_row's float32 sequence on 16 lanes.
static void resize_row16(const Q8ResizeArgs& a, int oy, uint8_t* out) {
  if (a.xe0 == nullptr) {
    q8_resize_row(a, oy, out);
    return;
  }
  const int64_t row = (int64_t)a.W * a.C, n = (int64_t)a.Wo * a.C;
  const uint8_t* r0 = a.in + a.ry0[oy] * row;
  const uint8_t* r1 = a.in + a.ry1[oy] * row;
  const __m512 fy = _mm512_set1_ps(a.fy[oy]), gy = _mm512_set1_ps(1.f - a.fy[oy]);
  const __m512i lowb = _mm512_set1_epi32(0xFF);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = lanes(int(std::min<int64_t>(16, n - j)));
    const __m512i i0 = _mm512_maskz_loadu_epi32(k, a.xe0 + j), i1 = _mm512_maskz_loadu_epi32(k, a.xe1 + j);
    auto g = [&](const uint8_t* r, __m512i idx) {
      return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, r, 1), lowb));
    };
    const __m512 fx = _mm512_maskz_loadu_ps(k, a.fxe + j);
    const __m512 gx = _mm512_sub_ps(_mm512_set1_ps(1.f), fx);
    const __m512 top = _mm512_add_ps(_mm512_mul_ps(g(r0, i0), gx), _mm512_mul_ps(g(r0, i1), fx));
    const __m512 bot = _mm512_add_ps(_mm512_mul_ps(g(r1, i0), gx), _mm512_mul_ps(g(r1, i1), fx));
    round16(out + j, _mm512_add_ps(_mm512_mul_ps(top, gy), _mm512_mul_ps(bot, fy)), 0.f, 255.f, 0, k);
  }
}

const Q8Table table = {"avx512vnni", 8, 32, gemm, dwconv, quantize16, add16, channel_sum16, scale_channels16,
                       q8_im2col_row, resize_row16, dwconv_packed, dw_packed_stride, dw_packed_bytes, dw_pack,
                       dw_slots, dw_channel, dw_ring_bytes, 0};
}  // namespace q8_avx512vnni
}  // namespace art
#include "isa_end.h"
#undef ART_TARGET

namespace art {
const Q8Table* q8_kernels_avx2() { return &q8_avx2::table; }
const Q8Table* q8_kernels_avxvnni() { return &q8_avxvnni::table; }
const Q8Table* q8_kernels_avx512vnni() { return &q8_avx512vnni::table; }
}  // namespace art
