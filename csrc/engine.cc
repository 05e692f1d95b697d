#include "engine.h"

#include "cpu.h"
#include "ops/op.h"
#include "plan/passes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

namespace art {

// ----------------------------------------------------------------------------- arenas
// An arena is its own anonymous mapping: a larger plan's first run frees the
// smaller arena back to the system and maps a new one, where heap blocks would
// leave the smaller one behind as a resident hole (the tiny pool's 0.2 MB of
// arenas held 0.4 MB of heap), and a freed heap block this large would raise
// the allocator's mmap threshold so that the application's arrays of that size
// stay in the heap after they are freed. Under AddressSanitizer arenas come
// from the heap, so that a step writing past its arena is reported.
#if defined(__SANITIZE_ADDRESS__)
#define ART_ARENA_MMAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ART_ARENA_MMAP 0
#endif
#endif
#if !defined(ART_ARENA_MMAP) && (defined(__unix__) || defined(__APPLE__))
#define ART_ARENA_MMAP 1
#endif
#if !defined(ART_ARENA_MMAP)
#define ART_ARENA_MMAP 0
#endif

namespace {

size_t arena_bytes(int64_t floats) { return static_cast<size_t>(round_up(floats * 4, 64)); }

float* arena_alloc(int64_t floats) {
#if ART_ARENA_MMAP
  void* p = mmap(nullptr, arena_bytes(floats), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<float*>(p);   // page-aligned
#else
  return static_cast<float*>(std::aligned_alloc(64, arena_bytes(floats)));
#endif
}

void arena_free(float* p, int64_t floats) {
#if ART_ARENA_MMAP
  munmap(p, arena_bytes(floats));
#else
  (void)floats;
  std::free(p);
#endif
}

}  // namespace

ArenaPool::~ArenaPool() {
  for (Arena& a : free_) arena_free(a.p, a.n);
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
      arena_free(a.p, a.n);
      held_ -= a.n * 4;
    }
    held_ += floats * 4;
  }
  float* p = arena_alloc(floats);
  if (p == nullptr) {
    std::lock_guard<std::mutex> lk(m_);
    held_ -= floats * 4;
    throw std::bad_alloc();
  }
  return {p, floats};
}

void ArenaPool::release(Arena a) {
  std::lock_guard<std::mutex> lk(m_);
  free_.push_back(a);
}

bool ArenaPool::mapped() { return ART_ARENA_MMAP != 0; }

int64_t ArenaPool::bytes_held() const {
  std::lock_guard<std::mutex> lk(m_);
  return held_;
}

// ----------------------------------------------------------------------------- Engine
Engine::Engine(int max_threads, const KernelTable* kernels, const Q8Table* q8)
    : kernels_(kernels), q8_(q8 ? q8 : q8_kernels_for(kernels)), pool_(std::max(1, max_threads)) {
  if (kernels_ == nullptr) throw std::invalid_argument("no kernel table");
}

bool Engine::owns(const Plan& plan) const {
  return plan.finalized() && plan.kernels() == kernels_ && (!plan.q8() || plan.q8_kernels() == q8_) &&
         plan.max_threads() == max_threads();
}

void Engine::run(const Plan& plan, const float* x, int64_t batch, float* y, int threads) {
  if (!plan.finalized()) throw std::logic_error("plan is not finalized");
  if (plan.kernels() != kernels_ || (plan.q8() && plan.q8_kernels() != q8_))
    throw std::invalid_argument("plan was built for another kernel table");
  if (batch < 0) throw std::invalid_argument("negative batch");
  if (batch == 0) return;
  if (x == nullptr || y == nullptr) throw std::invalid_argument("null input or output");
  // never more threads than the plan's scratch was sized for (a plan finalized by
  // another engine may have been sized for fewer)
  threads = std::max(1, std::min({threads, max_threads(), plan.max_threads()}));
  const int64_t in_size = plan.input_shape().size();
  const int64_t out_size = plan.output_shape().size();
  // A batch of at least `threads` images is split by image first: a thread
  // runs whole groups of images on arenas of its own (no synchronisation per
  // op, which small nets cannot amortise), claiming groups as it goes so a
  // worker that starts late still takes its share; the remaining
  // batch % threads images run as one group with each op split across the
  // threads. Without a lockstep part (plan.lockstep_from() == every step) a
  // group is one image: nothing is gained by holding more arenas.
  const int64_t stride = plan.arena_stride();
  const int64_t group = plan.lockstep_from() < static_cast<size_t>(plan.num_steps()) ? kGroup : 1;
  const int64_t by_image = threads > 1 && batch >= threads ? batch / threads * threads : 0;
  if (threads > 1) pool_.begin_run();
  struct EndRun {   // the pool's run ends however this one does
    ThreadPool& pool;
    bool on;
    ~EndRun() { if (on) pool.end_run(); }
  } end_run{pool_, threads > 1};
  struct Arenas {   // released however the run ends
    ArenaPool& pool;
    std::vector<ArenaPool::Arena> a;
    ~Arenas() { for (auto& x : a) pool.release(x); }
  };
  if (by_image) {
    // groups of up to `group` images (a thread's share, for the most reuse
    // of each lockstep step's weights), of one image below a quarter share
    // per thread otherwise (so the threads balance)
    const int64_t chunk = group > 1 ? std::min(group, by_image / threads)
                                    : std::max<int64_t>(1, by_image / (4 * threads));
    const int tasks = static_cast<int>((by_image + chunk - 1) / chunk);
    // arenas are taken before the parallel region (allocation may throw),
    // one per thread that joins; each thread picks its slot once per run
    Arenas arenas{arenas_, {}};
    for (int i = 0; i < threads; ++i) arenas.a.push_back(arenas_.acquire(chunk * stride));
    static std::atomic<uint64_t> run_ids{0};
    const uint64_t rid = run_ids.fetch_add(1, std::memory_order_relaxed) + 1;
    std::atomic<int> slots{0};
    pool_.parallel_for(tasks, threads, [&](int t) {
      thread_local uint64_t my_run = 0;
      thread_local int my_slot = 0;
      if (my_run != rid) { my_run = rid; my_slot = slots.fetch_add(1, std::memory_order_relaxed); }
      if (my_slot >= threads) std::abort();   // the pool never runs more threads than asked
      const int64_t n0 = t * chunk, n = std::min(by_image, n0 + chunk) - n0;
      run_group(plan, x + n0 * in_size, y + n0 * out_size, arenas.a[my_slot].p, n, 1);
    });
  }
  if (by_image < batch) {
    const int64_t rest = batch - by_image, g = std::min(group, rest);
    Arenas arenas{arenas_, {}};
    arenas.a.push_back(arenas_.acquire(g * stride));
    for (int64_t n0 = by_image; n0 < batch; n0 += g)
      run_group(plan, x + n0 * in_size, y + n0 * out_size, arenas.a[0].p, std::min(g, batch - n0), threads);
  }
}

void Engine::run_group(const Plan& plan, const float* x, float* y, float* arenas, int64_t n, int threads) {
  if (n == 1) return run_image(plan, x, y, arenas, threads);
  const int64_t in_size = plan.input_shape().size(), out_size = plan.output_shape().size();
  const int64_t stride = plan.arena_stride();
  const size_t s0 = plan.lockstep_from(), steps = static_cast<size_t>(plan.num_steps());
  for (int64_t i = 0; i < n; ++i) run_image(plan, x + i * in_size, y + i * out_size, arenas + i * stride, threads, 0, s0);
  for (size_t k = s0; k < steps; ++k) {
    const Step& s = plan.step(k);
    if (s.run_batch != nullptr) {
      RunCtx ctx{plan, *kernels_, pool_, threads, x, y, arenas};
      ctx.images = static_cast<int>(n);
      ctx.stride = stride;
      s.run_batch(s, ctx);
    } else {
      for (int64_t i = 0; i < n; ++i)
        run_image(plan, x + i * in_size, y + i * out_size, arenas + i * stride, threads, k, k + 1);
    }
  }
}

std::vector<double> Engine::profile(const Plan& plan, const float* x, float* y, int threads, int repeats) {
  if (!plan.finalized()) throw std::logic_error("plan is not finalized");
  if (plan.kernels() != kernels_ || (plan.q8() && plan.q8_kernels() != q8_))
    throw std::invalid_argument("plan was built for another kernel table");
  threads = std::max(1, std::min(threads, max_threads()));
  repeats = std::max(1, repeats);
  const size_t n = static_cast<size_t>(plan.num_steps());
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
  const RunCtx ctx{plan, *kernels_, pool_, threads, x, y, arena};
  s1 = std::min(s1, static_cast<size_t>(plan.num_steps()));
  for (size_t i = s0; i < s1; ++i) {
    const Step& s = plan.step(i);
    s.run(s, ctx);
  }
}

}  // namespace art
