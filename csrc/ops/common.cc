#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "op.h"

namespace art {

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
    case OpKind::Quantize: return "quantize";
  }
  return "?";
}

void fail(const OpDesc& op, const std::string& msg) {
  throw std::invalid_argument("op '" + op.name + "' (" + kind_name(op.kind) + "): " + msg);
}

namespace {
std::string dims(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}
}  // namespace

void check_buffer(const OpDesc& op, const char* what, const Buffer& b, std::vector<int64_t> need) {
  if (b.data == nullptr) fail(op, std::string(what) + " is missing");
  if (b.panels && (need.size() != 2 || (op.kind != OpKind::PwConv && op.kind != OpKind::Linear && op.kind != OpKind::SE)))
    fail(op, std::string(what) + " is in panels, which only 1x1 conv, linear and SE weights may be");
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

void check_conv_shape(const OpDesc& op, const Shape3& si, const Shape3& so) {
  if (op.k < 1 || op.k % 2 == 0 || op.k > 31) fail(op, "kernel " + std::to_string(op.k) + " must be odd, 1..31");
  if (op.stride < 1 || op.stride > 4) fail(op, "stride must be 1..4");
  if (so.h != conv_out(si.h, op.k, op.stride) || so.w != conv_out(si.w, op.k, op.stride))
    fail(op, "output size does not follow from input size, kernel and stride");
}

void check_same_hw(const OpDesc& op, const Shape3& si, const Shape3& so) {
  if (si.h != so.h || si.w != so.w) fail(op, "input and output sizes differ");
}

void check_depthwise(const OpDesc& op, const Shape3& si, const Shape3& so, const char* what, const Buffer& w) {
  check_conv_shape(op, si, so);
  if (so.c != si.c) fail(op, "depthwise conv changes channels");
  check_buffer(op, what, w, {op.k, op.k, si.c});
  if (w.shape[0] != op.k || w.shape[1] != op.k)
    fail(op, std::string(what) + " is not " + std::to_string(op.k) + "x" + std::to_string(op.k));
}

void check_se(const OpDesc& op, const Shape3& si, const Shape3& so) {
  if (!(so == si)) fail(op, "squeeze-excite changes shape");
  if (op.se_r < 1) fail(op, "bottleneck width must be positive");
  if (op.se_gate != Act::HSigmoid && op.se_gate != Act::Sigmoid) fail(op, "gate must be hsigmoid or sigmoid");
}

std::string kernel_name(const KernelTable& kt, const std::string& op, const std::string& tile) {
  return "f32-" + op + (tile.empty() ? "" : "-" + tile) + "-" + kt.name;
}

int64_t gemm_pack_floats(int K, int N) { return round_up(int64_t(K) * N, kAlignFloats); }

std::string gemm_kernel_name(const KernelTable& kt, int64_t m) {
  if (m == 1) return kernel_name(kt, "gemv", "1x" + std::to_string(kt.gemv_nr));
  return kernel_name(kt, "gemm", std::to_string(kt.gemm_mr) + "x" + std::to_string(kt.gemm_nr));
}

int64_t default_macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size(); }

void no_prepare(Step& s, const PrepareCtx& c) {}

namespace {
void resize_axis(int n_in, int n_out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
  const double scale = double(n_in) / n_out;
  i0.clear(); i1.clear(); f.clear();
  for (int o = 0; o < n_out; ++o) {
    double c = (o + 0.5) * scale - 0.5;
    c = std::min(std::max(c, 0.0), double(n_in - 1));
    const int a = static_cast<int>(std::floor(c));
    i0.push_back(a);
    i1.push_back(std::min(a + 1, n_in - 1));
    f.push_back(static_cast<float>(c - a));
  }
}
}  // namespace

void resize_tables(Step& s, const Shape3& si, const Shape3& so, int vec_w) {
  resize_axis(si.h, so.h, s.ry0, s.ry1, s.rfy);
  resize_axis(si.w, so.w, s.rx0, s.rx1, s.rfx);
  s.rxe0.clear(); s.rxe1.clear(); s.rfxe.clear();
  for (int ox = 0; ox < so.w; ++ox)
    for (int ch = 0; ch < so.c; ++ch) {
      s.rxe0.push_back(s.rx0[ox] * si.c + ch);
      s.rxe1.push_back(s.rx1[ox] * si.c + ch);
      s.rfxe.push_back(s.rfx[ox]);
    }
  s.rxwin.clear(); s.rxp0.clear(); s.rxp1.clear();
  if (vec_w > 0 && so.c < vec_w)
    resize_windows(s.rxe0, s.rxe1, static_cast<int64_t>(si.w) * si.c, vec_w, s.rxwin, s.rxp0, s.rxp1);
}

GemmArgs RunCtx::task_args(const GemmArgs& a, int t) const {
  GemmArgs r = a;
  if (a.bpack) r.bpack = a.bpack + int64_t(t) * gemm_pack_floats(a.K, a.N);   // each task its own copy
  return r;
}

void RunCtx::gemm(const GemmArgs& a, int64_t macs) const {
  if (threads <= 1 || macs < kParallelMacs) {
    kt.gemm(a, 0, a.M, 0, a.N);
    return;
  }
  if (a.M >= 2 * kt.gemm_mr * threads) {
    const int chunk = static_cast<int>(round_up((a.M + threads - 1) / threads, kt.gemm_mr));
    const int tasks = (a.M + chunk - 1) / chunk;
    pool.parallel_for(tasks, threads, [&](int t) { kt.gemm(task_args(a, t), t * chunk, std::min(a.M, (t + 1) * chunk), 0, a.N); });
  } else {
    const int chunk = static_cast<int>(round_up((a.N + threads - 1) / threads, kt.gemm_nr));
    const int tasks = (a.N + chunk - 1) / chunk;
    pool.parallel_for(tasks, threads, [&](int t) { kt.gemm(task_args(a, t), 0, a.M, t * chunk, std::min(a.N, (t + 1) * chunk)); });
  }
}

}  // namespace art
