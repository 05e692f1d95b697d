// The int8 operators without weights: quantize (the float input image to
// uint8), residual add, global average pool and bilinear resize.
#include <algorithm>

#include "q8_op.h"

namespace art {
namespace {

// Rows of `total` items split over the threads when there are enough of them.
template <class F>
void split(const RunCtx& c, int64_t total, int64_t work, F&& f) {
  const int threads = c.threads;
  const int64_t chunk = threads > 1 && work >= kParallelMacs / 4 ? (total + threads - 1) / threads : total;
  c.pool.parallel_for(static_cast<int>((total + chunk - 1) / chunk), threads, [&](int i) {
    const int64_t a = i * chunk;
    f(a, std::min(total, a + chunk));
  });
}

// ---- quantize
void validate_quantize(OpDesc& op, const std::vector<Shape3>& shapes) {
  if (!(shapes[op.out] == shapes[op.in0])) fail(op, "quantize changes shape");
  check_qparam(op, "output", op.qout);
  if (op.float_out) fail(op, "quantize cannot write the logits");
}

void prepare_quantize(Step& s, const PrepareCtx& c) { s.kernel = q8_kernel_name(*c.q8, "quantize", ""); }

void run_quantize(const Step& s, const RunCtx& c) {
  const float* x = c.in(s.op.in0);
  uint8_t* out = c.out8(s.out);
  const QParam& q = s.op.qout;
  const float inv = q8_inv(q), lo = float(-q.zp), hi = float(255 - q.zp);
  const int64_t n = c.plan.shape(s.out).size();
  split(c, n, n, [&](int64_t a, int64_t b) { c.q8().quantize(x + a, b - a, inv, lo, hi, q.zp, out + a); });
}

// ---- add
void validate_add(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (!(shapes[op.in1] == si) || !(so == si)) fail(op, "shapes of the added values differ");
  check_qparam(op, "first input", op.qin);
  check_qparam(op, "second input", op.qin1);
  check_qparam(op, "output", op.qout);
  check_multiplier(op, "first multiplier", op.m_a);
  check_multiplier(op, "second multiplier", op.m_b);
  if (op.float_out) fail(op, "add cannot write the logits");
}

void prepare_add(Step& s, const PrepareCtx& c) { s.kernel = q8_kernel_name(*c.q8, "add", ""); }

void run_add(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const uint8_t *a = c.in8(op.in0), *b = c.in8(op.in1);
  uint8_t* out = c.out8(s.out);
  const float lo = float(-op.qout.zp), hi = float(255 - op.qout.zp);
  const int64_t n = c.plan.shape(s.out).size();
  split(c, n, n, [&](int64_t i, int64_t j) {
    c.q8().add(a + i, op.qin.zp, op.m_a, b + i, op.qin1.zp, op.m_b, j - i, lo, hi, op.qout.zp, out + i);
  });
}

// ---- global average pool
void validate_gap(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (so.h != 1 || so.w != 1 || so.c != si.c) fail(op, "output must be 1x1xC");
  if (int64_t(si.h) * si.w > kQ8MaxPoolPixels) fail(op, "too many pixels for int8 channel sums");
  if (op.act != Act::None) fail(op, "an int8 pool has no activation");
  check_qparam(op, "input", op.qin);
  check_qparam(op, "output", op.qout);
  check_multiplier(op, "pool multiplier", op.m_a);
  if (op.float_out) fail(op, "a pool cannot write the logits");
}

void prepare_gap(Step& s, const PrepareCtx& c) {
  s.scratch_floats = round_up(c.shapes[s.op.in0].c, kAlignFloats);
  s.kernel = q8_kernel_name(*c.q8, "channel-sum", "");
}

void run_gap(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3& si = c.plan.shape(op.in0);
  const int64_t hw = int64_t(si.h) * si.w;
  int32_t* sums = reinterpret_cast<int32_t*>(c.scratch(s));
  c.q8().channel_sum(c.in8(op.in0), hw, si.c, si.c, sums);
  const int32_t zsum = static_cast<int32_t>(hw * op.qin.zp);
  uint8_t* out = c.out8(s.out);
  for (int ch = 0; ch < si.c; ++ch) out[ch] = q8_requant(static_cast<float>(sums[ch] - zsum) * op.m_a, op.qout);
}

// ---- resize
void validate_resize(OpDesc& op, const std::vector<Shape3>& shapes) {
  if (shapes[op.out].c != shapes[op.in0].c) fail(op, "channels change");
  check_qparam(op, "input", op.qin);
  if (op.qout.scale != op.qin.scale || op.qout.zp != op.qin.zp)
    fail(op, "an int8 resize keeps its input's scale and zero point");
  if (op.float_out) fail(op, "resize cannot write the logits");
}

void prepare_resize(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  resize_tables(s, si, so);
  s.kernel = q8_kernel_name(*c.q8, "resize-bilinear", "");
}

void run_resize(const Step& s, const RunCtx& c) {
  const Shape3 &si = c.plan.shape(s.op.in0), &so = c.plan.shape(s.out);
  Q8ResizeArgs a;
  a.W = si.w; a.C = si.c; a.Wo = so.w; a.in = c.in8(s.op.in0);
  a.ry0 = s.ry0.data(); a.ry1 = s.ry1.data(); a.fy = s.rfy.data();
  a.rx0 = s.rx0.data(); a.rx1 = s.rx1.data(); a.fx = s.rfx.data();
  a.xe0 = s.rxe0.data(); a.xe1 = s.rxe1.data(); a.fxe = s.rfxe.data();
  uint8_t* out = c.out8(s.out);
  const int64_t row = int64_t(so.w) * so.c;
  split(c, so.h, so.size(), [&](int64_t y0, int64_t y1) {
    for (int64_t oy = y0; oy < y1; ++oy) c.q8().resize_row(a, static_cast<int>(oy), out + oy * row);
  });
}

void no_quantize(OpDesc& op, const std::vector<Shape3>& shapes) { fail(op, "quantize is an int8-plan op"); }

}  // namespace

extern const OpImpl kQ8QuantizeOp = {"quantize", validate_quantize, default_macs, prepare_quantize, run_quantize};
extern const OpImpl kQ8AddOp = {"add", validate_add, default_macs, prepare_add, run_add};
extern const OpImpl kQ8GapOp = {"gap", validate_gap, default_macs, prepare_gap, run_gap};
extern const OpImpl kQ8ResizeOp = {"resize", validate_resize, default_macs, prepare_resize, run_resize};
extern const OpImpl kNoQuantizeOp = {"quantize", no_quantize, default_macs, no_prepare, nullptr};

}  // namespace art
