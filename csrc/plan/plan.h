// The plan: one subnet's graph as validated ops, fused, prepared (kernel per
// op, packed parameters, scratch sizes) and laid out in an arena.
//
// A Plan is built once from the graph IR (adaptive_rt/model/graph.py): each
// op is validated against its shapes and its weight buffers when added
// (bounds checks that stay on in release builds; ops/<op>.cc), then
// finalize() runs the named passes of plan/passes.h — fusion, each op's
// prepare step, the arena planner. Weights are read in place: a narrower
// subnet reads a prefix block of the wide tensor with the stored width as
// leading dimension. Switching subnet is choosing another Plan.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "../kernels/kernels.h"
#include "../kernels/q8.h"

namespace art {

struct Shape3 {
  int h = 0, w = 0, c = 0;
  int64_t size() const { return static_cast<int64_t>(h) * w * c; }
  bool operator==(const Shape3& o) const { return h == o.h && w == o.w && c == o.c; }
};

// A stored tensor as the pool file holds it (C-contiguous float32), or a
// 2-D GEMM weight [K, N] stored in panels (`panels`: kernels/kernels.h
// GemmArgs; shape is still the logical [K, N]).
struct Buffer {
  const float* data = nullptr;
  std::vector<int64_t> shape;
  bool panels = false;
  int64_t dim(size_t i) const { return i < shape.size() ? shape[i] : 0; }
};

// A GEMM's B from a stored 2-D weight, as stored (row-major or in panels).
inline void set_gemm_b(GemmArgs& g, const Buffer& w) {
  g.B = w.data;
  g.ldb = w.dim(1);
  g.bk = w.panels ? w.dim(0) : 0;
}

// A stored int8 tensor (int8 plans): 2-D weights in the k4 layout
// [ceil(K/4), N, 4], depthwise [k, k, C] (kernels/q8.h).
struct Buffer8 {
  const int8_t* data = nullptr;
  std::vector<int64_t> shape;
};

// uint8 quantization of a value: real = scale * (q - zp).
struct QParam {
  float scale = 1.f;
  int zp = 0;
};

// Quantize (int8 plans only): the float input image to uint8.
enum class OpKind : int { Resize = 0, Conv, PwConv, DwConv, SE, Add, GAP, Linear, Quantize };
constexpr int kNumOpKinds = 9;

struct OpDesc {
  OpKind kind = OpKind::PwConv;
  std::string name;
  int in0 = -1, in1 = -1, out = -1;
  int k = 1, stride = 1;
  Act act = Act::None;
  Buffer w;                               // conv [k*k*Cin, Cout_max]; pw/linear [Cin_max, Cout_max]; dw [k, k, C_max]
  std::vector<float> scale, shift;        // per output channel (BN and bias folded); empty: 1 / 0
  int se_r = 0;                           // SE bottleneck width
  Buffer se_w1, se_b1, se_w2, se_b2;      // [C_max, R_max], [R_max], [R_max, C_max], [C_max]
  Act se_gate = Act::HSigmoid;
  // int8 plans (adaptive_rt/model/quant.py): scale/shift above are the
  // epilogue's mul/add; the multipliers are float32 computed by the caller
  Buffer8 w8, se_w1_8, se_w2_8;
  QParam qin, qin1, qout;                 // inputs' and output's quantization
  QParam q_pool, q_red;                   // SE: the pooled and reduced vectors
  float m_a = 0.f, m_b = 0.f;             // add: input multipliers; pool / SE pool: m_a; SE: m_b = s_in / s_out
  std::vector<float> se_mul1, se_add1, se_mul2, se_add2;   // SE: epilogues of its two 1x1 convs
  bool float_out = false;                 // writes float32 (the logits)
  float out_scale = 1.f;                  // hard-swish/sigmoid into uint8: 1 / (6 s_out)
  float six = 0.f;                        // ReLU6 into uint8: 6 / s_out (the bound in output steps)
};

struct RunCtx;   // ops/op.h

// One step of a finalized plan: an op, what fusion folded into it, and what
// its prepare step chose.
struct Step {
  OpDesc op;
  int out = -1;                 // value written (after fusion)
  int res = -1;                 // residual value added in the epilogue, or -1
  int64_t macs = 0;
  // fusion (plan/fuse.cc)
  bool gate_only = false;       // SE whose gate is applied by the next pwconv (fused)
  int gate_c = 0;               //   its channels (the gate's size)
  int gate_step = -1;           // pwconv: the SE step whose gate scales its input channels
  bool fused_expand = false;    // dwconv: computes its expand conv (or the stem conv) row by row into a ring
  // that conv (its input is op.in0): a 1x1 PwConv, or a direct Conv; held apart, like the
  // project conv below, as only fused steps have them (an OpDesc is ~0.6 KB, the rest of a Step ~1 KB)
  std::unique_ptr<OpDesc> expand;
  int expand_c = 0;             //   its output channels (= the depthwise channels)
  int expand_val = -1;          //   the value it made (the depthwise input; never stored)
  bool res_ring = false;        //   the residual is that value: read from the ring (stride 1)
  bool fused_project = false;   // dwconv: feeds each output row to its project conv at once
  std::unique_ptr<OpDesc> project;   // that project conv (writes `out`, adds `res`)
  // row chains (plan/fuse.cc pull_rows, after prepare): a fused dwconv whose expand reads the
  // previous step's output pulls that output a row at a time, and the value is never stored
  bool rows_pulled = false;     // this step's output rows are made by the next step (its own run does nothing)
  bool pulls_rows = false;      // this step makes step up_step's rows as its expand needs them
  int up_step = -1;             //   that step (the one before)
  int64_t up_floats = 0;        //   one thread's share of its scratch: its ring, row buffer and one output row
  // prepare (ops/<op>.cc)
  void (*run)(const Step& s, const RunCtx& c) = nullptr;   // the operator's run step
  // the step for all images of a lockstep group at once (RunCtx::images), or null: one run per image
  void (*run_batch)(const Step& s, const RunCtx& c) = nullptr;
  std::string kernel;           // the kernels chosen, "f32-<op>-<tile>-<isa>"
  DwKernel dw = nullptr;        // dwconv: the kernel for its k and stride
  bool direct = false;          // conv: direct kernel (small k*k*Cin) instead of im2col + GEMM
  int64_t scratch_floats = 0;   // per-run scratch this step needs (all threads)
  int64_t ring_floats = 0;      // fused dwconv: one thread's ring of k expanded rows
  int64_t row_floats = 0;       // dwconv with its project fused: one thread's depthwise output row
  std::vector<int> ry0, ry1, rx0, rx1;   // resize tables
  std::vector<float> rfy, rfx;
  std::vector<int32_t> rxe0, rxe1;        // int8 resize: per output element of a row (Q8ResizeArgs)
  std::vector<float> rfxe;
  // f32 resize, per vec_w elements of an output row: the start of the 2 * vec_w source
  // floats that hold all of them (-1: they are further apart), and each element's
  // two offsets inside that window (ResizeArgs::xwin)
  std::vector<int32_t> rxwin, rxp0, rxp1;
  std::vector<int32_t> bias32, bias32b;   // int8: zero-point corrections of the (first, second) GEMM
  std::vector<float> pmul, padd;          // int8 packed depthwise: the epilogue in the kernel's channel order
  const int8_t* packed = nullptr;         // int8 packed depthwise: the engine's packed copy of the weight
  int64_t ring_bytes = 0;                 // int8 packed depthwise: one thread's ring of padded rows
  // arena (plan/arena.cc)
  int64_t scratch_off = 0;      // the scratch's place in the arena
  int64_t gate_off = -1;        // a gate-only SE's gate in the arena
};

const char* kind_name(OpKind k);

// Weights repacked for a kernel, once per engine and tensor: every plan of
// the engine reads the one packed copy (the layouts are prefix-sliceable by
// channel, like the stored tensors). Thread-safe; entries live as long as
// the cache.
class PackCache {
 public:
  // The packed form of w (bytes of it: `bytes`), made by `pack` on first use.
  const int8_t* get(const int8_t* w, int64_t bytes, const std::function<void(int8_t*)>& pack);
  int64_t bytes() const;

 private:
  mutable std::mutex m_;
  std::map<const int8_t*, std::vector<int8_t>> packed_;
  int64_t bytes_ = 0;
};

class Plan {
 public:
  // An int8 plan (q8) keeps its values as uint8, except the float input
  // (value 0, read only by a quantize op) and the float logits (the output).
  Plan(std::vector<Shape3> shapes, int output, bool q8 = false);

  // Validate and append one op (in graph order). Throws std::invalid_argument
  // naming the op and the problem.
  void add(OpDesc op);
  // Fuse, prepare every op for `kernels` and lay out the arena for runs of
  // up to `max_threads` threads. No ops may be added after.
  void finalize(const KernelTable* kernels, int max_threads = 1, const Q8Table* q8 = nullptr,
                PackCache* packs = nullptr);

  const Shape3& input_shape() const { return shapes_[0]; }
  const Shape3& output_shape() const { return shapes_[output_]; }
  const Shape3& shape(int v) const { return shapes_[v]; }
  const std::vector<Shape3>& shapes() const { return shapes_; }
  int output() const { return output_; }
  int64_t arena_floats() const { return arena_floats_; }
  int num_steps() const { return static_cast<int>(steps_.size()); }
  const Step& step(size_t i) const { return steps_[i]; }
  bool finalized() const { return finalized_; }
  // The most threads a run of this plan may use: its scratch is sized for them.
  int max_threads() const { return max_threads_; }
  const KernelTable* kernels() const { return kernels_; }
  const Q8Table* q8_kernels() const { return q8k_; }
  bool q8() const { return q8_; }
  // Bytes of one element of value v: 1 for the uint8 values of an int8 plan.
  int value_bytes(int v) const { return q8_ && v != 0 && v != output_ ? 1 : 4; }
  // A batch runs steps [0, lockstep_from) image by image, the rest step by
  // step across a group of images (plan/batch.cc); num_steps(): never.
  size_t lockstep_from() const { return lockstep_from_; }
  // Floats between two images' arenas in a group (64-byte aligned).
  int64_t arena_stride() const { return (arena_floats_ + 15) / 16 * 16; }
  std::string describe() const;   // one line per step: kind, name, shapes, kernels, macs
  // (kind, name, macs, kernel) per step after fusion.
  std::vector<std::tuple<std::string, std::string, int64_t, std::string>> step_info() const;

  // Where value v lives during a run: x (the input), y (the output) or the arena.
  const float* in_ptr(int v, const float* x, const float* arena) const {
    return v == 0 ? x : (offset_[v] >= 0 ? arena + offset_[v] : nullptr);
  }
  float* out_ptr(int v, float* y, float* arena) const {
    return v == output_ ? y : (offset_[v] >= 0 ? arena + offset_[v] : nullptr);
  }

 private:
  std::vector<Shape3> shapes_;
  int output_;
  std::vector<int> producer_;     // value -> op index (-1: input / not produced)
  std::vector<Step> steps_;
  std::vector<int64_t> offset_;   // value -> arena offset (floats), -1 for external values
  int64_t arena_floats_ = 0;
  size_t lockstep_from_ = 0;
  int max_threads_ = 1;
  const KernelTable* kernels_ = nullptr;
  const Q8Table* q8k_ = nullptr;
  bool q8_ = false;
  bool finalized_ = false;
};

}  // namespace art
