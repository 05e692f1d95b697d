// Engine and Plan: one copy of the supernet's weights, one immutable plan per
// subnet, runs that allocate nothing once warm.
//
// A Plan is built once from the graph IR (adaptive_rt/graph.py): each op is
// validated against its shapes and its weight buffers (bounds checks that
// stay on in release builds), its kernel and work split are chosen, BN is
// already folded into per-channel scale/shift, and every activation gets a
// fixed offset in a scratch arena (liveness-based reuse). Weights are read in
// place: a narrower subnet reads a prefix block of the wide tensor with the
// stored width as leading dimension. Switching subnet is choosing another
// Plan. Engine::run is reentrant: each call takes its own arena.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace art {

struct Shape3 {
  int h = 0, w = 0, c = 0;
  int64_t size() const { return static_cast<int64_t>(h) * w * c; }
  bool operator==(const Shape3& o) const { return h == o.h && w == o.w && c == o.c; }
};

// A stored tensor as the pool file holds it (C-contiguous float32).
struct Buffer {
  const float* data = nullptr;
  std::vector<int64_t> shape;
  int64_t dim(size_t i) const { return i < shape.size() ? shape[i] : 0; }
};

enum class OpKind : int { Resize = 0, Conv, PwConv, DwConv, SE, Add, GAP, Linear };

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
};

class Plan {
 public:
  Plan(std::vector<Shape3> shapes, int output);

  // Validate and append one op (in graph order). Throws std::invalid_argument
  // naming the op and the problem.
  void add(OpDesc op);
  // Fuse, choose kernels and lay out the arena for runs of up to
  // `max_threads` threads. No ops may be added after.
  void finalize(const KernelTable* kernels, int max_threads = 1);

  const Shape3& input_shape() const { return shapes_[0]; }
  const Shape3& output_shape() const { return shapes_[output_]; }
  int64_t arena_floats() const { return arena_floats_; }
  int num_steps() const { return static_cast<int>(steps_.size()); }
  bool finalized() const { return finalized_; }
  // The most threads a run of this plan may use: its scratch is sized for them.
  int max_threads() const { return max_threads_; }
  const KernelTable* kernels() const { return kernels_; }
  std::string describe() const;   // one line per step: kind, name, shapes, offsets
  // (kind, name, macs) per step after fusion.
  std::vector<std::tuple<std::string, std::string, int64_t>> step_info() const;

 private:
  friend class Engine;
  struct Step {
    OpDesc op;
    int out = -1;                 // value written (after fusion)
    int res = -1;                 // residual value added in the epilogue, or -1
    int64_t macs = 0;
    int64_t scratch_off = 0;      // per-op scratch in the arena (conv im2col, SE vectors)
    bool gate_only = false;       // SE whose gate is applied by the next pwconv (fused)
    int64_t gate_off = -1;        // that gate's place in the arena
    int gate_step = -1;           // pwconv: the SE step whose gate scales its input channels
    bool fused_expand = false;    // dwconv: computes its expand conv row by row into a ring
    OpDesc expand;                //   that expand conv (its input is op.in0)
    int expand_c = 0;             //   its output channels (= the depthwise channels)
    int64_t ring_floats = 0;      //   one thread's ring of k expanded rows
    std::vector<int> ry0, ry1, rx0, rx1;   // resize tables
    std::vector<float> rfy, rfx;
  };
  const float* in_ptr(int v, const float* x, const float* arena) const;
  float* out_ptr(int v, float* y, float* arena) const;

  std::vector<Shape3> shapes_;
  int output_;
  std::vector<int> producer_;     // value -> op index (-1: input / not produced)
  std::vector<Step> steps_;
  std::vector<int64_t> offset_;   // value -> arena offset (floats), -1 for external values
  int64_t arena_floats_ = 0;
  int max_threads_ = 1;
  const KernelTable* kernels_ = nullptr;
  bool finalized_ = false;
};

// Scratch arenas shared by all plans of an engine: a run borrows one (growing
// it the first time a larger plan needs more) and gives it back.
class ArenaPool {
 public:
  struct Arena {
    float* p = nullptr;
    int64_t n = 0;
  };
  ~ArenaPool();
  Arena acquire(int64_t floats);
  void release(Arena a);
  int64_t bytes_held() const;

 private:
  mutable std::mutex m_;
  std::vector<Arena> free_;
  int64_t held_ = 0;
};

class Engine {
 public:
  explicit Engine(int max_threads, const KernelTable* kernels = nullptr);
  const KernelTable* kernels() const { return kernels_; }
  int max_threads() const { return pool_.max_threads(); }
  void finalize(Plan& plan) const { plan.finalize(kernels_, max_threads()); }
  int64_t arena_bytes() const { return arenas_.bytes_held(); }

  // y[n] = plan(x[n]) for n < batch. x: batch x input_shape floats, y: batch x
  // output channels. Allocates nothing once an arena of the plan's size exists.
  void run(const Plan& plan, const float* x, int64_t batch, float* y, int threads);

  // Median seconds per step of `repeats` runs of one image (a per-op profile).
  std::vector<double> profile(const Plan& plan, const float* x, float* y, int threads, int repeats);

 private:
  // Runs steps [s0, s1) of one image.
  void run_image(const Plan& plan, const float* x, float* y, float* arena, int threads,
                 size_t s0 = 0, size_t s1 = SIZE_MAX);
  const KernelTable* kernels_;
  ThreadPool pool_;
  ArenaPool arenas_;
};

}  // namespace art
