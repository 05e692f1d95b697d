// Kernel and engine self-test without Python: every kernel table this CPU
// has against a plain double-precision reference, then a small plan on every
// table at 1 and 2 threads against the scalar table. Built and run by
// scripts/cross_aarch64.sh under qemu for the NEON table (and runnable
// natively). Exit code 0 on success; prints the first mismatch otherwise.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu.h"
#include "engine.h"

using namespace art;

namespace {

uint64_t rng_state = 88172645463325252ull;
float frand() {   // xorshift, uniform in [-1, 1)
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return static_cast<float>((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
}
std::vector<float> rand_vec(size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = frand();
  return v;
}

double act_ref(double x, Act a) {
  switch (a) {
    case Act::Relu: return x > 0 ? x : 0;
    case Act::Relu6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case Act::HSwish: { double g = x + 3; g = g < 0 ? 0 : (g > 6 ? 6 : g); return x * g / 6; }
    case Act::HSigmoid: { double g = x + 3; g = g < 0 ? 0 : (g > 6 ? 6 : g); return g / 6; }
    default: return x;
  }
}

int failures = 0;
bool close(const std::vector<float>& got, const std::vector<double>& want, const std::string& what) {
  double mx = 1e-6, err = 0;
  for (double w : want) mx = std::fmax(mx, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) err = std::fmax(err, std::fabs(got[i] - want[i]));
  if (err > 1e-5 * mx) {
    std::printf("FAIL %s: max abs error %g (max %g)\n", what.c_str(), err, mx);
    ++failures;
    return false;
  }
  return true;
}

void test_gemm(const KernelTable& t) {
  const int shapes[][3] = {{1, 1, 1}, {1, 9, 10}, {5, 3, 7}, {7, 16, 16}, {13, 24, 40}, {64, 33, 17}, {100, 144, 24}, {9, 160, 96}};
  for (auto& s : shapes) {
    const int M = s[0], K = s[1], N = s[2], ldb = N + 5;
    auto A = rand_vec(size_t(M) * K), B = rand_vec(size_t(K + 2) * ldb), sc = rand_vec(N), sh = rand_vec(N), R = rand_vec(size_t(M) * N);
    for (Act act : {Act::None, Act::Relu, Act::HSwish}) {
      std::vector<float> C(size_t(M) * N, 0.f);
      GemmArgs g;
      g.M = M; g.N = N; g.K = K; g.A = A.data(); g.lda = K; g.B = B.data(); g.ldb = ldb;
      g.C = C.data(); g.ldc = N; g.scale = sc.data(); g.shift = sh.data(); g.res = R.data(); g.ldr = N; g.act = act;
      t.gemm(g, 0, M, 0, N);
      std::vector<double> want(size_t(M) * N);
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double acc = 0;
          for (int k = 0; k < K; ++k) acc += double(A[size_t(m) * K + k]) * B[size_t(k) * ldb + n];
          want[size_t(m) * N + n] = act_ref(acc * sc[n] + sh[n], act) + R[size_t(m) * N + n];
        }
      close(C, want, std::string(t.name) + " gemm " + std::to_string(M) + "x" + std::to_string(K) + "x" + std::to_string(N));
    }
  }
}

void test_dw(const KernelTable& t) {
  const int shapes[][3] = {{1, 1, 1}, {2, 3, 5}, {7, 7, 16}, {20, 21, 24}, {9, 40, 17}};
  for (auto& s : shapes)
    for (int k : {3, 5, 7, 9})
      for (int stride : {1, 2}) {
        const int H = s[0], W = s[1], C = s[2], wc = C + 8, p = k / 2;
        const int Ho = (H + 2 * p - k) / stride + 1, Wo = (W + 2 * p - k) / stride + 1;
        auto x = rand_vec(size_t(H) * W * C), w = rand_vec(size_t(k) * k * wc), sc = rand_vec(C), sh = rand_vec(C);
        std::vector<float> out(size_t(Ho) * Wo * C);
        DwArgs d;
        d.H = H; d.W = W; d.C = C; d.Ho = Ho; d.Wo = Wo; d.k = k; d.stride = stride;
        d.in = x.data(); d.w = w.data(); d.wc = wc; d.out = out.data(); d.scale = sc.data(); d.shift = sh.data();
        d.act = Act::HSwish;
        t.dwconv(d, 0, Ho);
        std::vector<double> want(out.size());
        for (int oy = 0; oy < Ho; ++oy)
          for (int ox = 0; ox < Wo; ++ox)
            for (int c = 0; c < C; ++c) {
              double acc = 0;
              for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx) {
                  const int iy = oy * stride - p + ky, ix = ox * stride - p + kx;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  acc += double(x[(size_t(iy) * W + ix) * C + c]) * w[(size_t(ky) * k + kx) * wc + c];
                }
              want[(size_t(oy) * Wo + ox) * C + c] = act_ref(acc * sc[c] + sh[c], Act::HSwish);
            }
        close(out, want, std::string(t.name) + " dwconv " + std::to_string(H) + "x" + std::to_string(W) + "x" +
                             std::to_string(C) + " k" + std::to_string(k) + " s" + std::to_string(stride));
      }
}

// stem conv -> expand -> dw (+ fused expand) -> SE -> project (+ residual) -> head -> gap -> linear
std::vector<float> run_plan(const KernelTable* t, int threads, const std::vector<std::vector<float>>& wts,
                            const std::vector<float>& x) {
  Engine eng(2, t);
  std::vector<Shape3> shapes = {{24, 24, 3}, {24, 24, 16}, {24, 24, 96}, {24, 24, 96}, {24, 24, 96}, {24, 24, 16},
                                {24, 24, 16}, {24, 24, 32}, {1, 1, 32}, {1, 1, 10}};
  Plan plan(shapes, 9);
  auto buf = [&](int i, std::vector<int64_t> shape) { Buffer b; b.data = wts[i].data(); b.shape = shape; return b; };
  auto vec = [&](int i, int n) { return std::vector<float>(wts[i].begin(), wts[i].begin() + n); };
  OpDesc o;
  o = {}; o.kind = OpKind::Conv; o.name = "stem"; o.in0 = 0; o.out = 1; o.k = 3; o.act = Act::HSwish;
  o.w = buf(0, {27, 16}); o.scale = vec(1, 16); o.shift = vec(2, 16); plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "expand"; o.in0 = 1; o.out = 2; o.act = Act::Relu;
  o.w = buf(3, {16, 128}); o.scale = vec(1, 96); o.shift = vec(2, 96); plan.add(o);
  o = {}; o.kind = OpKind::DwConv; o.name = "dw"; o.in0 = 2; o.out = 3; o.k = 5; o.act = Act::Relu;
  o.w = buf(4, {5, 5, 128}); o.scale = vec(1, 96); o.shift = vec(2, 96); plan.add(o);
  o = {}; o.kind = OpKind::SE; o.name = "se"; o.in0 = 3; o.out = 4; o.se_r = 24;
  o.se_w1 = buf(5, {96, 32}); o.se_b1 = buf(6, {32}); o.se_w2 = buf(7, {32, 96}); o.se_b2 = buf(8, {96}); plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "project"; o.in0 = 4; o.out = 5;
  o.w = buf(9, {96, 16}); o.scale = vec(1, 16); o.shift = vec(2, 16); plan.add(o);
  o = {}; o.kind = OpKind::Add; o.name = "add"; o.in0 = 5; o.in1 = 1; o.out = 6; plan.add(o);
  o = {}; o.kind = OpKind::PwConv; o.name = "head"; o.in0 = 6; o.out = 7; o.act = Act::HSwish;
  o.w = buf(10, {16, 32}); o.scale = vec(1, 32); o.shift = vec(2, 32); plan.add(o);
  o = {}; o.kind = OpKind::GAP; o.name = "pool"; o.in0 = 7; o.out = 8; plan.add(o);
  o = {}; o.kind = OpKind::Linear; o.name = "fc"; o.in0 = 8; o.out = 9; o.w = buf(11, {32, 10}); o.shift = vec(2, 10);
  plan.add(o);
  eng.finalize(plan);
  std::vector<float> y(20);
  eng.run(plan, x.data(), 2, y.data(), threads);
  return y;
}

}  // namespace

int main() {
  std::vector<const KernelTable*> tables;
  for (const char* n : {"scalar", "avx2", "avx512", "neon"})
    if (const KernelTable* t = table_by_name(n)) tables.push_back(t);
  for (const KernelTable* t : tables) {
    test_gemm(*t);
    test_dw(*t);
  }
  const std::vector<size_t> sizes = {27 * 16, 128, 128, 16 * 128, 25 * 128, 96 * 32, 32, 32 * 96, 96, 96 * 16, 16 * 32, 32 * 10};
  std::vector<std::vector<float>> wts;
  for (size_t n : sizes) wts.push_back(rand_vec(n));
  for (float& v : wts[1]) v = 0.5f + 0.25f * v;   // positive BN scales
  auto x = rand_vec(2 * 24 * 24 * 3);
  std::vector<float> ref = run_plan(table_by_name("scalar"), 1, wts, x);
  std::vector<double> refd(ref.begin(), ref.end());
  for (const KernelTable* t : tables) {
    std::vector<float> y1 = run_plan(t, 1, wts, x), y2 = run_plan(t, 2, wts, x);
    close(y1, refd, std::string(t->name) + " plan t1");
    if (y1 != y2) { std::printf("FAIL %s: plan results differ between 1 and 2 threads\n", t->name); ++failures; }
  }
  std::printf("kernel_selftest: %zu kernel tables (", tables.size());
  for (size_t i = 0; i < tables.size(); ++i) std::printf("%s%s", i ? ", " : "", tables[i]->name);
  std::printf("), %d failures\n", failures);
  return failures ? 1 : 0;
}
