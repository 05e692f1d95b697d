// Kernel interface: argument structs and the per-ISA function table.
//
// Every kernel family has one implementation (impl.h) written against a
// vector trait; f32_<isa>.cc instantiates it for one ISA, compiled with that
// ISA's flags, and cpu.cc picks one table once at start-up (XNNPACK style).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace art {

enum class Act : int { None = 0, Relu = 1, Relu6 = 2, HSwish = 3, HSigmoid = 4, Sigmoid = 5 };

// Columns per panel of a 2-D weight stored in panels (GemmArgs::bk).
constexpr int kPanel = 32;

// C[m, n] = act(sum_k A[m, k] * B[k, n + boff] * scale[n] + shift[n]) + res[m, n]
// for m in [m0, m1), n in [n0, n1). B is a prefix view of a stored [Ks, ldb]
// matrix (K <= Ks, N + boff <= ldb), laid out
//  - row-major (bk == 0): row k at B + k * ldb;
//  - in panels (bk == Ks > 0): kPanel-column panels one after another, each
//    [Ks, kPanel] row-major (the last one ldb % kPanel wide when that is not
//    0), so the rows a tile or the GEMV reads are contiguous in memory for
//    every prefix [K, N]. A tile never crosses a panel: with panels, n0 + boff
//    must be a multiple of the table's gemm_nr, which divides kPanel.
struct GemmArgs {
  int M = 0, N = 0, K = 0;
  const float* A = nullptr; int64_t lda = 0;
  const float* B = nullptr; int64_t ldb = 0;
  int64_t bk = 0;                  // 0: B row-major; else B in panels of bk rows
  int boff = 0;                    // B's column of output column 0 (a column slice of B)
  float* C = nullptr; int64_t ldc = 0;
  const float* scale = nullptr;   // null: 1
  const float* shift = nullptr;   // null: 0
  const float* res = nullptr; int64_t ldr = 0;   // null: no residual
  const float* bscale = nullptr;  // null: none; else B's row k is used times bscale[k] (a fused SE gate)
  float* bpack = nullptr;          // with bscale and M > 1: room for K x N floats, where the gated B is packed
                                   // once per call (one buffer per thread)
  Act act = Act::None;
};

// Depthwise conv, NHWC, symmetric padding k/2; weights [k, k, wc] (first C used).
// Input row iy is at in + iy*W*C, or, when `ring` is set, in a ring of k rows
// at ring + (iy % k)*W*C (the expand conv fused in front writes rows there).
// Output row oy is written at out + (oy - oy_base)*Wo*C (oy_base: a caller
// that computes one row into a row buffer, e.g. for a fused project conv).
struct DwArgs {
  int H = 0, W = 0, C = 0, Ho = 0, Wo = 0, k = 0, stride = 1;
  const float* in = nullptr;
  const float* ring = nullptr;
  const float* w = nullptr; int64_t wc = 0;
  float* out = nullptr;
  int64_t ldo = 0;                   // floats from one output pixel to the next (0: C; a channel slice: the full C)
  int oy_base = 0;
  const float* scale = nullptr;
  const float* shift = nullptr;
  Act act = Act::None;
};

// Where B's column j (of a vector that does not cross a panel) starts, and
// the floats from one of its rows to the next.
static inline const float* gemm_bcol(const GemmArgs& a, int j, int64_t* ld) {
  const int64_t c = int64_t(j) + a.boff;
  if (a.bk == 0) {
    *ld = a.ldb;
    return a.B + c;
  }
  const int64_t p0 = c / kPanel * kPanel;
  *ld = a.ldb - p0 < kPanel ? a.ldb - p0 : kPanel;
  return a.B + p0 * a.bk + (c - p0);
}

static inline const float* dw_row_ptr(const DwArgs& a, int iy) {
  return a.ring ? a.ring + (int64_t)(iy % a.k) * a.W * a.C : a.in + (int64_t)iy * a.W * a.C;
}

using DwKernel = void (*)(const DwArgs& a, int oy0, int oy1);

// The rows of one output row of a KxK conv over an NHWC image, im2col style:
// cols[ox, (ky*k + kx)*C + c] = in[oy*s - p + ky, ox*s - p + kx, c], zero outside.
struct Im2colArgs {
  int H = 0, W = 0, C = 0, Wo = 0, k = 1, stride = 1;
  const float* in = nullptr;
};

// A KxK convolution over all input channels computed directly (no im2col):
// out[oy, ox, n] = act(sum_{ky,kx,ci} in[oy*s-p+ky, ox*s-p+kx, ci] *
// w[(ky*k+kx)*Cin+ci, n] * scale[n] + shift[n]), taps outside the image
// skipped (zero padding); w has leading dimension ldw (a prefix view).
struct ConvArgs {
  int H = 0, W = 0, Cin = 0, Wo = 0, N = 0, k = 1, stride = 1;
  const float* in = nullptr;
  const float* w = nullptr; int64_t ldw = 0;
  const float* scale = nullptr;   // null: 1
  const float* shift = nullptr;   // null: 0
  Act act = Act::None;
  float* out = nullptr;           // the output image, rows of Wo*N
  int oy_base = 0;                // output row oy goes to row oy - oy_base of out (a ring slot: oy_base = oy)
};

// Bilinear resize of one output row (half-pixel centres, clamped): the plan
// precomputes the source rows/columns and weights of every output row/column.
struct ResizeArgs {
  int W = 0, C = 0, Wo = 0;
  const float* in = nullptr;          // the source image, rows of W*C
  const int* ry0 = nullptr; const int* ry1 = nullptr; const float* fy = nullptr;   // per output row
  const int* rx0 = nullptr; const int* rx1 = nullptr; const float* fx = nullptr;   // per output column
  // per output element of a row (Wo*C; optional): source offsets and weights for few channels (RGB, grey),
  // where a row is gathered a vector of elements at a time instead of a pixel at a time
  const int32_t* xe0 = nullptr; const int32_t* xe1 = nullptr; const float* fxe = nullptr;
  // optional, per vec_w elements: the start of a window of 2 vec_w source floats
  // holding both taps of each of them (-1: gather them), and their offsets in it;
  // read through V::permute2 (two loads and a two-source permute on AVX-512, a
  // gather from the window elsewhere)
  const int32_t* xwin = nullptr; const int32_t* xp0 = nullptr; const int32_t* xp1 = nullptr;
};

// ResizeArgs::xwin, xp0, xp1 of the element tables e0, e1 (a source row of
// `row` floats) for vectors of w floats; all three left empty where no
// vector's taps fit a window of 2w floats inside the row.
inline void resize_windows(const std::vector<int32_t>& e0, const std::vector<int32_t>& e1, int64_t row, int w,
                           std::vector<int32_t>& win, std::vector<int32_t>& p0, std::vector<int32_t>& p1) {
  win.clear(); p0.clear(); p1.clear();
  bool any = false;
  for (size_t j = 0; j + w <= e0.size(); j += w) {
    int32_t lo = e0[j], hi = e1[j];
    for (size_t i = j; i < j + w; ++i) {
      lo = std::min({lo, e0[i], e1[i]});
      hi = std::max({hi, e0[i], e1[i]});
    }
    const bool fits = lo >= 0 && hi - lo < 2 * w && lo + 2 * w <= row;
    win.push_back(fits ? lo : -1);
    any = any || fits;
    for (size_t i = j; i < j + w; ++i) {
      p0.push_back(fits ? e0[i] - lo : 0);
      p1.push_back(fits ? e1[i] - lo : 0);
    }
  }
  if (!any) { win.clear(); p0.clear(); p1.clear(); }
}

// One table per ISA. Every family is a vector kernel; names are
// "f32-<op>-<tile>-<isa>" (kernel_name()).
struct KernelTable {
  const char* name;               // the ISA: scalar, avx2, avx512, neon
  int gemm_mr, gemm_nr;           // tile of the GEMM micro-kernel (threads split on it)
  int gemv_nr;                    // columns per pass of the GEMV kernel (M = 1)
  int vec_w;                      // floats per vector
  // A GEMV (M = 1) of at most this many columns (an SE's reduce conv) sums
  // partial chains; a wider one gives each output the bits of the GEMM's row
  // (k order), so a batch may run it as one GEMM (plan/batch.cc).
  int gemv_narrow_n;
  void (*gemm)(const GemmArgs& a, int m0, int m1, int n0, int n1);
  // any k and stride: picks the specialised kernel when there is one
  void (*dwconv)(const DwArgs& a, int oy0, int oy1);
  // the kernel for (k, stride, output width), chosen once at plan time;
  // *specialised is set false where only the generic one exists
  DwKernel (*dwconv_select)(int k, int stride, int wo, bool* specialised);
  // out[c] = mul * sum over pixels of x[p, c]   (x: pixels x C, NHWC)
  void (*channel_sum)(const float* x, int64_t pixels, int C, float mul, float* out);
  // out[c] = mul * sum over pixels of x[p * stride + c], c < C (a channel slice)
  void (*channel_sum_strided)(const float* x, int64_t pixels, int C, int64_t stride, float mul, float* out);
  // out[p, c] = x[p, c] * g[c]
  void (*scale_channels)(const float* x, int64_t pixels, int C, const float* g, float* out);
  // out[k, n] = b[k, n] * g[k] for n < N (b with leading dimension ldb; out dense)
  // out[i] = a[i] + b[i]
  void (*add)(const float* a, const float* b, int64_t n, float* out);
  // out[i] = act(x[i]), every Act including Sigmoid (in place allowed)
  void (*activation)(const float* x, int64_t n, Act act, float* out);
  // one output row of im2col: Wo x (k*k*C) floats into cols
  void (*im2col_row)(const Im2colArgs& a, int oy, float* cols);
  // one output row of a bilinear resize: Wo x C floats into out
  void (*resize_row)(const ResizeArgs& a, int oy, float* out);
  // one output row of a direct KxK convolution (small Cin: the stem)
  void (*conv_row)(const ConvArgs& a, int oy);
};

const KernelTable* kernels_scalar();
#if defined(__x86_64__) || defined(_M_X64)
const KernelTable* kernels_avx2();
const KernelTable* kernels_avx512();
#endif
#if defined(__aarch64__)
const KernelTable* kernels_neon();
#endif

}  // namespace art
