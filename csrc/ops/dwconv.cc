// Depthwise KxK convolution, NHWC, symmetric padding. The kernel for (k,
// stride, output width) is chosen at prepare time. When plan/fuse.cc fused
// the expand 1x1 conv in front (or a direct stem conv), each band of output
// rows computes the input rows it needs, in order, into its own ring of k
// rows; when
// it fused the project 1x1 conv behind, each output row goes to a row buffer
// and is projected at once. Either way the wide tensors never exist whole
// and each row is used while still in cache.
#include <algorithm>

#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_depthwise(op, si, so, "weight", op.w);
  if (op.scale.empty()) op.scale.assign(so.c, 1.f);
  if (op.shift.empty()) op.shift.assign(so.c, 0.f);
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * op.k * op.k; }

// The depthwise input: with a conv fused in front, the value it makes (the
// step itself reads that conv's input).
int dw_input(const Step& s) { return s.fused_expand ? s.expand_val : s.op.in0; }

// The fused conv's kernel name.
std::string producer_kernel(const Step& s, const KernelTable& kt, int w) {
  if (s.expand.kind != OpKind::Conv) return gemm_kernel_name(kt, w);
  const std::string k = std::to_string(s.expand.k);
  return kernel_name(kt, "conv", k + "x" + k + "s" + std::to_string(s.expand.stride) + "-direct");
}

void prepare(Step& s, const PrepareCtx& c) {
  bool specialised = false;
  const Shape3& si = c.shapes[dw_input(s)];
  const int C = si.c;
  const int Wo = conv_out(si.w, s.op.k, s.op.stride);
  s.dw = c.kt.dwconv_select(s.op.k, s.op.stride, Wo, &specialised);
  const std::string k = std::to_string(s.op.k);
  s.kernel = kernel_name(c.kt, "dwconv", k + "x" + k + "s" + std::to_string(s.op.stride) + (specialised ? "" : "-generic"));
  if (s.fused_expand) {
    s.ring_floats = round_up(int64_t(s.op.k) * si.w * C, kAlignFloats);
    s.kernel = producer_kernel(s, c.kt, si.w) + " + " + s.kernel + " (ring of " + k + " rows)";
  }
  if (s.fused_project) {
    s.row_floats = round_up(int64_t(Wo) * C, kAlignFloats);
    s.kernel += " + " + gemm_kernel_name(c.kt, Wo) + " (project per row)";
  }
  s.scratch_floats = (s.ring_floats + s.row_floats) * c.max_threads;   // a ring and a row per thread
}

GemmArgs conv1x1(const OpDesc& op, int M, int N, int K) {
  GemmArgs g;
  g.M = M; g.N = N; g.K = K; g.lda = K;
  set_gemm_b(g, op.w); g.ldc = N;
  g.scale = op.scale.empty() ? nullptr : op.scale.data();
  g.shift = op.shift.empty() ? nullptr : op.shift.data();
  g.act = op.act;
  return g;
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(dw_input(s)), &so = c.plan.shape(s.out);
  const Shape3& sp = c.plan.shape(op.in0);   // what the step reads: the fused conv's input, else si
  const int C = si.c;
  const int Ho = conv_out(si.h, op.k, op.stride), Wo = conv_out(si.w, op.k, op.stride);
  DwArgs d;
  d.H = si.h; d.W = si.w; d.C = C; d.Ho = Ho; d.Wo = Wo; d.k = op.k; d.stride = op.stride;
  d.in = c.in(op.in0); d.w = op.w.data; d.wc = op.w.shape[2]; d.out = c.out(s.out);
  d.scale = op.scale.data(); d.shift = op.shift.data(); d.act = op.act;
  const int threads = c.threads;
  const bool par = threads > 1 && s.macs >= kParallelMacs && Ho >= 2;
  const int chunk = par ? (Ho + threads - 1) / threads : Ho;
  const int tasks = (Ho + chunk - 1) / chunk;
  if (!s.fused_expand && !s.fused_project) {   // whole bands of rows: the kernel keeps input rows in L1
    if (tasks == 1) s.dw(d, 0, Ho);
    else c.pool.parallel_for(tasks, threads, [&](int t) { s.dw(d, t * chunk, std::min(Ho, (t + 1) * chunk)); });
    return;
  }
  // Row by row: the expanded input rows each output row needs, computed in
  // order into this thread's ring of k rows; the output row into this
  // thread's row buffer, projected at once.
  const bool stem = s.fused_expand && s.expand.kind == OpKind::Conv;
  GemmArgs ex = s.fused_expand && !stem ? conv1x1(s.expand, si.w, C, sp.c) : GemmArgs();
  ConvArgs cv;   // the stem conv: row r into a ring slot (oy_base = r)
  if (stem) {
    cv.H = sp.h; cv.W = sp.w; cv.Cin = sp.c; cv.Wo = si.w; cv.N = C; cv.k = s.expand.k; cv.stride = s.expand.stride;
    cv.in = c.in(op.in0); cv.w = s.expand.w.data; cv.ldw = s.expand.w.shape[1];
    cv.scale = s.expand.scale.empty() ? nullptr : s.expand.scale.data();
    cv.shift = s.expand.shift.empty() ? nullptr : s.expand.shift.data();
    cv.act = s.expand.act;
  }
  GemmArgs pj = s.fused_project ? conv1x1(s.project, Wo, so.c, C) : GemmArgs();
  const float* res = s.res >= 0 ? c.in(s.res) : nullptr;
  float* out = c.out(s.out);
  const int k = op.k, S = op.stride, p = k / 2;
  const int64_t ring_row = int64_t(si.w) * C;
  const float* in = d.in;
  // input row r of channels [c0, c0 + cn) into a ring slot (rows of si.w * cn)
  auto fill = [&](int r, float* slot, int c0, int cn) {
    if (stem) {
      ConvArgs cc = cv;
      cc.N = cn; cc.w += c0; cc.out = slot; cc.oy_base = r;
      if (cc.scale) cc.scale += c0;
      if (cc.shift) cc.shift += c0;
      c.kt.conv_row(cc, r);
      return;
    }
    GemmArgs g = ex;
    g.boff = c0; g.N = cn; g.ldc = cn;
    if (g.scale) g.scale += c0;
    if (g.shift) g.shift += c0;
    g.A = in + int64_t(r) * si.w * sp.c;
    g.C = slot;
    c.kt.gemm(g, 0, si.w, 0, cn);
  };
  if (s.fused_expand && !s.fused_project && tasks > 1 && (k - S) * (tasks - 1) * 10 > si.h) {
    // Few rows (a 28x28 or smaller map): bands of rows would each expand the
    // k - S rows their neighbour expands too (at 14x14, k = 7, 2 threads:
    // 26 expanded rows for 14), so each thread takes a slice of the channels
    // over all rows instead: its columns of the expand GEMM into a ring of
    // rows of its slice, its channels of the depthwise output. The same
    // values, each computed once.
    // (slices start on a vector; on a GEMM tile where B is in panels: no tile crosses a panel)
    const int align = ex.bk ? c.kt.gemm_nr : c.kt.vec_w;
    const int cw = static_cast<int>(round_up((C + threads - 1) / threads, align));
    const int slices = (C + cw - 1) / cw;
    auto slice = [&](int t) {
      const int c0 = t * cw, cn = std::min(C, c0 + cw) - c0;
      float* ring = c.scratch(s) + t * (s.ring_floats + s.row_floats);
      DwArgs dd = d;
      dd.C = cn; dd.ring = ring; dd.w = d.w + c0; dd.scale = d.scale + c0; dd.shift = d.shift + c0;
      dd.out = d.out + c0; dd.ldo = C;
      int next = 0;
      for (int oy = 0; oy < Ho; ++oy) {
        for (const int last = std::min(si.h, oy * S - p + k); next < last; ++next)
          fill(next, ring + int64_t(next % k) * si.w * cn, c0, cn);
        s.dw(dd, oy, oy + 1);
      }
    };
    if (slices == 1) slice(0);
    else c.pool.parallel_for(slices, threads, slice);
    return;
  }
  auto band = [&](int t) {
    const int r0 = t * chunk, r1 = std::min(Ho, (t + 1) * chunk);
    float* mine = c.scratch(s) + t * (s.ring_floats + s.row_floats);
    DwArgs dd = d;
    if (s.fused_expand) dd.ring = mine;
    if (s.fused_project) dd.out = mine + s.ring_floats;
    int next = std::max(0, r0 * S - p);
    for (int oy = r0; oy < r1; ++oy) {
      if (s.fused_expand) {
        const int last = std::min(si.h, oy * S - p + k);
        for (; next < last; ++next) fill(next, mine + int64_t(next % k) * ring_row, 0, C);
      }
      if (s.fused_project) dd.oy_base = oy;
      s.dw(dd, oy, oy + 1);
      if (s.fused_project) {
        GemmArgs g = pj;
        g.A = dd.out;
        g.C = out + int64_t(oy) * Wo * so.c;
        if (res) { g.res = res + int64_t(oy) * Wo * so.c; g.ldr = so.c; }
        if (s.res_ring) { g.res = mine + int64_t(oy % k) * ring_row; g.ldr = C; }   // input row oy (stride 1)
        c.kt.gemm(g, 0, Wo, 0, so.c);
      }
    }
  };
  if (tasks == 1) band(0);
  else c.pool.parallel_for(tasks, threads, band);
}

}  // namespace

extern const OpImpl kDwConvOp = {"dwconv", validate, macs, prepare, run};

}  // namespace art
