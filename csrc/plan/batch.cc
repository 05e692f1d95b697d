// The batch schedule (plan/passes.h): where a batch of images stops running
// image by image and starts running step by step.
//
// Image by image, each image's activations stay in cache from one step to
// the next, but every step's weights are read again for every image; once
// the whole subnet's weights outgrow the cache that is a pass over them
// from memory per image. Step by step across a group of images ("lockstep"),
// a step's weights are read once for the group (a 1x1 conv over 1x1 values,
// the head and classifier, becomes one GEMM with a row per image), but each
// image's activations wait in memory while the others run. So the cheaper
// order per step depends on which it reads more of: early steps (wide
// activations, small weights) run image by image, late ones (the reverse)
// in lockstep. One switch point S: the suffix whose weight bytes exceed its
// activation bytes the most.
#include <algorithm>

#include "passes.h"

namespace art {
namespace {

int64_t desc_weights(const OpDesc& d, int64_t cin, int64_t cout) {
  switch (d.kind) {
    case OpKind::PwConv:
    case OpKind::Linear: return cin * cout;
    case OpKind::Conv: return int64_t(d.k) * d.k * cin * cout;
    case OpKind::DwConv: return int64_t(d.k) * d.k * cout;
    case OpKind::SE: return 2 * cout * d.se_r;
    default: return 0;
  }
}

}  // namespace

int64_t step_weight_bytes(const Step& s, const std::vector<Shape3>& shapes, bool q8) {
  const int64_t cin = shapes[s.op.in0].c, cout = shapes[s.out].c;
  int64_t n;
  if (s.fused_expand || s.fused_project) {   // expand -> depthwise -> project, whichever are fused
    const int64_t dwc = s.fused_expand ? s.expand_c : cin;
    n = (s.fused_expand ? desc_weights(*s.expand, cin, dwc) : 0) + desc_weights(s.op, dwc, dwc) +
        (s.fused_project ? desc_weights(*s.project, dwc, cout) : 0);
  } else {
    n = desc_weights(s.op, cin, cout);
  }
  return n * (q8 ? 1 : 4);
}

size_t lockstep_from(const std::vector<Step>& steps, const std::vector<Shape3>& shapes,
                     const std::vector<int64_t>& value_bytes, bool q8) {
  const size_t n = steps.size();
  size_t best = n;
  int64_t gain = 0, best_gain = 0;
  for (size_t i = n; i-- > 0;) {
    const Step& s = steps[i];
    int64_t act = value_bytes[s.op.in0] + value_bytes[s.out];
    if (s.res >= 0) act += value_bytes[s.res];
    if (s.op.kind == OpKind::Add && s.op.in1 >= 0) act += value_bytes[s.op.in1];
    gain += step_weight_bytes(s, shapes, q8) - act;
    if (gain > best_gain) { best_gain = gain; best = i; }
  }
  return best;
}

}  // namespace art
