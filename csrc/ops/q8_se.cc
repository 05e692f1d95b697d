// int8 squeeze-excite: channel sums (int32) -> the pooled vector requantized
// -> 1x1 reduce + ReLU (int8 GEMV, requantized) -> 1x1 expand + gate (int8
// GEMV, the gate in float) -> every channel of the input requantized by
// (gate x s_in / s_out).
#include <algorithm>
#include <cmath>

#include "q8_op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_se(op, si, so);
  if (int64_t(si.h) * si.w > kQ8MaxPoolPixels) fail(op, "too many pixels for int8 channel sums");
  check_k4(op, "int8 reduce weight", op.se_w1_8, si.c, op.se_r);
  check_k4(op, "int8 expand weight", op.se_w2_8, op.se_r, si.c);
  check_vec_finite(op, "reduce multipliers", op.se_mul1, op.se_r);
  check_vec_finite(op, "reduce offsets", op.se_add1, op.se_r);
  check_vec_finite(op, "expand multipliers", op.se_mul2, si.c);
  check_vec_finite(op, "expand offsets", op.se_add2, si.c);
  check_qparam(op, "input", op.qin);
  check_qparam(op, "output", op.qout);
  check_qparam(op, "pooled", op.q_pool);
  check_qparam(op, "reduced", op.q_red);
  check_multiplier(op, "pool multiplier", op.m_a);
  check_multiplier(op, "gate multiplier", op.m_b);
  if (op.float_out) fail(op, "squeeze-excite cannot write the logits");
}

// scratch (floats): sums [C] int32, gate [C], multipliers [C], pooled [C] and reduced [R] uint8
int64_t scratch(int C, int R) {
  return 3 * round_up(C, kAlignFloats) + round_up((C + 3) / 4, kAlignFloats) + round_up((R + 3) / 4, kAlignFloats);
}

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3& si = c.shapes[s.op.in0];
  s.bias32 = q8_zero_point_bias(s.op.se_w1_8, si.c, s.op.se_r, s.op.q_pool.zp - c.q8->a_offset);
  s.bias32b = q8_zero_point_bias(s.op.se_w2_8, s.op.se_r, si.c, s.op.q_red.zp - c.q8->a_offset);
  s.scratch_floats = scratch(si.c, s.op.se_r);
  s.kernel = q8_kernel_name(*c.q8, "channel-sum", "") + " + " + q8_gemm_name(*c.q8) + " x2 + " +
             q8_kernel_name(*c.q8, "scale-channels", "");
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3& si = c.plan.shape(op.in0);
  const int C = si.c, R = op.se_r;
  const int64_t hw = int64_t(si.h) * si.w;
  const uint8_t* in = c.in8(op.in0);
  float* base = c.scratch(s);
  int32_t* sums = reinterpret_cast<int32_t*>(base);
  float* gate = base + round_up(C, kAlignFloats);
  float* mg = gate + round_up(C, kAlignFloats);
  uint8_t* pooled = reinterpret_cast<uint8_t*>(mg + round_up(C, kAlignFloats));
  uint8_t* red = pooled + 4 * round_up((C + 3) / 4, kAlignFloats);
  const Q8Table& t = c.q8();
  const int threads = c.threads;
  const int cblk = threads > 1 && hw * C >= kParallelMacs ? static_cast<int>(round_up((C + threads - 1) / threads, 16)) : C;
  c.pool.parallel_for((C + cblk - 1) / cblk, threads, [&](int i) {
    const int c0 = i * cblk, c1 = std::min(C, c0 + cblk);
    t.channel_sum(in + c0, hw, c1 - c0, C, sums + c0);
  });
  const int32_t zsum = static_cast<int32_t>(hw * op.qin.zp);
  for (int ch = 0; ch < C; ++ch)
    pooled[ch] = q8_requant(static_cast<float>(sums[ch] - zsum) * op.m_a, op.q_pool);
  Q8GemmArgs a;
  a.M = 1; a.K = C; a.N = R; a.A = pooled; a.lda = C;
  a.B = op.se_w1_8.data; a.ldb = op.se_w1_8.shape[1]; a.C = red; a.ldc = R;
  a.e = q8_epilogue(op, op.se_mul1, op.se_add1, Act::Relu, op.q_red, &s.bias32);
  q8_gemm(c, a, int64_t(C) * R);
  Q8GemmArgs b;
  b.M = 1; b.K = R; b.N = C; b.A = red; b.lda = R;
  b.B = op.se_w2_8.data; b.ldb = op.se_w2_8.shape[1]; b.Cf = gate; b.ldc = C;
  b.e = q8_epilogue(op, op.se_mul2, op.se_add2, op.se_gate == Act::HSigmoid ? Act::HSigmoid : Act::None, op.qout,
                    &s.bias32b);
  q8_gemm(c, b, int64_t(C) * R);
  for (int ch = 0; ch < C; ++ch) {
    float g = gate[ch];
    if (op.se_gate == Act::Sigmoid) g = 1.f / (1.f + std::exp(-g));
    mg[ch] = g * op.m_b;
  }
  const float lo = static_cast<float>(-op.qout.zp), hi = static_cast<float>(255 - op.qout.zp);
  uint8_t* out = c.out8(s.out);
  const int64_t pblk = threads > 1 && hw * C >= kParallelMacs ? (hw + threads - 1) / threads : hw;
  c.pool.parallel_for(static_cast<int>((hw + pblk - 1) / pblk), threads, [&](int i) {
    const int64_t p0 = i * pblk, p1 = std::min(hw, p0 + pblk);
    t.scale_channels(in + p0 * C, p1 - p0, C, op.qin.zp, mg, lo, hi, op.qout.zp, out + p0 * C);
  });
}

}  // namespace

extern const OpImpl kQ8SEOp = {"se", validate, default_macs, prepare, run};

}  // namespace art
