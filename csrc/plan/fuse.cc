// The fusion passes (plan/passes.h). Each rewrites the step list in place;
// a value another step still reads is never fused away.
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "passes.h"

namespace art {

std::vector<int> count_uses(const std::vector<Step>& steps, int num_values) {
  std::vector<int> uses(num_values, 0);
  for (const Step& s : steps) {
    uses[s.op.in0]++;
    if (s.op.kind == OpKind::Add) uses[s.op.in1]++;
  }
  return uses;
}

namespace {
// One pass over the steps, in place and in order: merge(prev, s, at) may fold
// step s into prev, the last step kept (at: prev's index), and returns true
// when it did (s is dropped). Nothing is allocated: a Step is ~1 KB, and a
// new list per pass would leave the heap its holes.
template <class Merge>
void merge_pass(std::vector<Step>& steps, Merge merge) {
  size_t w = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (w > 0 && merge(steps[w - 1], steps[i], static_cast<int>(w - 1))) continue;
    if (w != i) steps[w] = std::move(steps[i]);
    ++w;
  }
  steps.erase(steps.begin() + static_cast<std::ptrdiff_t>(w), steps.end());
}
}  // namespace

// "pwconv -> add" into the pwconv's epilogue when the conv's result feeds
// nothing else (MobileNet's project + residual).
void fuse_residual_add(std::vector<Step>& steps, std::vector<int>& producer, const std::vector<int>& uses) {
  merge_pass(steps, [&](Step& prev, Step& s, int at) {
    if (s.op.kind != OpKind::Add) return false;
    const int a = s.op.in0, b = s.op.in1;
    int conv_val = -1, res_val = -1;
    if (prev.out == a && uses[a] == 1) { conv_val = a; res_val = b; }
    else if (prev.out == b && uses[b] == 1) { conv_val = b; res_val = a; }
    if (conv_val < 0 || prev.op.kind != OpKind::PwConv || prev.res >= 0 || res_val == conv_val) return false;
    prev.out = s.op.out;
    prev.res = res_val;
    producer[s.op.out] = at;
    return true;
  });
}

namespace {
bool fuse_expand_enabled() {   // read once
  static const bool on = [] {
    const char* v = std::getenv("ART_FUSE");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}
// The depthwise step s takes over prev, the conv making its input value v:
// prev's rows are then made in s's ring (ops/dwconv.cc), v is never stored.
void absorb_into_ring(Step& s, Step& prev, int v, const Shape3& sv) {
  s.fused_expand = true;
  s.expand = std::make_unique<OpDesc>(std::move(prev.op));
  s.expand_c = sv.c;
  s.expand_val = v;
  s.op.in0 = s.expand->in0;
  s.macs += prev.macs;
  prev = std::move(s);
}
}  // namespace

// "expand pwconv -> dwconv" where the expanded tensor is large: the
// depthwise step computes expanded rows as it needs them (ops/dwconv.cc).
void fuse_expand_dwconv(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                        int output) {
  if (!fuse_expand_enabled()) return;
  merge_pass(steps, [&](Step& prev, Step& s, int) {
    if (s.op.kind != OpKind::DwConv) return false;
    const int v = s.op.in0;
    const Shape3& sv = shapes[v];
    if (prev.op.kind != OpKind::PwConv || prev.out != v || prev.res >= 0 || prev.gate_step >= 0 || uses[v] != 1 ||
        v == output || sv.size() * 4 < kFuseExpandBytes || s.op.k > sv.h)
      return false;
    absorb_into_ring(s, prev, v, sv);
    return true;
  });
}

// "dwconv -> project pwconv" where the depthwise output is large and read by
// the project conv only (no SE between them): the depthwise step computes an
// output row into a per-thread row buffer and projects it while it is in L1;
// the wide depthwise tensor never exists whole (ops/dwconv.cc).
void fuse_dwconv_project(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                         std::vector<int>& producer, int output) {
  if (!fuse_expand_enabled()) return;
  merge_pass(steps, [&](Step& dw, Step& s, int at) {
    if (s.op.kind != OpKind::PwConv) return false;
    const int v = s.op.in0;
    if (dw.op.kind != OpKind::DwConv || dw.out != v || dw.fused_project || dw.res >= 0 || uses[v] != 1 ||
        v == output || s.gate_step >= 0 || shapes[v].size() * 4 < kFuseProjectBytes)
      return false;
    dw.fused_project = true;
    dw.project = std::make_unique<OpDesc>(std::move(s.op));
    dw.out = s.out;
    dw.res = s.res;
    dw.macs += s.macs;
    producer[dw.out] = at;
    return true;
  });
}

// "direct conv -> dwconv" where the conv's output is large (an image stem,
// few taps per pixel, feeding MobileNet's first block): the depthwise step
// makes the stem's rows in its ring as it needs them, as it does expanded
// rows, and the stem's output (at 224x224: 112x112x16, 0.8 MB) never exists
// whole. The first block's residual (the stem's output again, added by its
// fused project conv) is read from the ring: at stride 1 the ring holds
// input row oy while output row oy is made.
void fuse_stem_dwconv(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                      int output) {
  if (!fuse_expand_enabled()) return;
  merge_pass(steps, [&](Step& prev, Step& s, int) {
    if (s.op.kind != OpKind::DwConv || s.fused_expand) return false;
    const int v = s.op.in0;
    const Shape3& sv = shapes[v];
    const bool res = s.res == v && s.fused_project && s.op.stride == 1;   // the block's residual is v
    if (prev.op.kind != OpKind::Conv || int64_t(prev.op.k) * prev.op.k * shapes[prev.op.in0].c > kDirectTaps ||
        prev.out != v || prev.res >= 0 || uses[v] != (res ? 2 : 1) || v == output ||
        sv.size() * 4 < kFuseExpandBytes || s.op.k > sv.h)
      return false;
    if (res) { s.res = -1; s.res_ring = true; }
    absorb_into_ring(s, prev, v, sv);
    return true;
  });
}

// "SE -> pwconv" where the activation is larger than the conv's weight
// block: (x * g) B = x (diag(g) B), so the conv reads x as it is and scales
// its [K, N] weight block by the gate once per image.
void fuse_se_gate(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses,
                  int output) {
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    Step& se = steps[i];
    Step& pw = steps[i + 1];
    const Shape3& sx = shapes[se.op.in0];
    if (se.op.kind == OpKind::SE && pw.op.kind == OpKind::PwConv && pw.op.in0 == se.out && uses[se.out] == 1 &&
        se.out != output && int64_t(sx.h) * sx.w > shapes[pw.out].c) {
      se.gate_only = true;
      se.gate_c = sx.c;
      pw.gate_step = static_cast<int>(i);
      pw.op.in0 = se.op.in0;
    }
  }
}

namespace {
void run_nothing(const Step&, const RunCtx&) {}   // a step whose rows the next step makes
}  // namespace

void pull_rows(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const std::vector<int>& uses, int output,
               int max_threads) {
  if (!fuse_expand_enabled()) return;
  for (size_t i = 1; i < steps.size(); ++i) {
    Step& up = steps[i - 1];
    Step& s = steps[i];
    const int v = up.out;
    if (up.op.kind != OpKind::DwConv || !up.fused_project || up.rows_pulled || up.pulls_rows ||
        s.op.kind != OpKind::DwConv || !s.fused_expand || s.expand->kind != OpKind::PwConv || s.op.in0 != v ||
        s.res == v || uses[v] != 1 || v == output)
      continue;
    const Shape3& sv = shapes[v];
    // a small value is not worth it: at 2+ threads each band of rows makes the k - stride
    // rows before it again, and there the pulled step's rows too
    if (sv.size() * 4 < kFuseExpandBytes) continue;
    up.rows_pulled = true;
    up.run = run_nothing;
    up.scratch_floats = 0;
    up.kernel += " (rows made by " + s.op.name + ")";
    s.pulls_rows = true;
    s.up_step = static_cast<int>(i - 1);
    s.up_floats = up.ring_floats + up.row_floats + round_up(int64_t(sv.w) * sv.c, kAlignFloats);
    s.scratch_floats = (s.ring_floats + s.row_floats + s.up_floats) * max_threads;
    s.kernel += " (pulls the rows of " + up.op.name + ")";
  }
}

}  // namespace art
