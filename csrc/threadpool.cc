#include "threadpool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield" ::: "memory"); }
#else
static inline void cpu_relax() {}
#endif

namespace art {

namespace {
// How long an idle worker spins before it sleeps: long enough to catch the
// next op of the same run, short enough not to steal a core from other
// processes between runs.
constexpr auto kSpin = std::chrono::microseconds(50);
}

ThreadPool::ThreadPool(int max_threads) {
  for (int i = 0; i + 1 < max_threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
    gen_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(uint32_t gen) {
  const uint64_t hi = static_cast<uint64_t>(gen) << 32;
  uint64_t cur = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur & ~0xFFFFFFFFull) != hi) return;           // a different region
    const int t = static_cast<int>(cur & 0xFFFFFFFFull);
    if (t >= n_.load(std::memory_order_relaxed)) return;
    if (!ticket_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
    fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), t);
    done_.fetch_add(1, std::memory_order_release);
    cur = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = gen_.load(std::memory_order_acquire);
    auto until = std::chrono::steady_clock::now() + kSpin;
    for (int s = 0; g == seen; ++s) {
      cpu_relax();
      g = gen_.load(std::memory_order_acquire);
      if ((s & 63) == 63) {
        // let a thread waiting on this CPU (the caller, placed here by the
        // scheduler) run: spinning over it would stall the run a whole tick
        std::this_thread::yield();
        const auto now = std::chrono::steady_clock::now();
        if (active_runs_.load(std::memory_order_relaxed) > 0) until = now + kSpin;
        else if (now > until) break;
      }
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(m_);
      const uint32_t w = wake_.load(std::memory_order_acquire);
      cv_.wait(lk, [&] {
        return gen_.load(std::memory_order_acquire) != seen || stop_ || wake_.load(std::memory_order_acquire) != w;
      });
      g = gen_.load(std::memory_order_acquire);
      if (g == seen && !stop_) continue;   // woken for a run: spin until its first region
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      if (stop_) return;
    }
    seen = g;
    if (index < wanted_.load(std::memory_order_acquire)) work(g);
  }
}

void ThreadPool::begin_run() {
#ifdef ART_OPENMP
  return;   // the OpenMP comparison build leaves this pool's workers asleep
#endif
  if (workers_.empty()) return;
  if (active_runs_.fetch_add(1, std::memory_order_relaxed) == 0) {
    // wake sleeping workers now, so they are spinning by the first region
    { std::lock_guard<std::mutex> lk(m_); wake_.fetch_add(1, std::memory_order_release); }
    cv_.notify_all();
  }
}

void ThreadPool::end_run() {
#ifdef ART_OPENMP
  return;
#endif
  if (!workers_.empty()) active_runs_.fetch_sub(1, std::memory_order_relaxed);
}

void ThreadPool::run(int n, int threads, TaskFn fn, void* ctx) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock() || workers_.empty() || threads <= 1) {
    for (int t = 0; t < n; ++t) fn(ctx, t);
    return;
  }
  uint32_t gen;
  {
    std::lock_guard<std::mutex> lk(m_);
    n_.store(n, std::memory_order_relaxed);
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    wanted_.store(threads - 1, std::memory_order_relaxed);
    gen = gen_.load(std::memory_order_relaxed) + 1;
    ticket_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_relaxed);
    gen_.store(gen, std::memory_order_release);
  }
  cv_.notify_all();
  work(gen);
  // Wait for tasks workers claimed; yield now and then, in case the worker
  // was placed on this CPU and cannot finish while we spin.
  for (int s = 1; done_.load(std::memory_order_acquire) < n; ++s) {
    cpu_relax();
    if ((s & 63) == 0) std::this_thread::yield();
  }
}

}  // namespace art
