// The operator table: OpKind -> its validate / macs / prepare / run.
#include <stdexcept>
#include <string>

#include "op.h"

namespace art {

extern const OpImpl kResizeOp, kConvOp, kPwConvOp, kDwConvOp, kSEOp, kAddOp, kGapOp, kLinearOp;

const OpImpl& op_impl(OpKind kind) {
  // in OpKind order
  static const OpImpl* const table[kNumOpKinds] = {&kResizeOp, &kConvOp, &kPwConvOp, &kDwConvOp,
                                                   &kSEOp, &kAddOp, &kGapOp, &kLinearOp};
  const int i = static_cast<int>(kind);
  if (i < 0 || i >= kNumOpKinds) throw std::invalid_argument("unknown op kind " + std::to_string(i));
  return *table[i];
}

}  // namespace art
