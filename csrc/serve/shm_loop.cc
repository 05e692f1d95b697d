#include "shm_loop.h"

#include <fcntl.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace art {

void Gate::acquire() {
  std::unique_lock<std::mutex> lk(m_);
  ++waiting_;
  cv_.wait(lk, [this] { return free_ > 0; });
  --waiting_;
  --free_;
}

bool Gate::acquire_bounded(int max_waiting) {
  std::unique_lock<std::mutex> lk(m_);
  if (free_ <= 0 && waiting_ >= max_waiting) return false;
  ++waiting_;
  cv_.wait(lk, [this] { return free_ > 0; });
  --waiting_;
  --free_;
  return true;
}

int Gate::waiting() const {
  std::lock_guard<std::mutex> lk(m_);
  return waiting_;
}

int Gate::held() const {
  std::lock_guard<std::mutex> lk(m_);
  return slots_ - free_;
}

bool Gate::try_acquire() {
  std::lock_guard<std::mutex> lk(m_);
  if (free_ <= 0) return false;
  --free_;
  return true;
}

void Gate::release() {
  {
    std::lock_guard<std::mutex> lk(m_);
    if (free_ >= slots_) throw std::logic_error("release of a gate slot that is not held");
    ++free_;
  }
  cv_.notify_one();
}

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool all_finite(const float* p, int64_t n) {
  // a NaN or infinity has all exponent bits set: one integer test per value, vectorisable
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, p + i, 4);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// Read exactly `len` bytes. The socket is blocking with a receive timeout of
// one slice (kSliceMs), so a request costs one recv; between slices the
// caller's generation and the time are looked at (records of a client that
// pauses are reported up to a slice late). Returns 1 (read), 0 (peer
// closed), -1 (error, errno in *err), -2 (wait_s passed before the first
// byte), -3 (the generation changed before the first byte).
constexpr int kSliceMs = 50;

int read_record(const ShmLoopArgs& a, uint8_t* buf, size_t len, int* err, double wait_s) {
  size_t got = 0;
  const auto t0 = Clock::now();
  while (got < len) {
    ssize_t k = recv(a.fd, buf + got, len - got, 0);
    if (k > 0) {
      got += static_cast<size_t>(k);
      continue;
    }
    if (k == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *err = errno;
      return -1;
    }
    if (got == 0) {
      if (__atomic_load_n(a.generation, __ATOMIC_ACQUIRE) != a.generation_seen) return -3;
      if (since(t0) >= wait_s) return -2;
    } else if (since(t0) >= a.idle_s) {   // a record started and stalled
      *err = ETIMEDOUT;
      return -1;
    }
  }
  return 1;
}

// Puts the socket in blocking mode with a receive timeout for the loop's
// reads (and a send timeout), and gives the caller's settings back after.
class SocketMode {
 public:
  explicit SocketMode(int fd) : fd_(fd) {
    flags_ = fcntl(fd, F_GETFL);
    socklen_t n = sizeof rcv_;
    ok_ = flags_ >= 0 && getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv_, &n) == 0;
    n = sizeof snd_;
    ok_ = ok_ && getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd_, &n) == 0;
    if (!ok_) return;
    fcntl(fd, F_SETFL, flags_ & ~O_NONBLOCK);
    timeval r{0, kSliceMs * 1000}, s{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s);
  }
  ~SocketMode() {
    if (!ok_) return;
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &rcv_, sizeof rcv_);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &snd_, sizeof snd_);
    fcntl(fd_, F_SETFL, flags_);
  }

 private:
  int fd_, flags_ = -1;
  bool ok_ = false;
  timeval rcv_{}, snd_{};
};

bool send_all(int fd, const uint8_t* p, size_t len, int* err) {
  while (len > 0) {
    ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      len -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    *err = k < 0 ? errno : EPIPE;
    return false;
  }
  return true;
}

}  // namespace

ShmLoopResult shm_loop(const ShmLoopArgs& a) {
  ShmLoopResult r;
  const Shape3& is = a.plan->input_shape();
  const int64_t image_floats = static_cast<int64_t>(is.h) * is.w * is.c;
  const int classes = a.plan->output_shape().c;
  const size_t elen = std::min<size_t>(a.entry.size(), 255);
  // response: magic u32, code u32, seq u64, rows u32, cols u32, ms f32, elen u16, mlen u16, entry bytes
  std::vector<uint8_t> resp(32 + elen);
  std::memcpy(resp.data() + 32, a.entry.data(), elen);
  const auto start = Clock::now();
  SocketMode mode(a.fd);
  uint8_t req[16];
  for (;;) {
    const bool have = !r.ms.empty();
    if (have && (static_cast<int>(r.ms.size()) >= a.max_records || since(start) >= a.report_s)) return r;
    const double wait_s = have ? std::max(0.0, a.report_s - since(start)) : a.idle_s;
    const int got = read_record(a, req, sizeof req, &r.error, wait_s);
    if (got == 0 || got == -1) {
      r.status = kClosed;
      return r;
    }
    if (got == -2) {
      r.status = have ? kReport : kIdle;
      return r;
    }
    if (got == -3) {
      r.status = have ? kReport : kChanged;
      return r;
    }
    std::memcpy(&r.magic, req, 4);
    std::memcpy(&r.n, req + 4, 4);
    std::memcpy(&r.seq, req + 8, 8);
    const int64_t count = std::max<uint32_t>(r.n, 1);
    if (r.magic != kShmMagic || count > a.capacity_images ||
        __atomic_load_n(a.generation, __ATOMIC_ACQUIRE) != a.generation_seen ||
        (a.check_finite && !all_finite(a.input, count * image_floats))) {
      r.status = kPending;
      return r;
    }
    if (!a.gate->acquire_bounded(a.max_queue)) {
      r.status = kBusy;
      return r;
    }
    const auto t0 = Clock::now();
    try {
      a.engine->run(*a.plan, a.input, count, a.output, a.threads);
    } catch (...) {
      a.gate->release();
      throw;
    }
    const float ms = static_cast<float>(since(t0) * 1e3);
    a.gate->release();
    r.ms.push_back(ms);
    r.images.push_back(static_cast<int32_t>(count));
    if (!all_finite(a.output, count * classes)) {
      r.status = kNonFinite;
      return r;
    }
    const uint32_t code = 0, rows = r.n, cols = static_cast<uint32_t>(classes);
    const uint16_t el = static_cast<uint16_t>(elen), ml = 0;
    std::memcpy(resp.data(), &kShmMagic, 4);
    std::memcpy(resp.data() + 4, &code, 4);
    std::memcpy(resp.data() + 8, &r.seq, 8);
    std::memcpy(resp.data() + 16, &rows, 4);
    std::memcpy(resp.data() + 20, &cols, 4);
    std::memcpy(resp.data() + 24, &ms, 4);
    std::memcpy(resp.data() + 28, &el, 2);
    std::memcpy(resp.data() + 30, &ml, 2);
    if (!send_all(a.fd, resp.data(), resp.size(), &r.error)) {
      r.status = kClosed;
      return r;
    }
  }
}

}  // namespace art

