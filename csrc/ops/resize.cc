// Bilinear resize (half-pixel centres, clamped at the borders, as
// adaptive_rt.model.reference.resize_bilinear): the source rows, columns and
// weights of every output row and column are tables made at prepare time.
#include <algorithm>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  if (shapes[op.out].c != shapes[op.in0].c) fail(op, "channels change");
}

void prepare(Step& s, const PrepareCtx& c) {
  resize_tables(s, c.shapes[s.op.in0], c.shapes[s.out], c.kt.vec_w);
  s.kernel = kernel_name(c.kt, "resize-bilinear", "");
}

void run(const Step& s, const RunCtx& c) {
  const Shape3 &si = c.plan.shape(s.op.in0), &so = c.plan.shape(s.out);
  ResizeArgs a;
  a.W = si.w; a.C = si.c; a.Wo = so.w; a.in = c.in(s.op.in0);
  a.ry0 = s.ry0.data(); a.ry1 = s.ry1.data(); a.fy = s.rfy.data();
  a.rx0 = s.rx0.data(); a.rx1 = s.rx1.data(); a.fx = s.rfx.data();
  a.xe0 = s.rxe0.data(); a.xe1 = s.rxe1.data(); a.fxe = s.rfxe.data();
  if (!s.rxwin.empty()) { a.xwin = s.rxwin.data(); a.xp0 = s.rxp0.data(); a.xp1 = s.rxp1.data(); }
  float* out = c.out(s.out);
  const int64_t row = int64_t(so.w) * so.c;
  const int threads = c.threads;
  // split from 12.5K values: the next op (the stem) then finds most of its input rows in its own core's cache
  const int chunk = threads > 1 && so.size() >= kParallelMacs / 16 ? (so.h + threads - 1) / threads : so.h;
  c.pool.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
    for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) c.kt.resize_row(a, oy, out + oy * row);
  });
}

}  // namespace

extern const OpImpl kResizeOp = {"resize", validate, default_macs, prepare, run};

}  // namespace art
