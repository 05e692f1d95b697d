// Elementwise add of two values of one shape (where plan/fuse.cc could not
// fold it into the producing conv's epilogue).
#include "op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  if (!(shapes[op.in1] == si) || !(so == si)) fail(op, "shapes of the added values differ");
}

void prepare(Step& s, const PrepareCtx& c) { s.kernel = kernel_name(c.kt, "add", ""); }

void run(const Step& s, const RunCtx& c) {
  c.kt.add(c.in(s.op.in0), c.in(s.op.in1), c.plan.shape(s.out).size(), c.out(s.out));
}

}  // namespace

extern const OpImpl kAddOp = {"add", validate, default_macs, prepare, run};

}  // namespace art
