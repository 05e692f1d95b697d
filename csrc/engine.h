// Engine: one copy of the supernet's weights, one immutable Plan per subnet
// (plan/plan.h), runs that allocate nothing once warm.
//
// Layout: kernels/ holds the micro-kernels (one table per ISA), ops/ one
// operator per file (validate, prepare, run), plan/ the Plan and its passes
// (fusion, prepare, arena). The engine runs a finalized plan's steps on its
// thread pool with an arena of its own. Engine::run is reentrant: each call
// takes its own arena. Switching subnet is choosing another Plan.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/kernels.h"
#include "plan/plan.h"
#include "threadpool.h"

namespace art {

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
  // whether each arena is an anonymous mapping of its own (not under AddressSanitizer, which
  // needs heap blocks to see a step write past its arena)
  static bool mapped();

 private:
  mutable std::mutex m_;
  std::vector<Arena> free_;
  int64_t held_ = 0;
};

class Engine {
 public:
  // q8: the int8 table (default: the best for this CPU that goes with `kernels`)
  explicit Engine(int max_threads, const KernelTable* kernels = nullptr, const Q8Table* q8 = nullptr);
  const KernelTable* kernels() const { return kernels_; }
  const Q8Table* q8_kernels() const { return q8_; }
  int max_threads() const { return pool_.max_threads(); }
  void finalize(Plan& plan) { plan.finalize(kernels_, max_threads(), plan.q8() ? q8_ : nullptr, &packs_); }
  // Bytes of weights repacked for kernels (one copy per tensor, shared by every plan).
  int64_t packed_bytes() const { return packs_.bytes(); }
  // Whether `plan` was finalized for this engine's kernel tables and threads.
  bool owns(const Plan& plan) const;
  int64_t arena_bytes() const { return arenas_.bytes_held(); }

  // y[n] = plan(x[n]) for n < batch. x: batch x input_shape floats, y: batch x
  // output channels. Allocates nothing once an arena of the plan's size exists
  // (a batch: once arenas for its groups exist). A batch runs in groups of up
  // to kGroup images, each group image by image up to the plan's
  // lockstep_from() step and then step by step (plan/batch.cc).
  void run(const Plan& plan, const float* x, int64_t batch, float* y, int threads);
  static constexpr int kGroup = 8;

  // Median seconds per step of `repeats` runs of one image (a per-op profile).
  std::vector<double> profile(const Plan& plan, const float* x, float* y, int threads, int repeats);

 private:
  // Runs steps [s0, s1) of one image.
  void run_image(const Plan& plan, const float* x, float* y, float* arena, int threads,
                 size_t s0 = 0, size_t s1 = SIZE_MAX);
  // Runs a group of n images (arenas plan.arena_stride() floats apart).
  void run_group(const Plan& plan, const float* x, float* y, float* arenas, int64_t n, int threads);
  const KernelTable* kernels_;
  const Q8Table* q8_;
  ThreadPool pool_;
  ArenaPool arenas_;
  PackCache packs_;
};

}  // namespace art
