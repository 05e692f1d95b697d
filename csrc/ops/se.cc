// Squeeze-excite: channel means, two GEMVs (reduce + ReLU, expand + gate),
// then the input scaled by the gate — or, when plan/fuse.cc fused the gate
// into the next 1x1 conv, only the gate (the conv scales its weight rows).
#include <algorithm>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_se(op, si, so);
  check_buffer(op, "reduce weight", op.se_w1, {si.c, op.se_r});
  check_buffer(op, "reduce bias", op.se_b1, {op.se_r});
  check_buffer(op, "expand weight", op.se_w2, {op.se_r, si.c});
  check_buffer(op, "expand bias", op.se_b2, {si.c});
}

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3& si = c.shapes[s.op.in0];
  s.scratch_floats = round_up(si.c, kAlignFloats) * 2 + round_up(s.op.se_r, kAlignFloats);
  s.kernel = kernel_name(c.kt, "channel-sum", "") + " + " + gemm_kernel_name(c.kt, 1) + " x2" +
             (s.op.se_gate == Act::Sigmoid ? " + " + kernel_name(c.kt, "sigmoid", "") : "") +
             (s.gate_only ? " (gate fused into the next conv)" : " + " + kernel_name(c.kt, "scale-channels", ""));
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3& si = c.plan.shape(op.in0);
  const int C = si.c, R = op.se_r;
  const int64_t hw = int64_t(si.h) * si.w;
  const float* in = c.in(op.in0);
  float* pooled = c.scratch(s);
  float* red = pooled + round_up(C, kAlignFloats);
  float* gate = s.gate_only ? c.arena + s.gate_off : red + round_up(R, kAlignFloats);
  const float inv = 1.f / static_cast<float>(hw);
  const int threads = c.threads;
  const int cblk = threads > 1 && hw * C >= kParallelMacs ? static_cast<int>(round_up((C + threads - 1) / threads, 16)) : C;
  c.pool.parallel_for((C + cblk - 1) / cblk, threads, [&](int t) {
    const int c0 = t * cblk, c1 = std::min(C, c0 + cblk);
    c.kt.channel_sum_strided(in + c0, hw, c1 - c0, C, inv, pooled + c0);   // a channel slice: pixels C apart
  });
  GemmArgs a;
  a.M = 1; a.K = C; a.N = R; a.A = pooled; a.lda = C;
  set_gemm_b(a, op.se_w1); a.C = red; a.ldc = R;
  a.shift = op.se_b1.data; a.act = Act::Relu;
  c.gemm(a, int64_t(C) * R);
  GemmArgs b;
  b.M = 1; b.K = R; b.N = C; b.A = red; b.lda = R;
  set_gemm_b(b, op.se_w2); b.C = gate; b.ldc = C;
  b.shift = op.se_b2.data; b.act = op.se_gate == Act::HSigmoid ? Act::HSigmoid : Act::None;
  c.gemm(b, int64_t(C) * R);
  if (op.se_gate == Act::Sigmoid) c.kt.activation(gate, C, Act::Sigmoid, gate);
  if (!s.gate_only) c.kt.scale_channels(in, hw, C, gate, c.out(s.out));
}

}  // namespace

extern const OpImpl kSEOp = {"se", validate, default_macs, prepare, run};

}  // namespace art
