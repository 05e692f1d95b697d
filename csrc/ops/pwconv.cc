// 1x1 convolution (and the classifier's linear layer): one GEMM over the
// pixels, BN/bias, activation and an optional residual in its epilogue; a
// fused SE gate scales the weight rows inside the GEMM's B loads (no pass
// over the activation, no serial pass over the weights before the threads start).
#include "op.h"

namespace art {
namespace {

void validate_pw(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_same_hw(op, si, so);
  check_buffer(op, "weight", op.w, {si.c, so.c});
}

void validate_linear(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (si.h != 1 || si.w != 1 || so.h != 1 || so.w != 1) fail(op, "linear works on 1x1 values");
  check_buffer(op, "weight", op.w, {si.c, so.c});
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * si.c; }

void run_batch(const Step& s, const RunCtx& c);

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  s.kernel = gemm_kernel_name(c.kt, int64_t(si.h) * si.w);
  if (s.gate_step >= 0) {   // a gated copy of B per thread (GemmArgs::bpack)
    s.scratch_floats = gemm_pack_floats(si.c, so.c) * c.max_threads;
    s.kernel += " (rows of B gated)";
  }
  // over 1x1 values (the head, the classifier) a lockstep group is one GEMM with a row per image,
  // where that gives each image the bits of its own GEMV
  if (si.h * si.w == 1 && s.gate_step < 0 && so.c > c.kt.gemv_narrow_n) s.run_batch = run_batch;
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  GemmArgs a;
  a.M = si.h * si.w; a.N = so.c; a.K = si.c;
  a.A = c.in(op.in0); a.lda = si.c;
  set_gemm_b(a, op.w);
  a.C = c.out(s.out); a.ldc = so.c;
  a.scale = op.scale.empty() ? nullptr : op.scale.data();
  a.shift = op.shift.empty() ? nullptr : op.shift.data();
  a.act = op.act;
  if (s.res >= 0) { a.res = c.in(s.res); a.ldr = so.c; }
  if (s.gate_step >= 0) {
    a.bscale = c.arena + c.plan.step(s.gate_step).gate_off;
    a.bpack = c.scratch(s);
  }
  c.gemm(a, s.macs);
}

// All images of a lockstep group: rows of A, C and the residual one image's
// arena (or input / output) apart.
void run_batch(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3& so = c.plan.shape(s.out);
  GemmArgs a;
  a.M = c.images; a.N = so.c; a.K = c.plan.shape(op.in0).c;
  a.A = c.in(op.in0); a.lda = c.image_ld(op.in0);
  set_gemm_b(a, op.w);
  a.C = c.out(s.out); a.ldc = c.image_ld(s.out);
  a.scale = op.scale.empty() ? nullptr : op.scale.data();
  a.shift = op.shift.empty() ? nullptr : op.shift.data();
  a.act = op.act;
  if (s.res >= 0) { a.res = c.in(s.res); a.ldr = c.image_ld(s.res); }
  c.gemm(a, s.macs * c.images);
}

}  // namespace

extern const OpImpl kPwConvOp = {"pwconv", validate_pw, macs, prepare, run};
extern const OpImpl kLinearOp = {"linear", validate_linear, macs, prepare, run};

}  // namespace art
