// KxK convolution over all input channels (the stem). Where a pixel's taps
// are few (k*k*Cin <= 64: an image stem) a direct kernel reads them from the
// input; otherwise im2col one output row at a time into a per-thread buffer
// that stays in L1, then a GEMM over that row (M = output width).
#include <algorithm>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_conv_shape(op, si, so);
  check_buffer(op, "weight", op.w, {int64_t(op.k) * op.k * si.c, so.c});
  if (op.w.shape[0] != int64_t(op.k) * op.k * si.c) fail(op, "weight rows must be k*k*Cin exactly");
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * op.k * op.k * si.c; }

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  const std::string k = std::to_string(s.op.k);
  s.direct = int64_t(s.op.k) * s.op.k * si.c <= kDirectTaps;
  if (s.direct) {
    s.kernel = kernel_name(c.kt, "conv", k + "x" + k + "s" + std::to_string(s.op.stride) + "-direct");
    return;
  }
  s.scratch_floats = int64_t(c.max_threads) * so.w * s.op.k * s.op.k * si.c;   // a row per thread
  s.kernel = kernel_name(c.kt, "im2col", k + "x" + k + "s" + std::to_string(s.op.stride)) + " + " +
             gemm_kernel_name(c.kt, so.w);
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  const int64_t kk = int64_t(op.k) * op.k * si.c;
  Im2colArgs ia;
  ia.H = si.h; ia.W = si.w; ia.C = si.c; ia.Wo = so.w; ia.k = op.k; ia.stride = op.stride; ia.in = c.in(op.in0);
  GemmArgs g;
  g.M = so.w; g.N = so.c; g.K = static_cast<int>(kk); g.lda = kk;
  set_gemm_b(g, op.w); g.ldc = so.c;
  g.scale = op.scale.empty() ? nullptr : op.scale.data();
  g.shift = op.shift.empty() ? nullptr : op.shift.data();
  g.act = op.act;
  float* out = c.out(s.out);
  const int threads = c.threads;
  const int chunk = threads > 1 && s.macs >= kParallelMacs ? (so.h + threads - 1) / threads : so.h;
  if (s.direct) {
    ConvArgs d;
    d.H = si.h; d.W = si.w; d.Cin = si.c; d.Wo = so.w; d.N = so.c; d.k = op.k; d.stride = op.stride;
    d.in = ia.in; d.w = op.w.data; d.ldw = op.w.shape[1];
    d.scale = g.scale; d.shift = g.shift; d.act = op.act; d.out = out;
    c.pool.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
      for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) c.kt.conv_row(d, oy);
    });
    return;
  }
  c.pool.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
    float* cols = c.scratch(s) + t * int64_t(so.w) * kk;
    for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) {
      c.kt.im2col_row(ia, oy, cols);
      GemmArgs gr = g;
      gr.A = cols;
      gr.C = out + int64_t(oy) * so.w * so.c;
      c.kt.gemm(gr, 0, so.w, 0, so.c);
    }
  });
}

}  // namespace

extern const OpImpl kConvOp = {"conv", validate, macs, prepare, run};

}  // namespace art
