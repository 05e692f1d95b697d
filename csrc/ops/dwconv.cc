// Depthwise KxK convolution, NHWC, symmetric padding. The kernel for (k,
// stride) is chosen at prepare time. When plan/fuse.cc fused the expand
// 1x1 conv in front, each band of output rows computes the expanded input
// rows it needs, in order, into its own ring of k rows: the wide tensor
// never exists whole and each row is used while still in cache.
#include <algorithm>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_conv_shape(op, si, so);
  if (so.c != si.c) fail(op, "depthwise conv changes channels");
  check_buffer(op, "weight", op.w, {op.k, op.k, si.c});
  if (op.w.shape[0] != op.k || op.w.shape[1] != op.k)
    fail(op, "weight is not " + std::to_string(op.k) + "x" + std::to_string(op.k));
  if (op.scale.empty()) op.scale.assign(so.c, 1.f);
  if (op.shift.empty()) op.shift.assign(so.c, 0.f);
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * op.k * op.k; }

void prepare(Step& s, const PrepareCtx& c) {
  bool specialised = false;
  s.dw = c.kt.dwconv_select(s.op.k, s.op.stride, c.shapes[s.out].w, &specialised);
  const std::string k = std::to_string(s.op.k);
  s.kernel = kernel_name(c.kt, "dwconv", k + "x" + k + "s" + std::to_string(s.op.stride) + (specialised ? "" : "-generic"));
  if (s.fused_expand) {
    const Shape3& si = c.shapes[s.op.in0];     // the expand conv's input: same rows as the expanded value
    s.ring_floats = round_up(int64_t(s.op.k) * si.w * s.expand_c, kAlignFloats);
    s.scratch_floats = s.ring_floats * c.max_threads;   // one ring per thread
    s.kernel = gemm_kernel_name(c.kt, si.w) + " + " + s.kernel + " (ring of " + k + " rows)";
  }
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  DwArgs d;
  const int C = s.fused_expand ? s.expand_c : si.c;
  d.H = si.h; d.W = si.w; d.C = C; d.Ho = so.h; d.Wo = so.w; d.k = op.k; d.stride = op.stride;
  d.in = c.in(op.in0); d.w = op.w.data; d.wc = op.w.shape[2]; d.out = c.out(s.out);
  d.scale = op.scale.data(); d.shift = op.shift.data(); d.act = op.act;
  const int threads = c.threads;
  const bool par = threads > 1 && s.macs >= kParallelMacs && so.h >= 2;
  const int chunk = par ? (so.h + threads - 1) / threads : so.h;
  const int tasks = (so.h + chunk - 1) / chunk;
  if (!s.fused_expand) {
    if (tasks == 1) s.dw(d, 0, so.h);
    else c.pool.parallel_for(tasks, threads, [&](int t) { s.dw(d, t * chunk, std::min(so.h, (t + 1) * chunk)); });
    return;
  }
  const OpDesc& ex = s.expand;
  GemmArgs g;
  g.M = si.w; g.N = C; g.K = si.c; g.lda = si.c;
  g.B = ex.w.data; g.ldb = ex.w.shape[1]; g.ldc = C;
  g.scale = ex.scale.empty() ? nullptr : ex.scale.data();
  g.shift = ex.shift.empty() ? nullptr : ex.shift.data();
  g.act = ex.act;
  const int k = op.k, S = op.stride, p = k / 2;
  const int64_t row_floats = int64_t(si.w) * C;
  const float* in = d.in;
  auto band = [&](int t) {
    const int r0 = t * chunk, r1 = std::min(so.h, (t + 1) * chunk);
    float* ring = c.scratch(s) + t * s.ring_floats;
    DwArgs dd = d;
    dd.ring = ring;
    int next = std::max(0, r0 * S - p);
    for (int oy = r0; oy < r1; ++oy) {
      const int last = std::min(si.h, oy * S - p + k);
      for (; next < last; ++next) {
        GemmArgs gr = g;
        gr.A = in + int64_t(next) * si.w * si.c;
        gr.C = ring + int64_t(next % k) * row_floats;
        c.kt.gemm(gr, 0, si.w, 0, C);
      }
      s.dw(dd, oy, oy + 1);
    }
  };
  if (tasks == 1) band(0);
  else c.pool.parallel_for(tasks, threads, band);
}

}  // namespace

extern const OpImpl kDwConvOp = {"dwconv", validate, macs, prepare, run};

}  // namespace art
