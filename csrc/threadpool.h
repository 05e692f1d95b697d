// A small persistent thread pool for parallel-for over the ops of one run.
//
// One parallel region at a time: a caller that finds the pool busy (another
// thread's run) does its work alone, which gives the same results, since
// every kernel computes each output element the same way however the work is
// split. Tasks are claimed through one 64-bit ticket (generation << 32 |
// next index), so a worker that wakes late can never take a task of a later
// region.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace art {

class ThreadPool {
 public:
  using TaskFn = void (*)(void* ctx, int task);

  explicit ThreadPool(int max_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int max_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // While at least one run is active, idle workers keep spinning instead of
  // sleeping, so the many short parallel regions of one inference do not
  // each pay a wake-up. Engine::run brackets a multi-threaded run with these.
  void begin_run();
  void end_run();

  // fn(ctx, t) for every t in [0, n), on up to `threads` threads (the caller
  // included). Returns when all tasks are done.
  void run(int n, int threads, TaskFn fn, void* ctx);

  template <class F>
  void parallel_for(int n, int threads, F&& f) {
    if (n <= 0) return;
    if (threads <= 1 || n == 1) {
      for (int t = 0; t < n; ++t) f(t);
      return;
    }
#ifdef ART_OPENMP
    // comparison build (ADAPTIVE_RT_OPENMP=1): OpenMP instead of this pool
#pragma omp parallel for num_threads(threads < n ? threads : n) schedule(static, 1)
    for (int t = 0; t < n; ++t) f(t);
    return;
#endif
    using Fn = std::remove_reference_t<F>;
    run(n, threads, [](void* c, int t) { (*static_cast<Fn*>(c))(t); }, const_cast<void*>(static_cast<const void*>(&f)));
  }

 private:
  void worker(int index);
  void work(uint32_t gen);

  std::vector<std::thread> workers_;
  std::mutex busy_;                  // held by the caller of a parallel region
  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<uint32_t> gen_{0};
  std::atomic<uint64_t> ticket_{0};  // gen << 32 | next task
  std::atomic<int> done_{0};
  std::atomic<int> wanted_{0};       // workers asked to join this region
  std::atomic<int> active_runs_{0};
  std::atomic<uint32_t> wake_{0};    // bumped by begin_run to wake sleepers
  // Job of the current region; atomics (relaxed) because a late worker may
  // read them while the next region's caller writes them (it then fails its
  // ticket claim and never uses what it read).
  std::atomic<int> n_{0};
  std::atomic<TaskFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  bool stop_ = false;
};

}  // namespace art
