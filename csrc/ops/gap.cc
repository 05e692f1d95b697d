// Global average pool to 1x1xC, then the op's activation.
#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (so.h != 1 || so.w != 1 || so.c != si.c) fail(op, "output must be 1x1xC");
}

void prepare(Step& s, const PrepareCtx& c) {
  s.kernel = kernel_name(c.kt, "channel-sum", "") +
             (s.op.act != Act::None ? " + " + kernel_name(c.kt, "activation", "") : "");
}

void run(const Step& s, const RunCtx& c) {
  const Shape3& si = c.plan.shape(s.op.in0);
  const int64_t hw = int64_t(si.h) * si.w;
  float* out = c.out(s.out);
  c.kt.channel_sum(c.in(s.op.in0), hw, si.c, 1.f / static_cast<float>(hw), out);
  if (s.op.act != Act::None) c.kt.activation(out, si.c, s.op.act, out);
}

}  // namespace

extern const OpImpl kGapOp = {"gap", validate, default_macs, prepare, run};

}  // namespace art
