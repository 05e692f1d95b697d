#include <algorithm>
#include <cmath>

#include "q8_op.h"

namespace art {

void check_qparam(const OpDesc& op, const char* what, const QParam& q) {
  if (!(q.scale > 0.f) || !std::isfinite(q.scale) || !std::isfinite(1.0 / double(q.scale)) ||
      !std::isfinite(static_cast<float>(1.0 / double(q.scale))))
    fail(op, std::string(what) + " scale must be positive and finite (and so its inverse)");
  if (q.zp < 0 || q.zp > 255) fail(op, std::string(what) + " zero point must be in [0, 255]");
}

void check_multiplier(const OpDesc& op, const char* what, float m) {
  if (!std::isfinite(m)) fail(op, std::string(what) + " must be finite");
}

void check_vec_finite(const OpDesc& op, const char* what, const std::vector<float>& v, int n) {
  if (static_cast<int>(v.size()) != n)
    fail(op, std::string(what) + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n));
  for (float x : v)
    if (!std::isfinite(x)) fail(op, std::string(what) + " holds a value that is not finite");
}

Buffer as_buffer(const Buffer8& b) {
  Buffer f;
  f.data = reinterpret_cast<const float*>(b.data);
  f.shape = b.shape;
  return f;
}

void check_buffer8(const OpDesc& op, const char* what, const Buffer8& b, std::vector<int64_t> need) {
  check_buffer(op, what, as_buffer(b), std::move(need));
}

void check_k4(const OpDesc& op, const char* what, const Buffer8& b, int64_t K, int64_t N) {
  if (K > kQ8MaxK) fail(op, std::string(what) + ": " + std::to_string(K) + " input channels is over the int8 limit of " +
                                std::to_string(kQ8MaxK));
  check_buffer8(op, what, b, {(K + 3) / 4, N, 4});
  if (b.shape[2] != 4) fail(op, std::string(what) + " is not in the k4 layout [ceil(K/4), N, 4]");
}

Q8Epilogue q8_epilogue(const OpDesc& op, const std::vector<float>& mul, const std::vector<float>& add, Act act,
                       const QParam& out, const std::vector<int32_t>* bias) {
  Q8Epilogue e;
  e.bias = bias && !bias->empty() ? bias->data() : nullptr;
  e.mul = mul.data();
  e.add = add.data();
  e.act = act;
  e.out_scale = op.out_scale;
  e.lo = static_cast<float>(-out.zp);
  e.hi = static_cast<float>(255 - out.zp);
  if (act == Act::Relu || act == Act::Relu6) e.lo = std::max(e.lo, 0.f);
  if (act == Act::Relu6) e.hi = std::min(e.hi, op.six);
  e.zo = out.zp;
  return e;
}

void check_act_params(const OpDesc& op, Act act, bool float_out) {
  if (act == Act::Sigmoid) fail(op, "sigmoid is only an SE gate");
  if (float_out) return;
  if ((act == Act::HSwish || act == Act::HSigmoid) && !(op.out_scale > 0.f && std::isfinite(op.out_scale)))
    fail(op, "the output scale of a hard-swish/sigmoid epilogue must be positive and finite");
  if (act == Act::Relu6 && !(op.six > 0.f && std::isfinite(op.six)))
    fail(op, "the ReLU6 bound in output steps must be positive and finite");
}

std::vector<int32_t> q8_zero_point_bias(const Buffer8& w, int K, int N, int zp) {
  std::vector<int32_t> b(N, 0);
  const int64_t gs = w.shape[1] * 4;
  for (int k = 0; k < K; ++k) {
    const int8_t* row = w.data + (k >> 2) * gs + (k & 3);
    for (int n = 0; n < N; ++n) b[n] += row[int64_t(n) * 4];
  }
  for (int n = 0; n < N; ++n) b[n] *= -zp;
  return b;
}

uint8_t q8_requant(float u, const QParam& q) {
  const float lo = static_cast<float>(-q.zp), hi = static_cast<float>(255 - q.zp);
  u = u > lo ? u : lo;
  u = u < hi ? u : hi;
  return static_cast<uint8_t>(static_cast<int>(std::nearbyint(u)) + q.zp);
}

std::string q8_kernel_name(const Q8Table& t, const std::string& op, const std::string& tile) {
  return "i8-" + op + (tile.empty() ? "" : "-" + tile) + "-" + t.name;
}

std::string q8_gemm_name(const Q8Table& t) {
  return q8_kernel_name(t, "gemm", std::to_string(t.gemm_mr) + "x" + std::to_string(t.gemm_nr));
}

void q8_gemm(const RunCtx& c, const Q8GemmArgs& a, int64_t macs) {
  const Q8Table& t = c.q8();
  const int threads = c.threads;
  if (threads <= 1 || macs < kParallelMacs) {
    t.gemm(a, 0, a.M, 0, a.N);
    return;
  }
  if (a.M >= 2 * t.gemm_mr * threads) {
    const int chunk = static_cast<int>(round_up((a.M + threads - 1) / threads, t.gemm_mr));
    const int tasks = (a.M + chunk - 1) / chunk;
    c.pool.parallel_for(tasks, threads, [&](int i) { t.gemm(a, i * chunk, std::min(a.M, (i + 1) * chunk), 0, a.N); });
  } else {
    const int chunk = static_cast<int>(round_up((a.N + threads - 1) / threads, t.gemm_nr));
    const int tasks = (a.N + chunk - 1) / chunk;
    c.pool.parallel_for(tasks, threads, [&](int i) { t.gemm(a, 0, a.M, i * chunk, std::min(a.N, (i + 1) * chunk)); });
  }
}

}  // namespace art
