// The operator table: OpKind -> its validate / macs / prepare / run.
#include <stdexcept>
#include <string>

#include "op.h"

namespace art {

extern const OpImpl kResizeOp, kConvOp, kPwConvOp, kDwConvOp, kSEOp, kAddOp, kGapOp, kLinearOp, kNoQuantizeOp;
extern const OpImpl kQ8ResizeOp, kQ8ConvOp, kQ8PwConvOp, kQ8DwConvOp, kQ8SEOp, kQ8AddOp, kQ8GapOp, kQ8LinearOp,
    kQ8QuantizeOp;

const OpImpl& op_impl(OpKind kind, bool q8) {
  // in OpKind order
  static const OpImpl* const f32[kNumOpKinds] = {&kResizeOp, &kConvOp, &kPwConvOp, &kDwConvOp, &kSEOp,
                                                 &kAddOp, &kGapOp, &kLinearOp, &kNoQuantizeOp};
  static const OpImpl* const i8[kNumOpKinds] = {&kQ8ResizeOp, &kQ8ConvOp, &kQ8PwConvOp, &kQ8DwConvOp, &kQ8SEOp,
                                                &kQ8AddOp, &kQ8GapOp, &kQ8LinearOp, &kQ8QuantizeOp};
  const int i = static_cast<int>(kind);
  if (i < 0 || i >= kNumOpKinds) throw std::invalid_argument("unknown op kind " + std::to_string(i));
  return *(q8 ? i8 : f32)[i];
}

}  // namespace art
