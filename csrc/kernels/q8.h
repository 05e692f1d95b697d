// int8 kernel interface: argument structs and the per-ISA table.
//
// Activations are uint8 with a zero point, weights int8 symmetric per output
// channel (adaptive_rt/model/quant.py is the specification). Every kernel
// computes exactly what the NumPy reference computes: int32 sums, then the
// float32 epilogue in one fixed order (no fused multiply-add), rounded half
// to even — so results are bit-identical across ISAs and to the reference.
//
// 2-D weights are stored [ceil(K/4), N_stored, 4] ("k4"): the four rows
// 4g..4g+3 of a column are adjacent, the operand of vpdpbusd / sdot. A
// prefix view reads groups g < ceil(K/4) and columns n < N; rows >= K
// inside the last group are multiplied by zero activations (kernels pad the
// activations, never the weights).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace art {

// Requantization epilogue, per output column n, with t = float(acc + bias[n]) * mul[n] + add[n]:
//   float output (Cf):        act(t), mul/add in real units
//   uint8, act hswish/hsigmoid: mul/add in real units, g = min(max(t + 3, 0), 6),
//                             u = (t * g) * out_scale  or  g * out_scale   (out_scale = 1 / (6 s_out))
//   uint8, other acts:        mul/add already in output steps, u = t (ReLU and ReLU6 are the clamp's bounds)
//   q = rint(clamp(u, lo, hi)) + zo
// (lo = -zo or, with a ReLU, 0; hi = 255 - zo or, with ReLU6, min(that, 6 / s_out)).
struct Q8Epilogue {
  const int32_t* bias = nullptr;   // null: 0
  const float* mul = nullptr;
  const float* add = nullptr;
  Act act = Act::None;
  float out_scale = 1.f, lo = 0.f, hi = 255.f;
  int zo = 0;
};

// C[m, n] for m in [m0, m1), n in [n0, n1): acc = sum_k A[m, k] * B[k, n]
// over k < K (A uint8, B int8 k4 layout with ldb stored columns).
struct Q8GemmArgs {
  int M = 0, N = 0, K = 0;
  const uint8_t* A = nullptr; int64_t lda = 0;
  const int8_t* B = nullptr; int64_t ldb = 0;   // bytes of group g start at B + g * ldb * 4
  uint8_t* C = nullptr; int64_t ldc = 0;        // uint8 output, or
  float* Cf = nullptr;                          // float output (the logits, an SE gate)
  Q8Epilogue e;
};

// Depthwise KxK, NHWC, symmetric padding (padding = real 0 = the zero point):
// acc = sum over taps inside the image of (in - zi) * w.
struct Q8DwArgs {
  int H = 0, W = 0, C = 0, Ho = 0, Wo = 0, k = 0, stride = 1;
  const uint8_t* in = nullptr; int zi = 0;
  const int8_t* w = nullptr; int64_t wc = 0;    // [k, k, wc], first C channels used
  uint8_t* out = nullptr;
  Q8Epilogue e;                                 // bias unused
  // tables with a packed depthwise kernel (Q8Table::dw_pack): the weights
  // packed once per engine, the epilogue's per-channel values in the
  // kernel's channel order (dw_channel), and this thread's ring of k
  // input rows in the kernel's layout (dw_ring_bytes)
  const int8_t* wp = nullptr;
  const int32_t* pbias = nullptr;
  const float* pmul = nullptr;
  const float* padd = nullptr;
  uint8_t* ring = nullptr;
};

// One output row of an im2col over uint8 (padding taps = pad); the kernel may
// write up to Q8_IM2COL_SLACK bytes past the row's Wo * k * k * C.
constexpr int Q8_IM2COL_SLACK = 16;
struct Q8Im2colArgs {
  int H = 0, W = 0, C = 0, Wo = 0, k = 1, stride = 1;
  const uint8_t* in = nullptr;
  uint8_t pad = 0;
};

struct Q8ResizeArgs {
  int W = 0, C = 0, Wo = 0;
  const uint8_t* in = nullptr;
  const int* ry0 = nullptr; const int* ry1 = nullptr; const float* fy = nullptr;
  const int* rx0 = nullptr; const int* rx1 = nullptr; const float* fx = nullptr;
  // per output element j = ox * C + c of a row: the byte offsets of its two
  // source elements in a row and its weight fx[ox] (for vector kernels, which
  // may read up to 3 bytes past a source element: the arena's padding)
  const int32_t* xe0 = nullptr; const int32_t* xe1 = nullptr; const float* fxe = nullptr;
};

struct Q8Table {
  const char* name;   // scalar, avx2, avxvnni, avx512vnni, neon, neondot (cpu.cc picks one)
  int gemm_mr, gemm_nr;
  void (*gemm)(const Q8GemmArgs& a, int m0, int m1, int n0, int n1);
  void (*dwconv)(const Q8DwArgs& a, int oy0, int oy1);
  // out[i] = rint(clamp(x[i] * inv, lo, hi)) + zo
  void (*quantize)(const float* x, int64_t n, float inv, float lo, float hi, int zo, uint8_t* out);
  // out[i] = rint(clamp(float(a[i] - za) * ma + float(b[i] - zb) * mb, lo, hi)) + zo
  void (*add)(const uint8_t* a, int za, float ma, const uint8_t* b, int zb, float mb, int64_t n, float lo, float hi,
              int zo, uint8_t* out);
  // out[c] = sum over pixels of x[p * stride + c], c < C
  void (*channel_sum)(const uint8_t* x, int64_t pixels, int C, int64_t stride, int32_t* out);
  // out[p, c] = rint(clamp(float(x[p, c] - zi) * m[c], lo, hi)) + zo
  void (*scale_channels)(const uint8_t* x, int64_t pixels, int C, int zi, const float* m, float lo, float hi, int zo,
                         uint8_t* out);
  void (*im2col_row)(const Q8Im2colArgs& a, int oy, uint8_t* cols);
  void (*resize_row)(const Q8ResizeArgs& a, int oy, uint8_t* out);
  // A depthwise kernel over packed weights, or null (dwconv reads [k, k, C]),
  // for the strides dw_packed_stride(s) accepts: dw_pack writes a [k, k, wc]
  // weight in the kernel's layout (dw_packed_bytes of it, prefix-sliceable by
  // channel, so one packed copy serves every subnet); position p of the
  // per-channel epilogue arrays (dw_slots(C) of them) holds channel
  // dw_channel(p) (>= C: unused).
  void (*dwconv_packed)(const Q8DwArgs& a, int oy0, int oy1);
  bool (*dw_packed_stride)(int stride);
  int64_t (*dw_packed_bytes)(int k, int64_t wc);
  void (*dw_pack)(const int8_t* w, int k, int64_t wc, int8_t* out);
  int64_t (*dw_slots)(int64_t C);
  int64_t (*dw_channel)(int64_t p);
  int64_t (*dw_ring_bytes)(int k, int W, int C, int stride);
  // The GEMM computes sum (A - a_offset) * B + bias: 0 for uint8 x int8
  // kernels, 128 for signed-byte ones (NEON sdot, the A bytes enter as
  // a ^ 0x80); the op's zero-point correction is -(zp - a_offset) * colsum.
  int a_offset;
};

const Q8Table* q8_kernels_scalar();
#if defined(__x86_64__) || defined(_M_X64)
const Q8Table* q8_kernels_avx2();
const Q8Table* q8_kernels_avxvnni();
const Q8Table* q8_kernels_avx512vnni();
#endif
#if defined(__aarch64__)
const Q8Table* q8_kernels_neon();
const Q8Table* q8_kernels_neondot();
#endif

// The int8 table that goes with an f32 table on this CPU (scalar with
// scalar; the best int8 ISA the CPU has otherwise).
const Q8Table* q8_kernels_for(const KernelTable* f32);
const Q8Table* q8_table_by_name(const char* name);

}  // namespace art
