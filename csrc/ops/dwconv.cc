// Depthwise KxK convolution, NHWC, symmetric padding. The kernel for (k,
// stride, output width) is chosen at prepare time. When plan/fuse.cc fused
// the expand 1x1 conv in front (or a direct stem conv), each band of output
// rows computes the input rows it needs, in order, into its own ring of k
// rows; when
// it fused the project 1x1 conv behind, each output row goes to a row buffer
// and is projected at once. Either way the wide tensors never exist whole
// and each row is used while still in cache.
#include <algorithm>
#include <optional>

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
  if (s.expand->kind != OpKind::Conv) return gemm_kernel_name(kt, w);
  const std::string k = std::to_string(s.expand->k);
  return kernel_name(kt, "conv", k + "x" + k + "s" + std::to_string(s.expand->stride) + "-direct");
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

// One thread's way through a fused depthwise step's output rows, in order:
// the input rows each output row needs are made into the thread's ring of k
// rows (by the fused expand or stem conv; where the step pulls the previous
// step's rows, the expand reads each of those rows as `up` makes it), the
// output row into its row buffer, projected at once.
struct Rows {
  const Step& s;
  const RunCtx& c;
  Shape3 si, so, sp;   // the depthwise input, the step's output, what the step reads (the fused conv's input)
  int C = 0, Ho = 0, Wo = 0, k = 0, S = 1, p = 0;
  bool stem = false;
  DwArgs d;
  GemmArgs ex, pj;
  ConvArgs cv;   // the stem conv: row r into a ring slot (oy_base = r)
  const float* in = nullptr;
  const float* res = nullptr;
  float* out = nullptr;
  int64_t ring_row = 0;
  // this thread's
  float* mine = nullptr;   // ring, row buffer
  int next = 0;            // the next input row to make
  Rows* up = nullptr;      // pulls_rows: the previous step's rows
  float* up_row = nullptr; //   where its output row lands

  Rows(const Step& st, const RunCtx& ctx) : s(st), c(ctx) {
    const OpDesc& op = s.op;
    si = c.plan.shape(dw_input(s));
    so = c.plan.shape(s.out);
    sp = c.plan.shape(op.in0);
    C = si.c;
    k = op.k; S = op.stride; p = k / 2;
    Ho = conv_out(si.h, k, S); Wo = conv_out(si.w, k, S);
    d.H = si.h; d.W = si.w; d.C = C; d.Ho = Ho; d.Wo = Wo; d.k = k; d.stride = S;
    d.in = c.in(op.in0); d.w = op.w.data; d.wc = op.w.shape[2]; d.out = c.out(s.out);
    d.scale = op.scale.data(); d.shift = op.shift.data(); d.act = op.act;
    stem = s.fused_expand && s.expand->kind == OpKind::Conv;
    if (s.fused_expand && !stem) ex = conv1x1(*s.expand, si.w, C, sp.c);
    if (stem) {
      cv.H = sp.h; cv.W = sp.w; cv.Cin = sp.c; cv.Wo = si.w; cv.N = C; cv.k = s.expand->k; cv.stride = s.expand->stride;
      cv.in = c.in(op.in0); cv.w = s.expand->w.data; cv.ldw = s.expand->w.shape[1];
      cv.scale = s.expand->scale.empty() ? nullptr : s.expand->scale.data();
      cv.shift = s.expand->shift.empty() ? nullptr : s.expand->shift.data();
      cv.act = s.expand->act;
    }
    if (s.fused_project) pj = conv1x1(*s.project, Wo, so.c, C);
    res = s.res >= 0 ? c.in(s.res) : nullptr;
    out = c.out(s.out);
    in = d.in;
    ring_row = int64_t(si.w) * C;
  }

  // input row r of channels [c0, c0 + cn) into a ring slot (rows of si.w * cn)
  void fill(int r, float* slot, int c0, int cn) const {
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
    if (up) {
      up->row(r, up_row);
      g.A = up_row;
    } else {
      g.A = in + int64_t(r) * si.w * sp.c;
    }
    g.C = slot;
    c.kt.gemm(g, 0, si.w, 0, cn);
  }

  // This thread's part of the scratch (ring, row buffer, and the upstream
  // step's parts after them), for output rows from oy0 on.
  void start(float* scratch, int oy0) {
    mine = scratch;
    if (s.fused_expand) d.ring = mine;
    if (s.fused_project) d.out = mine + s.ring_floats;
    next = std::max(0, oy0 * S - p);
  }

  // Output row oy, projected into dst (the fused project's output row; null:
  // the step's output). Rows come in increasing order from start's oy0.
  void row(int oy, float* dst) {
    if (s.fused_expand)
      for (const int last = std::min(si.h, oy * S - p + k); next < last; ++next)
        fill(next, mine + int64_t(next % k) * ring_row, 0, C);
    if (s.fused_project) d.oy_base = oy;
    s.dw(d, oy, oy + 1);
    if (s.fused_project) {
      GemmArgs g = pj;
      g.A = d.out;
      g.C = dst ? dst : out + int64_t(oy) * Wo * so.c;
      if (res) { g.res = res + int64_t(oy) * Wo * so.c; g.ldr = so.c; }
      if (s.res_ring) { g.res = mine + int64_t(oy % k) * ring_row; g.ldr = C; }   // input row oy (stride 1)
      c.kt.gemm(g, 0, Wo, 0, so.c);
    }
  }
};

void run(const Step& s, const RunCtx& c) {
  Rows base(s, c);
  const int Ho = base.Ho;
  const int threads = c.threads;
  const bool par = threads > 1 && s.macs >= kParallelMacs && Ho >= 2;
  const int chunk = par ? (Ho + threads - 1) / threads : Ho;
  const int tasks = (Ho + chunk - 1) / chunk;
  if (!s.fused_expand && !s.fused_project) {   // whole bands of rows: the kernel keeps input rows in L1
    const DwArgs& d = base.d;
    if (tasks == 1) s.dw(d, 0, Ho);
    else c.pool.parallel_for(tasks, threads, [&](int t) { s.dw(d, t * chunk, std::min(Ho, (t + 1) * chunk)); });
    return;
  }
  const int C = base.C, k = base.k, S = base.S, p = base.p;
  const Shape3& si = base.si;
  if (s.fused_expand && !s.fused_project && !s.pulls_rows && tasks > 1 && (k - S) * (tasks - 1) * 10 > si.h) {
    // Few rows (a 28x28 or smaller map): bands of rows would each expand the
    // k - S rows their neighbour expands too (at 14x14, k = 7, 2 threads:
    // 26 expanded rows for 14), so each thread takes a slice of the channels
    // over all rows instead: its columns of the expand GEMM into a ring of
    // rows of its slice, its channels of the depthwise output. The same
    // values, each computed once.
    // (slices start on a vector; on a GEMM tile where B is in panels: no tile crosses a panel)
    const int align = base.ex.bk ? c.kt.gemm_nr : c.kt.vec_w;
    const int cw = static_cast<int>(round_up((C + threads - 1) / threads, align));
    const int slices = (C + cw - 1) / cw;
    auto slice = [&](int t) {
      const int c0 = t * cw, cn = std::min(C, c0 + cw) - c0;
      float* ring = c.scratch(s) + t * (s.ring_floats + s.row_floats);
      DwArgs dd = base.d;
      dd.C = cn; dd.ring = ring; dd.w = dd.w + c0; dd.scale = dd.scale + c0; dd.shift = dd.shift + c0;
      dd.out = dd.out + c0; dd.ldo = C;
      int next = 0;
      for (int oy = 0; oy < Ho; ++oy) {
        for (const int last = std::min(si.h, oy * S - p + k); next < last; ++next)
          base.fill(next, ring + int64_t(next % k) * si.w * cn, c0, cn);
        s.dw(dd, oy, oy + 1);
      }
    };
    if (slices == 1) slice(0);
    else c.pool.parallel_for(slices, threads, slice);
    return;
  }
  // Row by row, each thread a band of output rows; where the step pulls the
  // previous step's rows, the thread makes the rows of it its band needs.
  const Step* us = s.pulls_rows ? &c.plan.step(static_cast<size_t>(s.up_step)) : nullptr;
  auto band = [&](int t) {
    const int r0 = t * chunk, r1 = std::min(Ho, (t + 1) * chunk);
    float* part = c.scratch(s) + t * (s.ring_floats + s.row_floats + s.up_floats);
    Rows me = base;
    me.start(part, r0);
    std::optional<Rows> up;
    if (us != nullptr) {
      up.emplace(*us, c);
      up->start(part + s.ring_floats + s.row_floats, me.next);
      me.up = &*up;
      me.up_row = part + s.ring_floats + s.row_floats + us->ring_floats + us->row_floats;
    }
    for (int oy = r0; oy < r1; ++oy) me.row(oy, nullptr);
  };
  if (tasks == 1) band(0);
  else c.pool.parallel_for(tasks, threads, band);
}

}  // namespace

extern const OpImpl kDwConvOp = {"dwconv", validate, macs, prepare, run};

}  // namespace art
