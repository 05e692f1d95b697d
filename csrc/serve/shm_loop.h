// The shared-memory request loop of the daemon (adaptive_rt/daemon/shm.py):
// read 16-byte request records from a connected Unix socket, run the active
// plan on the input the client wrote into the shared mapping, write the
// logits there and answer with a 32-byte record — no Python, no GIL, per
// request. Anything the loop does not handle itself (a changed plan or
// daemon state, a bad record, a request over the mapping's capacity,
// non-finite values) returns to the caller, which answers that request.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "../engine.h"

namespace art {

// A counting semaphore: at most `n` inferences at once over every transport,
// with a bounded number of callers waiting for a slot.
class Gate {
 public:
  explicit Gate(int n) : slots_(n), free_(n) {}
  void acquire();
  // Waits for a slot unless `max_waiting` callers already wait: then false (busy).
  bool acquire_bounded(int max_waiting);
  bool try_acquire();
  void release();
  int waiting() const;
  int held() const;  // slots taken now: the calls running under the gate

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  const int slots_;
  int free_;
  int waiting_ = 0;
};

struct ShmLoopArgs {
  int fd = -1;                       // connected stream socket (blocking or not: the loop polls)
  Engine* engine = nullptr;
  const Plan* plan = nullptr;
  int threads = 1;
  float* input = nullptr;            // the mapping's input slot
  float* output = nullptr;           // its output slot
  int64_t capacity_images = 0;       // images the slots hold
  std::string entry;                 // the plan's entry id (answered with every record)
  const int64_t* generation = nullptr;  // bumped by the caller's side whenever the loop must come back
  int64_t generation_seen = 0;
  double report_s = 0.01;            // come back with the records at least this often while serving
  int max_records = 256;
  double idle_s = 60.0;              // no request for this long: come back with kIdle
  bool check_finite = true;
  Gate* gate = nullptr;
  int max_queue = 64;                // requests waiting for the gate beyond which one is answered busy
};

enum ShmStatus : int {
  kReport = 0,     // records to account for; call again
  kClosed = 1,     // the peer closed (or the socket was shut down): end the connection
  kIdle = 2,       // no request for idle_s: end the connection
  kPending = 3,    // a request was read and not run: the caller answers it (n, seq, magic)
  kNonFinite = 4,  // the last request ran and produced non-finite logits: the caller answers it
  kChanged = 5,    // the generation changed while waiting: call again with the new state
  kBusy = 6,       // the last request was read and not run: the gate's queue is full
};

struct ShmLoopResult {
  int status = kReport;
  uint32_t n = 0;
  uint64_t seq = 0;
  uint32_t magic = 0;
  std::vector<float> ms;             // per request served, in order
  std::vector<int32_t> images;
  int error = 0;                     // errno of a failed socket call (kClosed)
};

inline constexpr uint32_t kShmMagic = 0x31535241;   // "ARS1" little-endian

ShmLoopResult shm_loop(const ShmLoopArgs& a);

}  // namespace art

