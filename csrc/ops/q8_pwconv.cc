// int8 1x1 convolution and linear layer: one uint8 x int8 GEMM over the
// pixels, the zero-point correction and BN/bias/activation/requantization
// in its epilogue (the logits written as float).
#include "q8_op.h"

namespace art {
namespace {

void validate_common(OpDesc& op, const Shape3& si, const Shape3& so) {
  check_k4(op, "int8 weight", op.w8, si.c, so.c);
  check_qparam(op, "input", op.qin);
  check_qparam(op, "output", op.qout);
  check_vec_finite(op, "epilogue multipliers", op.scale, so.c);
  check_vec_finite(op, "epilogue offsets", op.shift, so.c);
  check_act_params(op, op.act, op.float_out);
}

void validate_pw(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_same_hw(op, si, so);
  validate_common(op, si, so);
}

void validate_linear(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (si.h != 1 || si.w != 1 || so.h != 1 || so.w != 1) fail(op, "linear works on 1x1 values");
  validate_common(op, si, so);
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * si.c; }

void prepare(Step& s, const PrepareCtx& c) {
  const Shape3 &si = c.shapes[s.op.in0], &so = c.shapes[s.out];
  s.bias32 = q8_zero_point_bias(s.op.w8, si.c, so.c, s.op.qin.zp - c.q8->a_offset);
  s.kernel = q8_gemm_name(*c.q8);
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  Q8GemmArgs a;
  a.M = si.h * si.w; a.N = so.c; a.K = si.c;
  a.A = c.in8(op.in0); a.lda = si.c;
  a.B = op.w8.data; a.ldb = op.w8.shape[1];
  if (op.float_out) a.Cf = c.out(s.out);
  else a.C = c.out8(s.out);
  a.ldc = so.c;
  a.e = q8_epilogue(op, op.scale, op.shift, op.act, op.qout, &s.bias32);
  q8_gemm(c, a, s.macs);
}

}  // namespace

extern const OpImpl kQ8PwConvOp = {"pwconv", validate_pw, macs, prepare, run};
extern const OpImpl kQ8LinearOp = {"linear", validate_linear, macs, prepare, run};

}  // namespace art
