// Bilinear resize (half-pixel centres, clamped at the borders, as
// adaptive_rt.model.reference.resize_bilinear): the source rows, columns and
// weights of every output row and column are tables made at prepare time.
#include <algorithm>
#include <cmath>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  if (shapes[op.out].c != shapes[op.in0].c) fail(op, "channels change");
}

void axis(int n_in, int n_out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
  const double scale = double(n_in) / n_out;
  i0.clear(); i1.clear(); f.clear();
  for (int o = 0; o < n_out; ++o) {
    double c = (o + 0.5) * scale - 0.5;
    c = std::min(std::max(c, 0.0), double(n_in - 1));
    const int a = static_cast<int>(std::floor(c));
    i0.push_back(a);
    i1.push_back(std::min(a + 1, n_in - 1));
    f.push_back(static_cast<float>(c - a));
  }
}

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  axis(si.h, so.h, s.ry0, s.ry1, s.rfy);
  axis(si.w, so.w, s.rx0, s.rx1, s.rfx);
  s.kernel = kernel_name(c.kt, "resize-bilinear", "");
}

void run(const Step& s, const RunCtx& c) {
  const Shape3 &si = c.plan.shape(s.op.in0), &so = c.plan.shape(s.out);
  ResizeArgs a;
  a.W = si.w; a.C = si.c; a.Wo = so.w; a.in = c.in(s.op.in0);
  a.ry0 = s.ry0.data(); a.ry1 = s.ry1.data(); a.fy = s.rfy.data();
  a.rx0 = s.rx0.data(); a.rx1 = s.rx1.data(); a.fx = s.rfx.data();
  float* out = c.out(s.out);
  const int64_t row = int64_t(so.w) * so.c;
  const int threads = c.threads;
  const int chunk = threads > 1 && so.size() >= kParallelMacs / 4 ? (so.h + threads - 1) / threads : so.h;
  c.pool.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
    for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) c.kt.resize_row(a, oy, out + oy * row);
  });
}

}  // namespace

extern const OpImpl kResizeOp = {"resize", validate, default_macs, prepare, run};

}  // namespace art
