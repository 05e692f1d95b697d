// int8 KxK convolution over all input channels (the stem): im2col of one
// output row at a time into a per-thread buffer (padding taps hold the
// input's zero point, i.e. real 0), then the int8 GEMM over that row.
#include <algorithm>

#include "q8_op.h"

namespace art {
namespace {

int64_t taps(const OpDesc& op, const Shape3& si) { return int64_t(op.k) * op.k * si.c; }

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_conv_shape(op, si, so);
  check_k4(op, "int8 weight", op.w8, taps(op, si), so.c);
  check_qparam(op, "input", op.qin);
  check_qparam(op, "output", op.qout);
  check_vec_finite(op, "epilogue multipliers", op.scale, so.c);
  check_vec_finite(op, "epilogue offsets", op.shift, so.c);
  check_act_params(op, op.act, op.float_out);
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * taps(op, si); }

int64_t row_floats(const Step& s, const Shape3& si, const Shape3& so) {
  return round_up((int64_t(so.w) * taps(s.op, si) + Q8_IM2COL_SLACK + 3) / 4, kAlignFloats);
}

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  s.bias32 = q8_zero_point_bias(s.op.w8, static_cast<int>(taps(s.op, si)), so.c, s.op.qin.zp - c.q8->a_offset);
  s.scratch_floats = int64_t(c.max_threads) * row_floats(s, si, so);
  const std::string k = std::to_string(s.op.k);
  s.kernel = q8_kernel_name(*c.q8, "im2col", k + "x" + k + "s" + std::to_string(s.op.stride)) + " + " +
             q8_gemm_name(*c.q8);
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  const int64_t kk = taps(op, si);
  Q8Im2colArgs ia;
  ia.H = si.h; ia.W = si.w; ia.C = si.c; ia.Wo = so.w; ia.k = op.k; ia.stride = op.stride;
  ia.in = c.in8(op.in0); ia.pad = static_cast<uint8_t>(op.qin.zp);
  Q8GemmArgs g;
  g.M = so.w; g.N = so.c; g.K = static_cast<int>(kk); g.lda = kk;
  g.B = op.w8.data; g.ldb = op.w8.shape[1]; g.ldc = so.c;
  g.e = q8_epilogue(op, op.scale, op.shift, op.act, op.qout, &s.bias32);
  const int threads = c.threads;
  const int chunk = threads > 1 && s.macs >= kParallelMacs ? (so.h + threads - 1) / threads : so.h;
  const int64_t rf = row_floats(s, si, so);
  c.pool.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
    uint8_t* cols = reinterpret_cast<uint8_t*>(c.scratch(s) + t * rf);
    for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) {
      c.q8().im2col_row(ia, oy, cols);
      Q8GemmArgs gr = g;
      gr.A = cols;
      if (op.float_out) gr.Cf = c.out(s.out) + int64_t(oy) * so.w * so.c;
      else gr.C = c.out8(s.out) + int64_t(oy) * so.w * so.c;
      c.q8().gemm(gr, 0, so.w, 0, so.c);
    }
  });
}

}  // namespace

extern const OpImpl kQ8ConvOp = {"conv", validate, macs, prepare, run};

}  // namespace art
