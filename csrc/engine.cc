#include "engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace art {

namespace {

constexpr int64_t kAlignFloats = 16;           // 64-byte aligned activations
constexpr int64_t kMaxValueFloats = int64_t(1) << 31;
constexpr int64_t kParallelMacs = 200000;     // below this an op runs on one thread
constexpr int64_t kFuseExpandBytes = 256 << 10;  // expand outputs this large are streamed by rows

const char* kind_name(OpKind k) {
  switch (k) {
    case OpKind::Resize: return "resize";
    case OpKind::Conv: return "conv";
    case OpKind::PwConv: return "pwconv";
    case OpKind::DwConv: return "dwconv";
    case OpKind::SE: return "se";
    case OpKind::Add: return "add";
    case OpKind::GAP: return "gap";
    case OpKind::Linear: return "linear";
  }
  return "?";
}

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

// ART_FUSE=0 turns off the expand->depthwise row streaming (for profiles and
// comparisons); read once.
bool fuse_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ART_FUSE");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

[[noreturn]] void fail(const OpDesc& op, const std::string& msg) {
  throw std::invalid_argument("op '" + op.name + "' (" + kind_name(op.kind) + "): " + msg);
}

std::string dims(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// The stored tensor `b` must be rank `rank`, non-null and at least `need` in
// every dimension (the prefix view the op reads). Exact dims are checked by callers.
void check_buffer(const OpDesc& op, const char* what, const Buffer& b, std::vector<int64_t> need) {
  if (b.data == nullptr) fail(op, std::string(what) + " is missing");
  if (b.shape.size() != need.size())
    fail(op, std::string(what) + " has rank " + std::to_string(b.shape.size()) + ", expected " +
                 std::to_string(need.size()));
  for (size_t i = 0; i < need.size(); ++i)
    if (b.shape[i] < need[i])
      fail(op, std::string(what) + " of shape " + dims(b.shape) + " is too small for the view " + dims(need));
}

void check_vec(const OpDesc& op, const char* what, const std::vector<float>& v, int c) {
  if (!v.empty() && static_cast<int>(v.size()) != c)
    fail(op, std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(c));
}

int conv_out(int n, int k, int s) { return (n + 2 * (k / 2) - k) / s + 1; }

float act_scalar(float x, Act a) {
  switch (a) {
    case Act::None: return x;
    case Act::Relu: return x > 0.f ? x : 0.f;
    case Act::Relu6: return x < 0.f ? 0.f : (x > 6.f ? 6.f : x);
    case Act::HSwish: { float g = x + 3.f; g = g < 0.f ? 0.f : (g > 6.f ? 6.f : g); return x * g / 6.f; }
    case Act::HSigmoid: { float g = x + 3.f; g = g < 0.f ? 0.f : (g > 6.f ? 6.f : g); return g / 6.f; }
    case Act::Sigmoid: return 1.f / (1.f + std::exp(-x));
  }
  return x;
}

}  // namespace

// ----------------------------------------------------------------------------- Plan
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
  auto defined = [&](int v) { return v == 0 || (v > 0 && v < nv && producer_[v] >= 0); };
  if (!defined(op.in0)) fail(op, "input value " + std::to_string(op.in0) + " is not defined before this op");
  if (op.out < 1 || op.out >= nv) fail(op, "output value " + std::to_string(op.out) + " is out of range");
  if (producer_[op.out] >= 0) fail(op, "output value " + std::to_string(op.out) + " is written twice");
  const Shape3& si = shapes_[op.in0];
  const Shape3& so = shapes_[op.out];
  auto same_hw = [&] { if (si.h != so.h || si.w != so.w) fail(op, "input and output sizes differ"); };
  auto conv_shape = [&] {
    if (op.k < 1 || op.k % 2 == 0 || op.k > 31) fail(op, "kernel " + std::to_string(op.k) + " must be odd, 1..31");
    if (op.stride < 1 || op.stride > 4) fail(op, "stride must be 1..4");
    if (so.h != conv_out(si.h, op.k, op.stride) || so.w != conv_out(si.w, op.k, op.stride))
      fail(op, "output size does not follow from input size, kernel and stride");
  };
  switch (op.kind) {
    case OpKind::Resize:
      if (so.c != si.c) fail(op, "channels change");
      break;
    case OpKind::Conv:
      conv_shape();
      check_buffer(op, "weight", op.w, {int64_t(op.k) * op.k * si.c, so.c});
      if (op.w.shape[0] != int64_t(op.k) * op.k * si.c) fail(op, "weight rows must be k*k*Cin exactly");
      break;
    case OpKind::PwConv:
      same_hw();
      check_buffer(op, "weight", op.w, {si.c, so.c});
      break;
    case OpKind::DwConv:
      conv_shape();
      if (so.c != si.c) fail(op, "depthwise conv changes channels");
      check_buffer(op, "weight", op.w, {op.k, op.k, si.c});
      if (op.w.shape[0] != op.k || op.w.shape[1] != op.k) fail(op, "weight is not " + std::to_string(op.k) + "x" + std::to_string(op.k));
      if (op.scale.empty()) op.scale.assign(so.c, 1.f);
      if (op.shift.empty()) op.shift.assign(so.c, 0.f);
      break;
    case OpKind::SE:
      if (!(so == si)) fail(op, "squeeze-excite changes shape");
      if (op.se_r < 1) fail(op, "bottleneck width must be positive");
      check_buffer(op, "reduce weight", op.se_w1, {si.c, op.se_r});
      check_buffer(op, "reduce bias", op.se_b1, {op.se_r});
      check_buffer(op, "expand weight", op.se_w2, {op.se_r, si.c});
      check_buffer(op, "expand bias", op.se_b2, {si.c});
      if (op.se_gate != Act::HSigmoid && op.se_gate != Act::Sigmoid) fail(op, "gate must be hsigmoid or sigmoid");
      break;
    case OpKind::Add:
      if (!defined(op.in1)) fail(op, "second input is not defined before this op");
      if (!(shapes_[op.in1] == si) || !(so == si)) fail(op, "shapes of the added values differ");
      break;
    case OpKind::GAP:
      if (so.h != 1 || so.w != 1 || so.c != si.c) fail(op, "output must be 1x1xC");
      break;
    case OpKind::Linear:
      if (si.h != 1 || si.w != 1 || so.h != 1 || so.w != 1) fail(op, "linear works on 1x1 values");
      check_buffer(op, "weight", op.w, {si.c, so.c});
      break;
    default:
      fail(op, "unknown op kind");
  }
  if (op.kind != OpKind::Add && op.kind != OpKind::SE && op.act == Act::Sigmoid) fail(op, "sigmoid is only an SE gate");
  check_vec(op, "scale", op.scale, so.c);
  check_vec(op, "shift", op.shift, so.c);
  producer_[op.out] = static_cast<int>(steps_.size());
  Step st;
  st.out = op.out;
  switch (op.kind) {
    case OpKind::Conv: st.macs = so.size() * op.k * op.k * si.c; break;
    case OpKind::PwConv: case OpKind::Linear: st.macs = so.size() * si.c; break;
    case OpKind::DwConv: st.macs = so.size() * op.k * op.k; break;
    default: st.macs = so.size(); break;
  }
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

  // Fuse "pwconv -> add" into the pwconv's epilogue when the conv's result
  // feeds nothing else (MobileNet's project + residual).
  std::vector<int> uses(nv, 0);
  for (const Step& s : steps_) {
    uses[s.op.in0]++;
    if (s.op.kind == OpKind::Add) uses[s.op.in1]++;
  }
  if (uses[output_] > 0) throw std::invalid_argument("the output value is read by an op");
  std::vector<Step> fused;
  for (Step& s : steps_) {
    if (s.op.kind == OpKind::Add && !fused.empty()) {
      Step& prev = fused.back();
      const int a = s.op.in0, b = s.op.in1;
      int conv_val = -1, res_val = -1;
      if (prev.out == a && uses[a] == 1) { conv_val = a; res_val = b; }
      else if (prev.out == b && uses[b] == 1) { conv_val = b; res_val = a; }
      if (conv_val >= 0 && prev.op.kind == OpKind::PwConv && prev.res < 0 && res_val != conv_val) {
        prev.out = s.op.out;
        prev.res = res_val;
        producer_[s.op.out] = static_cast<int>(fused.size()) - 1;
        continue;
      }
    }
    fused.push_back(std::move(s));
  }
  steps_ = std::move(fused);

  // Fuse "expand pwconv -> dwconv" where the expanded tensor is large: the
  // depthwise step computes expanded rows as it needs them into a ring of k
  // rows per thread, so the wide tensor never exists whole (memory) and each
  // row is used while still in cache (speed).
  {
    std::vector<Step> out;
    for (Step& s : steps_) {
      if (s.op.kind == OpKind::DwConv && !out.empty()) {
        Step& prev = out.back();
        const int v = s.op.in0;
        const Shape3& sv = shapes_[v];
        if (fuse_enabled() && prev.op.kind == OpKind::PwConv && prev.out == v && prev.res < 0 && prev.gate_step < 0 &&
            uses[v] == 1 && v != output_ && sv.size() * 4 >= kFuseExpandBytes && s.op.k <= sv.h) {
          s.fused_expand = true;
          s.expand = std::move(prev.op);
          s.expand_c = sv.c;
          s.op.in0 = s.expand.in0;
          s.ring_floats = round_up(int64_t(s.op.k) * sv.w * sv.c, kAlignFloats);
          s.macs += prev.macs;
          out.back() = std::move(s);
          continue;
        }
      }
      out.push_back(std::move(s));
    }
    steps_ = std::move(out);
  }

  // Fuse "SE -> pwconv" where the activation is larger than the conv's
  // weight block: (x * g) B = x (diag(g) B), so the conv reads x as it is and
  // multiplies its [K, N] weight block by the gate once per image, instead of
  // a pass over the whole activation.
  for (size_t i = 0; i + 1 < steps_.size(); ++i) {
    Step& se = steps_[i];
    Step& pw = steps_[i + 1];
    const Shape3& sx = shapes_[se.op.in0];
    if (se.op.kind == OpKind::SE && pw.op.kind == OpKind::PwConv && pw.op.in0 == se.out && uses[se.out] == 1 &&
        se.out != output_ && int64_t(sx.h) * sx.w > shapes_[pw.out].c) {
      se.gate_only = true;
      pw.gate_step = static_cast<int>(i);
      pw.op.in0 = se.op.in0;
    }
  }

  // Lifetimes (in steps) of every arena value, plus per-step scratch.
  struct Item { int64_t size, first, last, off; int value; int step; };
  std::vector<Item> items;
  std::vector<int64_t> first(nv, -1), last(nv, -1);
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    if (!s.gate_only) first[s.out] = static_cast<int64_t>(i);
    for (int v : {s.op.in0, s.op.kind == OpKind::Add ? s.op.in1 : -1, s.res})
      if (v >= 0) last[v] = std::max<int64_t>(last[v], static_cast<int64_t>(i));
  }
  for (int v = 1; v < nv; ++v) {
    if (v == output_ || first[v] < 0) continue;
    items.push_back({round_up(shapes_[v].size(), kAlignFloats), first[v], std::max(first[v], last[v]), -1, v, -1});
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    const Shape3& si = shapes_[s.op.in0];
    const Shape3& so = shapes_[s.out];
    int64_t scratch = 0;
    if (s.op.kind == OpKind::Conv) scratch = int64_t(max_threads_) * so.w * s.op.k * s.op.k * si.c;   // a row per thread
    if (s.op.kind == OpKind::SE) scratch = round_up(si.c, kAlignFloats) * 2 + round_up(s.op.se_r, kAlignFloats);
    if (s.gate_step >= 0) scratch = int64_t(si.c) * so.c;   // the gated weight block
    if (s.fused_expand) scratch = s.ring_floats * max_threads_;   // one ring per thread
    if (scratch) items.push_back({round_up(scratch, kAlignFloats), int64_t(i), int64_t(i), -1, -1, int(i)});
    if (s.gate_only)   // the gate lives from the SE step to the conv after it
      items.push_back({round_up(si.c, kAlignFloats), int64_t(i), int64_t(i) + 1, -1, -2, int(i)});
  }
  // Greedy first fit, largest first (as TFLite's arena planner).
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].size > items[b].size; });
  std::vector<size_t> placed;
  arena_floats_ = 0;
  for (size_t idx : order) {
    Item& it = items[idx];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t p : placed) {
      const Item& o = items[p];
      if (o.first <= it.last && it.first <= o.last) busy.emplace_back(o.off, o.off + o.size);
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto& b : busy) {
      if (off + it.size <= b.first) break;
      off = std::max(off, b.second);
    }
    it.off = off;
    placed.push_back(idx);
    arena_floats_ = std::max(arena_floats_, off + it.size);
  }
  offset_.assign(nv, -1);
  for (const Item& it : items) {
    if (it.value >= 0) offset_[it.value] = it.off;
    else if (it.value == -2) steps_[it.step].gate_off = it.off;
    else steps_[it.step].scratch_off = it.off;
  }

  // Resize tables: half-pixel centres, clamped (as reference.resize_bilinear).
  for (Step& s : steps_) {
    if (s.op.kind != OpKind::Resize) continue;
    const Shape3& si = shapes_[s.op.in0];
    const Shape3& so = shapes_[s.out];
    auto axis = [](int n_in, int n_out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
      const double scale = double(n_in) / n_out;
      for (int o = 0; o < n_out; ++o) {
        double c = (o + 0.5) * scale - 0.5;
        c = std::min(std::max(c, 0.0), double(n_in - 1));
        int a = static_cast<int>(std::floor(c));
        i0.push_back(a);
        i1.push_back(std::min(a + 1, n_in - 1));
        f.push_back(static_cast<float>(c - a));
      }
    };
    axis(si.h, so.h, s.ry0, s.ry1, s.rfy);
    axis(si.w, so.w, s.rx0, s.rx1, s.rfx);
  }
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
      << (s.fused_expand ? " (expand " + s.expand.name + " fused, ring rows)" : std::string()) << " macs=" << s.macs << "\n";
  }
  return o.str();
}

std::vector<std::tuple<std::string, std::string, int64_t>> Plan::step_info() const {
  std::vector<std::tuple<std::string, std::string, int64_t>> out;
  for (const Step& s : steps_) out.emplace_back(kind_name(s.op.kind), s.op.name, s.macs);
  return out;
}

const float* Plan::in_ptr(int v, const float* x, const float* arena) const {
  return v == 0 ? x : (offset_[v] >= 0 ? arena + offset_[v] : nullptr);
}

float* Plan::out_ptr(int v, float* y, float* arena) const {
  return v == output_ ? y : (offset_[v] >= 0 ? arena + offset_[v] : nullptr);
}

// ----------------------------------------------------------------------------- arenas
ArenaPool::~ArenaPool() {
  for (Arena& a : free_) std::free(a.p);
}

ArenaPool::Arena ArenaPool::acquire(int64_t floats) {
  floats = std::max<int64_t>(floats, kAlignFloats);
  {
    std::lock_guard<std::mutex> lk(m_);
    // the largest free arena: it is big enough unless this plan is the largest yet
    auto it = std::max_element(free_.begin(), free_.end(), [](const Arena& a, const Arena& b) { return a.n < b.n; });
    if (it != free_.end()) {
      Arena a = *it;
      free_.erase(it);
      if (a.n >= floats) return a;
      std::free(a.p);
      held_ -= a.n * 4;
    }
    held_ += floats * 4;
  }
  void* p = std::aligned_alloc(64, static_cast<size_t>(round_up(floats * 4, 64)));
  if (p == nullptr) {
    std::lock_guard<std::mutex> lk(m_);
    held_ -= floats * 4;
    throw std::bad_alloc();
  }
  return {static_cast<float*>(p), floats};
}

void ArenaPool::release(Arena a) {
  std::lock_guard<std::mutex> lk(m_);
  free_.push_back(a);
}

int64_t ArenaPool::bytes_held() const {
  std::lock_guard<std::mutex> lk(m_);
  return held_;
}

// ----------------------------------------------------------------------------- Engine
Engine::Engine(int max_threads, const KernelTable* kernels)
    : kernels_(kernels), pool_(std::max(1, max_threads)) {
  if (kernels_ == nullptr) throw std::invalid_argument("no kernel table");
}

void Engine::run(const Plan& plan, const float* x, int64_t batch, float* y, int threads) {
  if (!plan.finalized()) throw std::logic_error("plan is not finalized");
  if (plan.kernels() != kernels_) throw std::invalid_argument("plan was built for another kernel table");
  if (batch < 0) throw std::invalid_argument("negative batch");
  if (batch == 0) return;
  if (x == nullptr || y == nullptr) throw std::invalid_argument("null input or output");
  // never more threads than the plan's scratch was sized for (a plan finalized by
  // another engine may have been sized for fewer)
  threads = std::max(1, std::min({threads, max_threads(), plan.max_threads()}));
  const int64_t in_size = plan.input_shape().size();
  const int64_t out_size = plan.output_shape().size();
  // A batch of at least `threads` images is split by image first: a thread
  // runs whole images on an arena of its own (no synchronisation per op,
  // which small nets cannot amortise), claiming chunks of images as it goes
  // so a worker that starts late still takes its share; the remaining
  // batch % threads images run one at a time with each op split across the
  // threads.
  const int64_t by_image = threads > 1 && batch >= threads ? batch / threads * threads : 0;
  if (threads > 1) pool_.begin_run();
  struct EndRun {   // the pool's run ends however this one does
    ThreadPool& pool;
    bool on;
    ~EndRun() { if (on) pool.end_run(); }
  } end_run{pool_, threads > 1};
  if (by_image) {
    const int64_t chunk = std::max<int64_t>(1, by_image / (4 * threads));
    const int tasks = static_cast<int>((by_image + chunk - 1) / chunk);
    // arenas are taken before the parallel region (allocation may throw),
    // one per thread that joins; each thread picks its slot once per run
    struct Arenas {
      ArenaPool& pool;
      std::vector<ArenaPool::Arena> a;
      ~Arenas() { for (auto& x : a) pool.release(x); }
    } arenas{arenas_, {}};
    for (int i = 0; i < threads; ++i) arenas.a.push_back(arenas_.acquire(plan.arena_floats()));
    static std::atomic<uint64_t> run_ids{0};
    const uint64_t rid = run_ids.fetch_add(1, std::memory_order_relaxed) + 1;
    std::atomic<int> slots{0};
    pool_.parallel_for(tasks, threads, [&](int t) {
      thread_local uint64_t my_run = 0;
      thread_local int my_slot = 0;
      if (my_run != rid) { my_run = rid; my_slot = slots.fetch_add(1, std::memory_order_relaxed); }
      if (my_slot >= threads) std::abort();   // the pool never runs more threads than asked
      float* arena = arenas.a[my_slot].p;
      for (int64_t n = t * chunk; n < std::min(by_image, (t + 1) * chunk); ++n)
        run_image(plan, x + n * in_size, y + n * out_size, arena, 1);
    });
  }
  if (by_image < batch) {
    ArenaPool::Arena arena = arenas_.acquire(plan.arena_floats());
    for (int64_t n = by_image; n < batch; ++n) run_image(plan, x + n * in_size, y + n * out_size, arena.p, threads);
    arenas_.release(arena);
  }
}

std::vector<double> Engine::profile(const Plan& plan, const float* x, float* y, int threads, int repeats) {
  if (!plan.finalized()) throw std::logic_error("plan is not finalized");
  if (plan.kernels() != kernels_) throw std::invalid_argument("plan was built for another kernel table");
  threads = std::max(1, std::min(threads, max_threads()));
  repeats = std::max(1, repeats);
  const size_t n = plan.steps_.size();
  std::vector<std::vector<double>> t(n);
  ArenaPool::Arena arena = arenas_.acquire(plan.arena_floats());
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < n; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      run_image(plan, x, y, arena.p, threads, i, i + 1);
      t[i].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  arenas_.release(arena);
  std::vector<double> med(n);
  for (size_t i = 0; i < n; ++i) {
    std::nth_element(t[i].begin(), t[i].begin() + t[i].size() / 2, t[i].end());
    med[i] = t[i][t[i].size() / 2];
  }
  return med;
}

void Engine::run_image(const Plan& plan, const float* x, float* y, float* arena, int threads,
                       size_t s0, size_t s1) {
  const KernelTable& kt = *kernels_;
  auto gemm = [&](const GemmArgs& a, int64_t macs) {
    if (threads <= 1 || macs < kParallelMacs) {
      kt.gemm(a, 0, a.M, 0, a.N);
      return;
    }
    if (a.M >= 2 * kt.gemm_mr * threads) {
      const int chunk = static_cast<int>(round_up((a.M + threads - 1) / threads, kt.gemm_mr));
      const int tasks = (a.M + chunk - 1) / chunk;
      pool_.parallel_for(tasks, threads, [&](int t) { kt.gemm(a, t * chunk, std::min(a.M, (t + 1) * chunk), 0, a.N); });
    } else {
      const int chunk = static_cast<int>(round_up((a.N + threads - 1) / threads, kt.gemm_nr));
      const int tasks = (a.N + chunk - 1) / chunk;
      pool_.parallel_for(tasks, threads, [&](int t) { kt.gemm(a, 0, a.M, t * chunk, std::min(a.N, (t + 1) * chunk)); });
    }
  };
  s1 = std::min(s1, plan.steps_.size());
  for (size_t si_ = s0; si_ < s1; ++si_) {
    const Plan::Step& s = plan.steps_[si_];
    const OpDesc& op = s.op;
    const Shape3& si = plan.shapes_[op.in0];
    const Shape3& so = plan.shapes_[s.out];
    const float* in = plan.in_ptr(op.in0, x, arena);
    float* out = plan.out_ptr(s.out, y, arena);
    const float* scale = op.scale.empty() ? nullptr : op.scale.data();
    const float* shift = op.shift.empty() ? nullptr : op.shift.data();
    switch (op.kind) {
      case OpKind::PwConv:
      case OpKind::Linear: {
        GemmArgs a;
        a.M = si.h * si.w; a.N = so.c; a.K = si.c;
        a.A = in; a.lda = si.c;
        a.B = op.w.data; a.ldb = op.w.shape[1];
        a.C = out; a.ldc = so.c;
        a.scale = scale; a.shift = shift; a.act = op.act;
        if (s.res >= 0) { a.res = plan.in_ptr(s.res, x, arena); a.ldr = so.c; }
        if (s.gate_step >= 0) {
          float* gated = arena + s.scratch_off;
          kt.scale_rows(a.B, a.ldb, a.K, a.N, arena + plan.steps_[s.gate_step].gate_off, gated);
          a.B = gated;
          a.ldb = a.N;
        }
        gemm(a, s.macs);
        break;
      }
      case OpKind::Conv: {
        // im2col one output row at a time into a per-thread buffer that stays
        // in L1, then a GEMM over that row (M = output width)
        const int k = op.k, p = k / 2, cin = si.c;
        const int64_t kk = int64_t(k) * k * cin;
        GemmArgs g;
        g.M = so.w; g.N = so.c; g.K = static_cast<int>(kk); g.lda = kk;
        g.B = op.w.data; g.ldb = op.w.shape[1]; g.ldc = so.c;
        g.scale = scale; g.shift = shift; g.act = op.act;
        const int chunk = threads > 1 && s.macs >= kParallelMacs ? (so.h + threads - 1) / threads : so.h;
        pool_.parallel_for((so.h + chunk - 1) / chunk, threads, [&](int t) {
          float* cols = arena + s.scratch_off + t * int64_t(so.w) * kk;
          for (int oy = t * chunk; oy < std::min(so.h, (t + 1) * chunk); ++oy) {
            for (int ox = 0; ox < so.w; ++ox) {
              float* row = cols + int64_t(ox) * kk;
              const int ix0 = ox * op.stride - p;
              const bool inside_x = ix0 >= 0 && ix0 + k <= si.w;
              for (int ky = 0; ky < k; ++ky) {
                const int iy = oy * op.stride - p + ky;
                float* d = row + int64_t(ky) * k * cin;
                if (iy < 0 || iy >= si.h) {
                  for (int j = 0; j < k * cin; ++j) d[j] = 0.f;
                } else if (inside_x) {   // the k taps of this kernel row are contiguous in NHWC
                  const float* src = in + (int64_t(iy) * si.w + ix0) * cin;
                  for (int j = 0; j < k * cin; ++j) d[j] = src[j];
                } else {
                  for (int kx = 0; kx < k; ++kx) {
                    const int ix = ix0 + kx;
                    if (ix < 0 || ix >= si.w) {
                      for (int c = 0; c < cin; ++c) d[kx * cin + c] = 0.f;
                    } else {
                      const float* src = in + (int64_t(iy) * si.w + ix) * cin;
                      for (int c = 0; c < cin; ++c) d[kx * cin + c] = src[c];
                    }
                  }
                }
              }
            }
            GemmArgs gr = g;
            gr.A = cols;
            gr.C = out + int64_t(oy) * so.w * so.c;
            kt.gemm(gr, 0, so.w, 0, so.c);
          }
        });
        break;
      }
      case OpKind::DwConv: {
        DwArgs d;
        const int C = s.fused_expand ? s.expand_c : si.c;
        d.H = si.h; d.W = si.w; d.C = C; d.Ho = so.h; d.Wo = so.w; d.k = op.k; d.stride = op.stride;
        d.in = in; d.w = op.w.data; d.wc = op.w.shape[2]; d.out = out;
        d.scale = scale; d.shift = shift; d.act = op.act;
        const bool par = threads > 1 && s.macs >= kParallelMacs && so.h >= 2;
        const int chunk = par ? (so.h + threads - 1) / threads : so.h;
        const int tasks = (so.h + chunk - 1) / chunk;
        if (!s.fused_expand) {
          if (tasks == 1) kt.dwconv(d, 0, so.h);
          else pool_.parallel_for(tasks, threads, [&](int t) { kt.dwconv(d, t * chunk, std::min(so.h, (t + 1) * chunk)); });
          break;
        }
        // Expand conv fused in front: each band of output rows computes the
        // expanded input rows it needs, in order, into its own ring of k rows.
        const OpDesc& ex = s.expand;
        GemmArgs g;
        g.M = si.w; g.N = C; g.K = si.c; g.lda = si.c;
        g.B = ex.w.data; g.ldb = ex.w.shape[1]; g.ldc = C;
        g.scale = ex.scale.empty() ? nullptr : ex.scale.data();
        g.shift = ex.shift.empty() ? nullptr : ex.shift.data();
        g.act = ex.act;
        const int k = op.k, S = op.stride, p = k / 2;
        const int64_t row_floats = int64_t(si.w) * C;
        auto band = [&](int t) {
          const int r0 = t * chunk, r1 = std::min(so.h, (t + 1) * chunk);
          float* ring = arena + s.scratch_off + t * s.ring_floats;
          DwArgs dd = d;
          dd.ring = ring;
          int next = std::max(0, r0 * S - p);
          for (int oy = r0; oy < r1; ++oy) {
            const int last = std::min(si.h, oy * S - p + k);
            for (; next < last; ++next) {
              GemmArgs gr = g;
              gr.A = in + int64_t(next) * si.w * si.c;
              gr.C = ring + int64_t(next % k) * row_floats;
              kt.gemm(gr, 0, si.w, 0, C);
            }
            kt.dwconv(dd, oy, oy + 1);
          }
        };
        if (tasks == 1) band(0);
        else pool_.parallel_for(tasks, threads, band);
        break;
      }
      case OpKind::SE: {
        const int C = si.c, R = op.se_r;
        const int64_t hw = int64_t(si.h) * si.w;
        float* pooled = arena + s.scratch_off;
        float* red = pooled + round_up(C, kAlignFloats);
        float* gate = s.gate_only ? arena + s.gate_off : red + round_up(R, kAlignFloats);
        const int cblk = threads > 1 && hw * C >= kParallelMacs ? static_cast<int>(round_up((C + threads - 1) / threads, 16)) : C;
        pool_.parallel_for((C + cblk - 1) / cblk, threads, [&](int t) {
          const int c0 = t * cblk, c1 = std::min(C, c0 + cblk);
          // channel_sum over a channel slice: the slice's pixels are C apart
          for (int c = c0; c < c1; c += 16) {
            const int n = std::min(16, c1 - c);
            float tmp[16];
            for (int j = 0; j < n; ++j) tmp[j] = 0.f;
            kt.channel_sum_strided(in + c, hw, n, C, tmp);
            for (int j = 0; j < n; ++j) pooled[c + j] = tmp[j];
          }
        });
        const float inv = 1.f / static_cast<float>(hw);
        for (int c = 0; c < C; ++c) pooled[c] *= inv;
        GemmArgs a;
        a.M = 1; a.K = C; a.N = R; a.A = pooled; a.lda = C;
        a.B = op.se_w1.data; a.ldb = op.se_w1.shape[1]; a.C = red; a.ldc = R;
        a.shift = op.se_b1.data; a.act = Act::Relu;
        gemm(a, int64_t(C) * R);
        GemmArgs b;
        b.M = 1; b.K = R; b.N = C; b.A = red; b.lda = R;
        b.B = op.se_w2.data; b.ldb = op.se_w2.shape[1]; b.C = gate; b.ldc = C;
        b.shift = op.se_b2.data; b.act = op.se_gate == Act::HSigmoid ? Act::HSigmoid : Act::None;
        gemm(b, int64_t(C) * R);
        if (op.se_gate == Act::Sigmoid)
          for (int c = 0; c < C; ++c) gate[c] = act_scalar(gate[c], Act::Sigmoid);
        if (!s.gate_only) kt.scale_channels(in, hw, C, gate, out);
        break;
      }
      case OpKind::Add: {
        kt.add(in, plan.in_ptr(op.in1, x, arena), so.size(), out);
        break;
      }
      case OpKind::GAP: {
        const int C = si.c;
        const int64_t hw = int64_t(si.h) * si.w;
        kt.channel_sum(in, hw, C, out);
        const float inv = 1.f / static_cast<float>(hw);
        for (int c = 0; c < C; ++c) out[c] = act_scalar(out[c] * inv, op.act);
        break;
      }
      case OpKind::Resize: {
        const int C = si.c;
        const int rchunk = threads > 1 && so.size() >= kParallelMacs / 4 ? (so.h + threads - 1) / threads : so.h;
        pool_.parallel_for((so.h + rchunk - 1) / rchunk, threads, [&](int t) {
        for (int oy = t * rchunk; oy < std::min(so.h, (t + 1) * rchunk); ++oy) {
          const float fy = s.rfy[oy];
          const float* r0 = in + int64_t(s.ry0[oy]) * si.w * C;
          const float* r1 = in + int64_t(s.ry1[oy]) * si.w * C;
          for (int ox = 0; ox < so.w; ++ox) {
            const float fx = s.rfx[ox];
            const int64_t a = int64_t(s.rx0[ox]) * C, b = int64_t(s.rx1[ox]) * C;
            float* o = out + (int64_t(oy) * so.w + ox) * C;
            for (int c = 0; c < C; ++c) {
              const float top = r0[a + c] * (1.f - fx) + r0[b + c] * fx;
              const float bot = r1[a + c] * (1.f - fx) + r1[b + c] * fx;
              o[c] = top * (1.f - fy) + bot * fy;
            }
          }
        }
        });
        break;
      }
    }
  }
}

}  // namespace art
