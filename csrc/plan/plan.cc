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

Plan::Plan(std::vector<Shape3> shapes, int output, bool q8) : shapes_(std::move(shapes)), output_(output), q8_(q8) {
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
  // every op writes one value, the input is none's: the steps' final count at most, so the
  // list is allocated once (a Step is ~1 KB; growth by doubling would leave the heap holes)
  steps_.reserve(shapes_.size() - 1);
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
  if ((op.kind == OpKind::Quantize) != (q8_ && op.in0 == 0))
    fail(op, q8_ ? "an int8 plan reads its float input only by a quantize op" : "quantize is an int8-plan op");
  if (q8_ && op.kind == OpKind::Add && op.in1 == 0) fail(op, "an int8 plan reads its float input only by a quantize op");
  if (q8_ && op.float_out != (op.out == output_))
    fail(op, op.float_out ? "only the op writing the logits writes float" : "the op writing the logits must write float");
  if (!q8_ && op.float_out) fail(op, "float_out is for int8 plans");
  const OpImpl& impl = op_impl(op.kind, q8_);
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

const int8_t* PackCache::get(const int8_t* w, int64_t bytes, const std::function<void(int8_t*)>& pack) {
  std::lock_guard<std::mutex> lk(m_);
  auto it = packed_.find(w);
  if (it != packed_.end()) {
    if (static_cast<int64_t>(it->second.size()) != bytes) throw std::logic_error("one tensor packed at two sizes");
    return it->second.data();
  }
  std::vector<int8_t> v(static_cast<size_t>(bytes));
  pack(v.data());
  bytes_ += bytes;
  return packed_.emplace(w, std::move(v)).first->second.data();
}

int64_t PackCache::bytes() const {
  std::lock_guard<std::mutex> lk(m_);
  return bytes_;
}

void Plan::finalize(const KernelTable* kernels, int max_threads, const Q8Table* q8, PackCache* packs) {
  if (finalized_) throw std::logic_error("plan is finalized");
  if (kernels == nullptr) throw std::invalid_argument("no kernel table");
  if (q8_ && q8 == nullptr) throw std::invalid_argument("an int8 plan needs an int8 kernel table");
  q8k_ = q8;
  max_threads_ = std::max(1, max_threads);
  if (producer_[output_] < 0) throw std::invalid_argument("the output value is never produced");
  kernels_ = kernels;
  const int nv = static_cast<int>(shapes_.size());
  const std::vector<int> uses = count_uses(steps_, nv);
  if (uses[output_] > 0) throw std::invalid_argument("the output value is read by an op");
  if (!q8_) {   // the fusions are float32-only so far
    fuse_residual_add(steps_, producer_, uses);
    fuse_expand_dwconv(steps_, shapes_, uses, output_);
    fuse_dwconv_project(steps_, shapes_, uses, producer_, output_);
    fuse_stem_dwconv(steps_, shapes_, uses, output_);
    fuse_se_gate(steps_, shapes_, uses, output_);
  }
  steps_.shrink_to_fit();   // fusion took about half of them: give their room back
  prepare_ops(steps_, shapes_, *kernels_, max_threads_, q8k_, packs);
  if (!q8_) pull_rows(steps_, shapes_, uses, output_, max_threads_);
  std::vector<int64_t> value_floats(nv);
  for (int v = 0; v < nv; ++v) value_floats[v] = (shapes_[v].size() * value_bytes(v) + 3) / 4;
  offset_ = plan_arena(steps_, value_floats, output_, &arena_floats_);
  if (q8_) arena_floats_ += kAlignFloats;   // int8 kernels may read a few bytes past a value (gathers of 4 bytes)
  std::vector<int64_t> vbytes(nv);
  for (int v = 0; v < nv; ++v) vbytes[v] = shapes_[v].size() * value_bytes(v);
  lockstep_from_ = art::lockstep_from(steps_, shapes_, vbytes, q8_);
  finalized_ = true;
}

std::string Plan::describe() const {
  std::ostringstream o;
  o << "plan: " << steps_.size() << " steps" << (q8_ ? " (int8)" : "") << ", arena " << arena_floats_ * 4
    << " bytes, batches in lockstep from step " << lockstep_from_ << ", kernels " << (q8_ ? (q8k_ ? q8k_->name : "?") : (kernels_ ? kernels_->name : "?")) << "\n";
  for (const Step& s : steps_) {
    const Shape3& si = shapes_[s.op.in0];
    const Shape3& so = shapes_[s.out];
    o << kind_name(s.op.kind) << " " << s.op.name << " " << si.h << "x" << si.w << "x" << si.c << " -> "
      << so.h << "x" << so.w << "x" << so.c << (s.res >= 0 || s.res_ring ? " +residual" : "")
      << (s.gate_only ? " (gate only)" : "") << (s.gate_step >= 0 ? " x SE gate" : "")
      << (s.fused_expand ? std::string(s.expand->kind == OpKind::Conv ? " (conv " : " (expand ") + s.expand->name +
                               " fused, ring rows)" : std::string())
      << (s.fused_project ? " (project " + s.project->name + " fused, per row)" : std::string())
      << (s.rows_pulled ? " (rows made by the next step)" : std::string())
      << (s.pulls_rows ? " (makes the rows of " + steps_[static_cast<size_t>(s.up_step)].op.name + ")" : std::string())
      << " macs=" << s.macs
      << (s.kernel.empty() ? std::string() : " [" + s.kernel + "]") << "\n";
  }
  return o.str();
}

std::vector<std::tuple<std::string, std::string, int64_t, std::string>> Plan::step_info() const {
  std::vector<std::tuple<std::string, std::string, int64_t, std::string>> out;
  for (const Step& s : steps_) out.emplace_back(kind_name(s.op.kind), s.op.name, s.macs, s.kernel);
  return out;
}

void prepare_ops(std::vector<Step>& steps, const std::vector<Shape3>& shapes, const KernelTable& kt, int max_threads,
                 const Q8Table* q8, PackCache* packs) {
  const PrepareCtx c{shapes, kt, max_threads, q8, packs};
  for (Step& s : steps) {
    const OpImpl& impl = op_impl(s.op.kind, q8 != nullptr);
    impl.prepare(s, c);
    s.run = impl.run;
  }
}

}  // namespace art
