// The int8 kernel test: every kernel of an int8 table against a plain
// integer reference written here (int64 sums, then the float32 epilogue of
// adaptive_rt/model/quant.py), compared for exact equality, over shapes
// with every kind of tail (rows, columns, K % 4, channels not a multiple of
// the vector width, prefix views of wider weights), every activation, float
// and uint8 outputs. Run for every int8 table this CPU has.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_test.h"
#include "q8.h"

namespace art {
namespace {

struct Rng {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t u() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
  int range(int lo, int hi) { return lo + static_cast<int>(u() % uint64_t(hi - lo + 1)); }
  float uni(float lo, float hi) { return lo + (hi - lo) * static_cast<float>((u() >> 11) * (1.0 / 9007199254740992.0)); }
};

float act_f(float t, Act a) {
  const float sixth = 1.f / 6.f;
  switch (a) {
    case Act::Relu: return t > 0.f ? t : 0.f;
    case Act::Relu6: return t > 0.f ? (t < 6.f ? t : 6.f) : 0.f;
    case Act::HSwish: { float g = t + 3.f; g = g > 0.f ? (g < 6.f ? g : 6.f) : 0.f; return (t * g) * sixth; }
    case Act::HSigmoid: { float g = t + 3.f; g = g > 0.f ? (g < 6.f ? g : 6.f) : 0.f; return g * sixth; }
    default: return t;
  }
}

// The uint8 output of t for an epilogue e (q8.h).
uint8_t requant_e(float t, const Q8Epilogue& e) {
  float u = t;
  if (e.act == Act::HSwish || e.act == Act::HSigmoid) {
    float g = t + 3.f;
    g = g > 0.f ? (g < 6.f ? g : 6.f) : 0.f;
    u = e.act == Act::HSwish ? (t * g) * e.out_scale : g * e.out_scale;
  }
  u = u > e.lo ? u : e.lo;
  u = u < e.hi ? u : e.hi;
  return static_cast<uint8_t>(static_cast<int>(std::nearbyint(u)) + e.zo);
}

// A random epilogue for act: bounds as ops/q8_common.cc sets them.
void random_epilogue(Q8Epilogue& e, Act act, Rng& rng) {
  e.act = act;
  e.zo = rng.range(0, 255);
  e.out_scale = rng.uni(2.f, 8.f);
  e.lo = float(-e.zo);
  e.hi = float(255 - e.zo);
  if (act == Act::Relu || act == Act::Relu6) e.lo = 0.f;
  if (act == Act::Relu6) e.hi = std::min(e.hi, rng.uni(10.f, 100.f));
}

uint8_t requant(float u, int zo) {
  const float lo = float(-zo), hi = float(255 - zo);
  u = u > lo ? u : lo;
  u = u < hi ? u : hi;
  return static_cast<uint8_t>(static_cast<int>(std::nearbyint(u)) + zo);
}

struct Q8Checker {
  const Q8Table& t;
  KernelTestReport r;
  template <class T>
  void check(const T* got, const std::vector<T>& want, const std::string& what) {
    r.checks++;
    for (size_t i = 0; i < want.size(); ++i)
      if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
        r.failures.push_back(std::string("i8-") + what + "-" + t.name + ": first difference at " + std::to_string(i) +
                             " (got " + std::to_string(double(got[i])) + ", want " + std::to_string(double(want[i])) + ")");
        return;
      }
  }
};

std::string dims(std::initializer_list<int> d) {
  std::string s;
  for (int x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

const Act kActs[] = {Act::None, Act::Relu, Act::Relu6, Act::HSwish, Act::HSigmoid};

void test_gemm(Q8Checker& c, Rng& rng) {
  const int Ms[] = {1, 2, 5, 9, 17};
  const int Ks[] = {1, 3, 4, 5, 8, 27, 33, 100};
  const int Ns[] = {1, 7, 8, 15, 16, 17, 31, 33, 50};
  int i = 0;
  for (int M : Ms)
    for (int K : Ks)
      for (int N : Ns) {
        const int ldb = N + 5, G = (K + 3) / 4 + 1;   // a prefix view of a wider stored weight
        std::vector<uint8_t> A(size_t(M) * (K + 3));
        for (auto& x : A) x = static_cast<uint8_t>(rng.range(0, 255));
        std::vector<int8_t> B(size_t(G) * ldb * 4);
        for (auto& x : B) x = static_cast<int8_t>(rng.range(-127, 127));
        std::vector<int32_t> bias(N);
        std::vector<float> mul(N), add(N);
        const int zi = rng.range(0, 255);
        for (int n = 0; n < N; ++n) {
          int32_t s = 0;
          for (int k = 0; k < K; ++k) s += B[(k / 4) * ldb * 4 + n * 4 + k % 4];
          bias[n] = -(zi - c.t.a_offset) * s;
          mul[n] = rng.uni(0.5f, 1.5f) / (std::sqrt(float(K)) + 1.f);
          add[n] = rng.uni(-20.f, 20.f);
        }
        const Act act = kActs[i++ % 5];
        const bool fout = i % 4 == 0, with_bias = i % 3 != 0;
        Q8GemmArgs a;
        a.M = M; a.N = N; a.K = K; a.A = A.data(); a.lda = K + 3; a.B = B.data(); a.ldb = ldb;
        a.e.bias = with_bias ? bias.data() : nullptr;
        random_epilogue(a.e, act, rng);
        a.e.mul = mul.data(); a.e.add = add.data();
        if (act == Act::HSwish || act == Act::HSigmoid || fout)   // real units: a smaller range
          for (int n = 0; n < N; ++n) { mul[n] /= 20.f; add[n] /= 20.f; }
        std::vector<uint8_t> C(size_t(M) * N);
        std::vector<float> Cf(size_t(M) * N);
        std::vector<uint8_t> want(size_t(M) * N);
        std::vector<float> wantf(size_t(M) * N);
        for (int m = 0; m < M; ++m)
          for (int n = 0; n < N; ++n) {
            int64_t acc = with_bias ? bias[n] : 0;   // the kernel's contract: sum (A - a_offset) B + bias
            for (int k = 0; k < K; ++k)
              acc += (int64_t(A[m * (K + 3) + k]) - c.t.a_offset) * B[(k / 4) * ldb * 4 + n * 4 + k % 4];
            float tt = static_cast<float>(static_cast<int32_t>(acc)) * mul[n];
            tt = tt + add[n];
            wantf[m * N + n] = act_f(tt, act);
            want[m * N + n] = requant_e(tt, a.e);
          }
        if (fout) { a.Cf = Cf.data(); a.ldc = N; } else { a.C = C.data(); a.ldc = N; }
        c.t.gemm(a, 0, M, 0, N);
        if (fout) c.check(Cf.data(), wantf, "gemm-" + dims({M, K, N}) + "-float");
        else c.check(C.data(), want, "gemm-" + dims({M, K, N}));
        // a split call (the threads' column and row ranges) gives the same
        if (!fout && M > 2 && N > 9) {
          std::vector<uint8_t> C2(size_t(M) * N);
          a.C = C2.data();
          c.t.gemm(a, 0, M / 2, 0, N / 2);
          c.t.gemm(a, M / 2, M, 0, N / 2);
          c.t.gemm(a, 0, M, N / 2, N);
          c.check(C2.data(), want, "gemm-split-" + dims({M, K, N}));
        }
      }
}

void test_dwconv(Q8Checker& c, Rng& rng) {
  const int Cs[] = {1, 5, 16, 17, 33, 48, 64, 65, 100, 130};
  int i = 0;
  for (int k : {3, 5, 7})
    for (int s : {1, 2})
      for (int C : Cs) {
        const int H = rng.range(1, 12), W = rng.range(1, 12);
        const int Ho = (H + 2 * (k / 2) - k) / s + 1, Wo = (W + 2 * (k / 2) - k) / s + 1;
        const int wc = C + (i % 3) * 7;   // a prefix of a wider stored weight
        std::vector<uint8_t> in(size_t(H) * W * C);
        for (auto& x : in) x = static_cast<uint8_t>(rng.range(0, 255));
        std::vector<int8_t> w(size_t(k) * k * wc);
        for (auto& x : w) x = static_cast<int8_t>(rng.range(-127, 127));
        std::vector<float> mul(C), add(C);
        const Act act = kActs[i++ % 5];
        const float real = act == Act::HSwish || act == Act::HSigmoid ? 20.f : 1.f;
        for (int ch = 0; ch < C; ++ch) { mul[ch] = rng.uni(0.5f, 1.5f) / (k * real); add[ch] = rng.uni(-20.f, 20.f) / real; }
        const int zi = rng.range(0, 255);
        Q8DwArgs d;
        d.H = H; d.W = W; d.C = C; d.Ho = Ho; d.Wo = Wo; d.k = k; d.stride = s;
        d.in = in.data(); d.zi = zi; d.w = w.data(); d.wc = wc;
        random_epilogue(d.e, act, rng);
        d.e.mul = mul.data(); d.e.add = add.data();
        std::vector<uint8_t> want(size_t(Ho) * Wo * C), got(want.size());
        for (int oy = 0; oy < Ho; ++oy)
          for (int ox = 0; ox < Wo; ++ox)
            for (int ch = 0; ch < C; ++ch) {
              int64_t acc = 0;
              for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx) {
                  const int iy = oy * s - k / 2 + ky, ix = ox * s - k / 2 + kx;
                  if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                  acc += (int64_t(in[(size_t(iy) * W + ix) * C + ch]) - zi) * w[(ky * k + kx) * wc + ch];
                }
              const float tt = static_cast<float>(acc) * mul[ch] + add[ch];
              want[(size_t(oy) * Wo + ox) * C + ch] = requant_e(tt, d.e);
            }
        const std::string what = "dwconv-" + dims({k, k}) + "s" + std::to_string(s) + "-" + dims({H, W, C});
        d.out = got.data();
        c.t.dwconv(d, 0, Ho);
        c.check(got.data(), want, what);
        if (c.t.dwconv_packed && c.t.dw_packed_stride(s)) {   // the packed kernel, as ops/q8_dwconv.cc prepares it
          std::vector<int8_t> packed(static_cast<size_t>(c.t.dw_packed_bytes(k, wc)));
          c.t.dw_pack(w.data(), k, wc, packed.data());
          const int64_t slots = c.t.dw_slots(C);
          std::vector<int32_t> pbias(slots, 0);
          std::vector<float> pmul(slots, 0.f), padd(slots, 0.f);
          for (int64_t p = 0; p < slots; ++p) {
            const int64_t ch = c.t.dw_channel(p);
            if (ch >= C) continue;
            int32_t sum = 0;
            for (int tap = 0; tap < k * k; ++tap) sum += w[tap * wc + ch];
            pbias[p] = -zi * sum; pmul[p] = mul[ch]; padd[p] = add[ch];
          }
          std::vector<uint8_t> ring(static_cast<size_t>(c.t.dw_ring_bytes(k, W, C, s)));
          d.wp = packed.data(); d.pbias = pbias.data(); d.pmul = pmul.data(); d.padd = padd.data(); d.ring = ring.data();
          std::fill(got.begin(), got.end(), 0);
          c.t.dwconv_packed(d, 0, Ho / 2);   // two bands, as two threads run them
          c.t.dwconv_packed(d, Ho / 2, Ho);
          c.check(got.data(), want, what + "-packed");
        }
      }
}

void test_elementwise(Q8Checker& c, Rng& rng) {
  for (int n : {1, 7, 8, 9, 33, 100}) {
    std::vector<float> x(n);
    for (auto& v : x) v = rng.uni(-10.f, 10.f);
    const int zo = rng.range(0, 255);
    const float inv = rng.uni(5.f, 20.f);
    std::vector<uint8_t> want(n), got(n);
    for (int i = 0; i < n; ++i) want[i] = requant(x[i] * inv, zo);
    c.t.quantize(x.data(), n, inv, float(-zo), float(255 - zo), zo, got.data());
    c.check(got.data(), want, "quantize-" + std::to_string(n));
    std::vector<uint8_t> a(n), b(n);
    for (int i = 0; i < n; ++i) { a[i] = uint8_t(rng.range(0, 255)); b[i] = uint8_t(rng.range(0, 255)); }
    const int za = rng.range(0, 255), zb = rng.range(0, 255);
    const float ma = rng.uni(0.2f, 2.f), mb = rng.uni(0.2f, 2.f);
    for (int i = 0; i < n; ++i)
      want[i] = requant(static_cast<float>(a[i] - za) * ma + static_cast<float>(b[i] - zb) * mb, zo);
    c.t.add(a.data(), za, ma, b.data(), zb, mb, n, float(-zo), float(255 - zo), zo, got.data());
    c.check(got.data(), want, "add-" + std::to_string(n));
  }
  for (int C : {1, 7, 8, 17, 40}) {
    const int P = rng.range(1, 30), stride = C + 3;
    std::vector<uint8_t> x(size_t(P) * stride);
    for (auto& v : x) v = uint8_t(rng.range(0, 255));
    std::vector<int32_t> want(C, 0), got(C);
    for (int p = 0; p < P; ++p)
      for (int ch = 0; ch < C; ++ch) want[ch] += x[p * stride + ch];
    c.t.channel_sum(x.data(), P, C, stride, got.data());
    c.check(got.data(), want, "channel-sum-" + dims({P, C}));
    std::vector<uint8_t> xs(size_t(P) * C), ws(xs.size()), gs(xs.size());
    for (auto& v : xs) v = uint8_t(rng.range(0, 255));
    std::vector<float> m(C);
    for (auto& v : m) v = rng.uni(0.f, 2.f);
    const int zi = rng.range(0, 255), zo = rng.range(0, 255);
    for (int p = 0; p < P; ++p)
      for (int ch = 0; ch < C; ++ch) ws[p * C + ch] = requant(static_cast<float>(xs[p * C + ch] - zi) * m[ch], zo);
    c.t.scale_channels(xs.data(), P, C, zi, m.data(), float(-zo), float(255 - zo), zo, gs.data());
    c.check(gs.data(), ws, "scale-channels-" + dims({P, C}));
  }
  // im2col of one row with padding taps at the zero point
  for (int k : {1, 3, 5})
    for (int s : {1, 2}) {
      const int H = 6, W = 7, C = 3, Wo = (W + 2 * (k / 2) - k) / s + 1;
      std::vector<uint8_t> in(size_t(H) * W * C);
      for (auto& v : in) v = uint8_t(rng.range(0, 255));
      Q8Im2colArgs a;
      a.H = H; a.W = W; a.C = C; a.Wo = Wo; a.k = k; a.stride = s; a.in = in.data(); a.pad = 77;
      const int kc = k * k * C;
      for (int oy : {0, 2, H - 1}) {
        std::vector<uint8_t> want(size_t(Wo) * kc), got(want.size() + Q8_IM2COL_SLACK);
        for (int ox = 0; ox < Wo; ++ox)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx)
              for (int ch = 0; ch < C; ++ch) {
                const int iy = oy * s - k / 2 + ky, ix = ox * s - k / 2 + kx;
                want[ox * kc + (ky * k + kx) * C + ch] =
                    iy < 0 || iy >= H || ix < 0 || ix >= W ? 77 : in[(size_t(iy) * W + ix) * C + ch];
              }
        c.t.im2col_row(a, oy, got.data());
        c.check(got.data(), want, "im2col-" + dims({k, k}) + "s" + std::to_string(s) + "-row" + std::to_string(oy));
      }
    }
}

void test_resize(Q8Checker& c, Rng& rng) {
  // one row of a bilinear resize: the per-element tables as ops/q8_misc.cc makes them
  for (int C : {1, 3, 8})
    for (int Wo : {1, 5, 17, 40}) {
      const int W = rng.range(1, 30), H = 4;
      std::vector<uint8_t> in(size_t(H) * W * C + 16);   // the arena's slack for 4-byte gathers
      for (auto& v : in) v = uint8_t(rng.range(0, 255));
      std::vector<int> ry0 = {0, 1, 3}, ry1 = {1, 2, 3}, rx0(Wo), rx1(Wo);
      std::vector<float> fy = {0.25f, 0.5f, 0.f}, fx(Wo);
      std::vector<int32_t> xe0, xe1;
      std::vector<float> fxe;
      for (int ox = 0; ox < Wo; ++ox) {
        rx0[ox] = rng.range(0, W - 1);
        rx1[ox] = std::min(W - 1, rx0[ox] + 1);
        fx[ox] = rng.uni(0.f, 1.f);
        for (int ch = 0; ch < C; ++ch) { xe0.push_back(rx0[ox] * C + ch); xe1.push_back(rx1[ox] * C + ch); fxe.push_back(fx[ox]); }
      }
      Q8ResizeArgs a;
      a.W = W; a.C = C; a.Wo = Wo; a.in = in.data();
      a.ry0 = ry0.data(); a.ry1 = ry1.data(); a.fy = fy.data(); a.rx0 = rx0.data(); a.rx1 = rx1.data(); a.fx = fx.data();
      a.xe0 = xe0.data(); a.xe1 = xe1.data(); a.fxe = fxe.data();
      for (int oy = 0; oy < 3; ++oy) {
        std::vector<uint8_t> want(size_t(Wo) * C), got(want.size());
        const uint8_t* r0 = in.data() + size_t(ry0[oy]) * W * C;
        const uint8_t* r1 = in.data() + size_t(ry1[oy]) * W * C;
        for (int ox = 0; ox < Wo; ++ox)
          for (int ch = 0; ch < C; ++ch) {
            const float gx = 1.f - fx[ox], gy = 1.f - fy[oy];
            const float top = float(r0[rx0[ox] * C + ch]) * gx + float(r0[rx1[ox] * C + ch]) * fx[ox];
            const float bot = float(r1[rx0[ox] * C + ch]) * gx + float(r1[rx1[ox] * C + ch]) * fx[ox];
            want[size_t(ox) * C + ch] = requant(top * gy + bot * fy[oy], 0);
          }
        c.t.resize_row(a, oy, got.data());
        c.check(got.data(), want, "resize-row-" + dims({W, Wo, C}));
      }
    }
}

}  // namespace

KernelTestReport test_q8_kernel_table(const Q8Table& t) {
  Q8Checker c{t, {}};
  Rng rng;
  test_gemm(c, rng);
  test_dwconv(c, rng);
  test_elementwise(c, rng);
  test_resize(c, rng);
  return c.r;
}

}  // namespace art
