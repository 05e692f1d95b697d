#include "plan.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "../ops/op.h"
#include "passes.h"

namespace art {

namespace {
constexpr int64_t kMaxValueFloats = int64_t(1) << 31;
}

Plan::Plan(std::vector<Shape3> shapes, int output) : shapes_(std::move(shapes)), output_(output) {
  if (shapes_.size() < 2) throw std::invalid_argument("a plan needs an input and at least one produced value");
  for (size_t v = 0; v < shapes_.size(); ++v) {
    const Shape3& s = shapes_[v];
    if (s.h < 1 || s.w < 1 || s.c < 1 || s.size() > kMaxValueFloats)
      throw std::invalid_argument("value " + std::to_string(v) + " has an invalid shape");
  }
  if (output_ < 1 || output_ >= static_cast<int>(shapes_.size()))
    throw std::invalid_argument("output value " + std::to_string(output_) + " is out of range");
  if (shapes_[output_].h != 1 || shapes_[output_].w != 1)
    throw std::invalid_argument("the output value must be 1x1xC (logits)");
  producer_.assign(shapes_.size(), -1);
}

void Plan::add(OpDesc op) {
  if (finalized_) throw std::logic_error("plan is finalized");
  const int nv = static_cast<int>(shapes_.size());
  const int kind = static_cast<int>(op.kind);
  if (kind < 0 || kind >= kNumOpKinds) fail(op, "unknown op kind");
  auto defined = [&](int v) { return v == 0 || (v > 0 && v < nv && producer_[v] >= 0); };
  if (!defined(op.in0)) fail(op, "input value " + std::to_string(op.in0) + " is not defined before this op");
  if (op.out < 1 || op.out >= nv) fail(op, "output value " + std::to_string(op.out) + " is out of range");
  if (producer_[op.out] >= 0) fail(op, "output value " + std::to_string(op.out) + " is written twice");
  if (op.kind == OpKind::Add && !defined(op.in1)) fail(op, "second input is not defined before this op");
  const OpImpl& impl = op_impl(op.kind);
  impl.validate(op, shapes_);
  if (op.kind != OpKind::Add && op.kind != OpKind::SE && op.act == Act::Sigmoid) fail(op, "sigmoid is only an SE gate");
  const Shape3& so = shapes_[op.out];
  check_vec(op, "scale", op.scale, so.c);
  check_vec(op, "shift", op.shift, so.c);
  producer_[op.out] = static_cast<int>(steps_.size());
  Step st;
  st.out = op.out;
  st.macs = impl.macs(op, shapes_[op.in0], so);
  st.op = std::move(op);
  steps_.push_back(std::move(st));
}

void Plan::finalize(const KernelTable* kernels, int max_threads) {
  if (finalized_) throw std::logic_error("plan is finalized");
  if (kernels == nullptr) throw std::invalid_argument("no kernel table");
  max_threads_ = std::max(1, max_threads);
  if (producer_[output_] < 0) throw std::invalid_argument("the output value is never produced");
  kernels_ = kernels;
  const int nv = static_cast<int>(shapes_.size());
  const std::vector<int> uses = count_uses(steps_, nv);
  if (uses[output_] > 0) throw std::invalid_argument("the output value is read by an op");
  fuse_residual_add(steps_, producer_, uses);
  fuse_expand_dwconv(steps_, shapes_, uses, output_);
  fuse_dwconv_project(steps_, shapes_, uses, producer_, output_);
  fuse_se_gate(steps_, shapes_, uses, output_);
  prepare_ops(steps_, shapes_, *kernels_, max_threads_);
  offset_ = plan_arena(steps_, shapes_, output_, &arena_floats_);
  finalized_ = true;
}

std::string Plan::describe() const {
  std::ostringstream o;
  o << "plan: " << steps_.size() << " steps, arena " << arena_floats_ * 4 << " bytes, kernels "
    << (kernels_ ? kernels_->name : "?") << "\n";
  for (const Step& s : steps_) {
    const Shape3& si = shapes_[s.op.in0];
    const Shape3& so = shapes_[s.out];
    o << kind_name(s.op.kind) << " " << s.op.name << " " << si.h << "x" << si.w << "x" << si.c << " -> "
      << so.h << "x" << so.w << "x" << so.c << (s.res >= 0 ? " +residual" : "")
      << (s.gate_only ? " (gate only)" : "") << (s.gate_step >= 0 ? " x SE gate" : "")
      << (s.fused_expand ? " (expand " + s.expand.name + " fused, ring rows)" : std::string())
      << (s.fused_project ? " (project " + s.project.name + " fused, per row)" : std::string()) << " macs=" << s.macs
      << (s.kernel.empty() ? std::string() : " [" + s.kernel + "]") << "\n";
  }
  return o.str();
}

std::vector<std::tuple<std::string, std::string, int64_t, std::string>> Plan::step_info() const {
  std::vector<std::tuple<std::string, std::string, int64_t, std::string>> out;
  for (const Step& s : steps_) out.emplace_back(kind_name(s.op.kind), s.op.name, s.macs, s.kernel);
  return out;
}

void prepare_ops(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const KernelTable& kt, int max_threads) {
  const PrepareCtx c{shapes, kt, max_threads};
  for (Step& s : steps) {
    const OpImpl& impl = op_impl(s.op.kind);
    impl.prepare(s, c);
    s.run = impl.run;
  }
}

}  // namespace art
