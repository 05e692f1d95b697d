#include "kernel_test.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace art {
namespace {

struct Rng {   // xorshift, uniform in [-1, 1)
  uint64_t s = 88172645463325252ull;
  float next() {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    return static_cast<float>((s >> 11) * (1.0 / 9007199254740992.0)) * 2.f - 1.f;
  }
  std::vector<float> vec(size_t n, float scale = 1.f, float offset = 0.f) {
    std::vector<float> v(n);
    for (auto& x : v) x = next() * scale + offset;
    return v;
  }
};

double act_ref(double x, Act a) {
  switch (a) {
    case Act::Relu: return x > 0 ? x : 0;
    case Act::Relu6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case Act::HSwish: { double g = x + 3; g = g < 0 ? 0 : (g > 6 ? 6 : g); return x * g / 6; }
    case Act::HSigmoid: { double g = x + 3; g = g < 0 ? 0 : (g > 6 ? 6 : g); return g / 6; }
    case Act::Sigmoid: return 1 / (1 + std::exp(-x));
    default: return x;
  }
}

const char* act_name(Act a) {
  switch (a) {
    case Act::None: return "none"; case Act::Relu: return "relu"; case Act::Relu6: return "relu6";
    case Act::HSwish: return "hswish"; case Act::HSigmoid: return "hsigmoid"; case Act::Sigmoid: return "sigmoid";
  }
  return "?";
}

struct Checker {
  const KernelTable& t;
  double tol;
  KernelTestReport r;
  // range: the magnitude errors are judged against at least (a sigmoid's
  // output range is 1: near 0 its float32 result is exact to ~1e-8 absolute,
  // not relative)
  void check(const float* got, const std::vector<double>& want, const std::string& what, double range = 1e-6) {
    r.checks++;
    double mx = range, err = 0;
    for (double w : want) mx = std::fmax(mx, std::fabs(w));
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(got[i])) { err = INFINITY; break; }
      err = std::fmax(err, std::fabs(got[i] - want[i]));
    }
    if (!(err <= tol * mx))
      r.failures.push_back(std::string("f32-") + what + "-" + t.name + ": max abs error " + std::to_string(err) +
                           " (max |want| " + std::to_string(mx) + ")");
  }
};

std::string dims(std::initializer_list<int> d) {
  std::string s;
  for (int v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

// B's stored [Ks, Ns] matrix in panels (GemmArgs::bk): kPanel-column panels, the last one narrower.
std::vector<float> to_panels(const std::vector<float>& B, int Ks, int Ns) {
  std::vector<float> p(B.size());
  for (int p0 = 0; p0 < Ns; p0 += kPanel) {
    const int w = std::min(kPanel, Ns - p0);
    for (int k = 0; k < Ks; ++k)
      for (int c = 0; c < w; ++c) p[size_t(p0) * Ks + size_t(k) * w + c] = B[size_t(k) * Ns + p0 + c];
  }
  return p;
}

void test_gemm(Checker& c, Rng& rng) {
  const int shapes[][3] = {{1, 1, 1}, {1, 9, 10}, {1, 200, 130}, {5, 3, 7}, {7, 16, 16}, {13, 24, 40},
                           {64, 33, 17}, {100, 144, 24}, {9, 160, 96}, {3, 5, 33}, {1, 40, 300}, {49, 20, 70},
                           {1, 199, 24}, {1, 97, 60}, {1, 130, 16}};   // narrow GEMVs: partial chains, a k tail
  for (auto& s : shapes) {
    const int M = s[0], K = s[1], N = s[2];
    auto A = rng.vec(size_t(M) * K), sc = rng.vec(N), sh = rng.vec(N), R = rng.vec(size_t(M) * N);
    auto G = rng.vec(size_t(K));
    // B layouts: row-major, a column slice of it, in panels, a panel-aligned column slice in panels
    for (int layout = 0; layout < 4; ++layout) {
      const bool panels = layout >= 2;
      const int boff = layout == 1 ? 3 : layout == 3 ? kPanel : 0, Ks = K + 2, Ns = N + boff + 5;
      const auto B = rng.vec(size_t(Ks) * Ns);
      const auto Bp = panels ? to_panels(B, Ks, Ns) : B;
      for (Act act : {Act::None, Act::Relu, Act::Relu6, Act::HSwish, Act::HSigmoid})
        for (int variant = 0; variant < 4; ++variant) {   // plain, + residual, + gated rows of B (a fused SE), columns split
          if (layout > 0 && act != Act::HSwish && act != Act::None) continue;
          const bool res = variant == 1, gate = variant == 2, split = variant == 3;
          std::vector<float> C(size_t(M) * N, 0.f);
          GemmArgs g;
          g.M = M; g.N = N; g.K = K; g.A = A.data(); g.lda = K; g.B = Bp.data(); g.ldb = Ns;
          g.bk = panels ? Ks : 0; g.boff = boff;
          g.C = C.data(); g.ldc = N; g.scale = sc.data(); g.shift = sh.data(); g.act = act;
          if (res) { g.res = R.data(); g.ldr = N; }
          std::vector<float> pack(size_t(K) * N);
          if (gate) { g.bscale = G.data(); g.bpack = pack.data(); }
          if (split && N > c.t.gemm_nr) {   // two threads' column ranges, split on a tile: the same bits as one
            c.t.gemm(g, 0, M, 0, c.t.gemm_nr);
            c.t.gemm(g, 0, M, c.t.gemm_nr, N);
            std::vector<float> whole(C.size());
            GemmArgs w = g;
            w.C = whole.data();
            c.t.gemm(w, 0, M, 0, N);
            c.r.checks++;
            if (whole != C)
              c.r.failures.push_back("f32-" + std::string(M == 1 ? "gemv" : "gemm") + "-" + dims({M, K, N}) +
                                     "-split-not-bit-identical-" + c.t.name);
          } else {
            c.t.gemm(g, 0, M, 0, N);
          }
          std::vector<double> want(size_t(M) * N);
          for (int m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n) {
              double acc = 0;
              for (int k = 0; k < K; ++k)
                acc += double(A[size_t(m) * K + k]) * B[size_t(k) * Ns + n + boff] * (gate ? double(G[size_t(k)]) : 1.0);
              want[size_t(m) * N + n] = act_ref(acc * sc[n] + sh[n], act) + (res ? R[size_t(m) * N + n] : 0.0);
            }
          if (M > 1 && N > c.t.gemv_narrow_n && !gate) {   // each row: the bits of its own GEMV (batches, plan/batch.cc)
            for (int m = 0; m < M; ++m) {
              std::vector<float> row(static_cast<size_t>(N));
              GemmArgs v = g;
              v.M = 1; v.A = A.data() + size_t(m) * K; v.C = row.data();
              if (res) v.res = R.data() + size_t(m) * N;
              c.t.gemm(v, 0, 1, 0, N);
              c.r.checks++;
              if (std::memcmp(row.data(), C.data() + size_t(m) * N, size_t(N) * 4) != 0) {
                c.r.failures.push_back("f32-gemm-" + dims({M, K, N}) + "-row-not-its-gemv-" + c.t.name);
                break;
              }
            }
          }
          static const char* lname[] = {"", "-slice", "-panels", "-panels-slice"};
          c.check(C.data(), want, std::string(M == 1 ? "gemv" : "gemm") + "-" + dims({M, K, N}) + "-" + act_name(act) +
                                      lname[layout] + (res ? "-residual" : "") + (gate ? "-gated" : "") +
                                      (split ? "-split" : ""));
        }
    }
  }
}

void test_dwconv(Checker& c, Rng& rng) {
  const int shapes[][3] = {{1, 1, 1}, {2, 3, 5}, {7, 7, 16}, {20, 21, 24}, {9, 40, 17}, {5, 12, 36}};
  for (auto& s : shapes)
    for (int k : {3, 5, 7, 9})
      for (int stride : {1, 2}) {
        const int H = s[0], W = s[1], C = s[2], wc = C + 8, p = k / 2;
        const int Ho = (H + 2 * p - k) / stride + 1, Wo = (W + 2 * p - k) / stride + 1;
        auto x = rng.vec(size_t(H) * W * C), w = rng.vec(size_t(k) * k * wc), sc = rng.vec(C), sh = rng.vec(C);
        bool spec = false;
        for (Act act : {Act::Relu6, Act::HSwish}) {
          // the kernel the plan would pick, and on wide rows also the short-row variant
          const int wsel = act == Act::Relu6 ? Wo : (Wo > 14 ? 14 : 1000);
          DwKernel fn = c.t.dwconv_select(k, stride, wsel, &spec);
          std::vector<float> out(size_t(Ho) * Wo * C);
          DwArgs d;
          d.H = H; d.W = W; d.C = C; d.Ho = Ho; d.Wo = Wo; d.k = k; d.stride = stride;
          d.in = x.data(); d.w = w.data(); d.wc = wc; d.out = out.data(); d.scale = sc.data(); d.shift = sh.data();
          d.act = act;
          fn(d, 0, Ho);
          std::vector<double> want(out.size());
          for (int oy = 0; oy < Ho; ++oy)
            for (int ox = 0; ox < Wo; ++ox)
              for (int ch = 0; ch < C; ++ch) {
                double acc = 0;
                for (int ky = 0; ky < k; ++ky)
                  for (int kx = 0; kx < k; ++kx) {
                    const int iy = oy * stride - p + ky, ix = ox * stride - p + kx;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    acc += double(x[(size_t(iy) * W + ix) * C + ch]) * w[(size_t(ky) * k + kx) * wc + ch];
                  }
                want[(size_t(oy) * Wo + ox) * C + ch] = act_ref(acc * sc[ch] + sh[ch], act);
              }
          c.check(out.data(), want, "dwconv-" + std::to_string(k) + "x" + std::to_string(k) + "s" +
                                        std::to_string(stride) + (spec ? "" : "-generic") + "-" + dims({H, W, C}) +
                                        "-" + act_name(act) + "-sel" + std::to_string(wsel));
          // one row at a time into a row buffer (oy_base), as a fused project conv reads it
          std::vector<float> rows(out.size()), row(size_t(Wo) * C);
          for (int oy = 0; oy < Ho; ++oy) {
            DwArgs r = d;
            r.out = row.data();
            r.oy_base = oy;
            fn(r, oy, oy + 1);
            std::copy(row.begin(), row.end(), rows.begin() + size_t(oy) * Wo * C);
          }
          c.check(rows.data(), want, "dwconv-" + std::to_string(k) + "x" + std::to_string(k) + "s" +
                                         std::to_string(stride) + "-" + dims({H, W, C}) + "-" + act_name(act) +
                                         "-row-by-row");
          // channel slices (a thread's share): each slice's input rows packed alone, its outputs
          // written into the full-width output (ldo), as dwconv.cc's channel split does
          std::vector<float> sliced(out.size(), 0.f);
          const int cw = std::max(c.t.vec_w, (C / 2 + c.t.vec_w - 1) / c.t.vec_w * c.t.vec_w);
          for (int c0 = 0; c0 < C; c0 += cw) {
            const int cn = std::min(C, c0 + cw) - c0;
            std::vector<float> xs(size_t(H) * W * cn);
            for (int i = 0; i < H * W; ++i)
              for (int ch = 0; ch < cn; ++ch) xs[size_t(i) * cn + ch] = x[size_t(i) * C + c0 + ch];
            DwArgs r = d;
            r.C = cn; r.in = xs.data(); r.w = w.data() + c0; r.scale = sc.data() + c0; r.shift = sh.data() + c0;
            r.out = sliced.data() + c0; r.ldo = C;
            fn(r, 0, Ho);
          }
          c.check(sliced.data(), want, "dwconv-" + std::to_string(k) + "x" + std::to_string(k) + "s" +
                                           std::to_string(stride) + "-" + dims({H, W, C}) + "-" + act_name(act) +
                                           "-channel-slices");
        }
      }
}

void test_reductions_and_elementwise(Checker& c, Rng& rng) {
  for (int C : {1, 3, 8, 16, 17, 40, 100})
    for (int64_t P : {int64_t(1), int64_t(3), int64_t(7), int64_t(49), int64_t(196)}) {
      const int stride = C + 5;
      auto x = rng.vec(size_t(P) * stride), g = rng.vec(C);
      const float mul = 1.f / float(P);
      std::vector<float> out(C);
      c.t.channel_sum(x.data(), P, C, mul, out.data());        // dense: stride C (reads the first P*C)
      std::vector<double> want(C, 0.0);
      for (int64_t i = 0; i < P; ++i)
        for (int ch = 0; ch < C; ++ch) want[ch] += x[size_t(i) * C + ch];
      for (double& w : want) w *= mul;
      c.check(out.data(), want, "channel-sum-" + dims({int(P), C}));
      c.t.channel_sum_strided(x.data(), P, C, stride, 1.f, out.data());
      std::fill(want.begin(), want.end(), 0.0);
      for (int64_t i = 0; i < P; ++i)
        for (int ch = 0; ch < C; ++ch) want[ch] += x[size_t(i) * stride + ch];
      c.check(out.data(), want, "channel-sum-strided-" + dims({int(P), C, stride}));
      std::vector<float> y(size_t(P) * C);
      std::vector<double> wy(y.size());
      c.t.scale_channels(x.data(), P, C, g.data(), y.data());
      for (int64_t i = 0; i < P; ++i)
        for (int ch = 0; ch < C; ++ch) wy[size_t(i) * C + ch] = double(x[size_t(i) * C + ch]) * g[ch];
      c.check(y.data(), wy, "scale-channels-" + dims({int(P), C}));
    }
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(15), int64_t(16), int64_t(17), int64_t(100), int64_t(1001)}) {
    auto a = rng.vec(size_t(n)), b = rng.vec(size_t(n));
    std::vector<float> out(static_cast<size_t>(n));
    c.t.add(a.data(), b.data(), n, out.data());
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) want[size_t(i)] = double(a[size_t(i)]) + b[size_t(i)];
    c.check(out.data(), want, "add-" + std::to_string(n));
    auto x = rng.vec(size_t(n), 9.f);       // [-9, 9): every piece of every activation
    for (Act act : {Act::None, Act::Relu, Act::Relu6, Act::HSwish, Act::HSigmoid, Act::Sigmoid}) {
      c.t.activation(x.data(), n, act, out.data());
      for (int64_t i = 0; i < n; ++i) want[size_t(i)] = act_ref(x[size_t(i)], act);
      c.check(out.data(), want, std::string(act == Act::Sigmoid ? "sigmoid" : "activation") + "-" + act_name(act) +
                                    "-" + std::to_string(n), act == Act::Sigmoid ? 1.0 : 1e-6);
    }
  }
  {   // sigmoid far out in the tails and at zero
    std::vector<float> x = {-100.f, -30.f, -16.f, -8.f, -1e-3f, 0.f, 1e-3f, 8.f, 16.f, 30.f, 100.f};
    std::vector<float> out(x.size());
    std::vector<double> want(x.size());
    c.t.activation(x.data(), int64_t(x.size()), Act::Sigmoid, out.data());
    for (size_t i = 0; i < x.size(); ++i) want[i] = act_ref(x[i], Act::Sigmoid);
    c.check(out.data(), want, "sigmoid-tails");
  }
}

void test_im2col(Checker& c, Rng& rng) {
  const int shapes[][3] = {{1, 1, 1}, {5, 6, 3}, {8, 9, 1}, {11, 7, 16}, {12, 12, 17}};
  for (auto& s : shapes)
    for (int k : {1, 3, 5})
      for (int stride : {1, 2}) {
        const int H = s[0], W = s[1], C = s[2], p = k / 2;
        const int Ho = (H + 2 * p - k) / stride + 1, Wo = (W + 2 * p - k) / stride + 1;
        auto x = rng.vec(size_t(H) * W * C);
        Im2colArgs a;
        a.H = H; a.W = W; a.C = C; a.Wo = Wo; a.k = k; a.stride = stride; a.in = x.data();
        const size_t kk = size_t(k) * k * C;
        std::vector<float> cols(size_t(Wo) * kk, NAN);
        for (int oy = 0; oy < Ho; ++oy) {
          c.t.im2col_row(a, oy, cols.data());
          std::vector<double> want(cols.size());
          for (int ox = 0; ox < Wo; ++ox)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx)
                for (int ch = 0; ch < C; ++ch) {
                  const int iy = oy * stride - p + ky, ix = ox * stride - p + kx;
                  const bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                  want[size_t(ox) * kk + (size_t(ky) * k + kx) * C + ch] = in ? x[(size_t(iy) * W + ix) * C + ch] : 0.0;
                }
          c.check(cols.data(), want, "im2col-" + std::to_string(k) + "x" + std::to_string(k) + "s" +
                                         std::to_string(stride) + "-" + dims({H, W, C}) + "-row" + std::to_string(oy));
        }
      }
}

void test_conv_direct(Checker& c, Rng& rng) {
  const int shapes[][4] = {{1, 1, 1, 16}, {28, 28, 1, 16}, {9, 13, 3, 16}, {17, 16, 3, 24}, {30, 30, 3, 8}, {7, 40, 2, 35},
                           {5, 2, 1, 16}, {4, 3, 3, 16}, {20, 20, 1, 16}, {6, 21, 3, 16}};   // narrow: few or no inner columns
  for (auto& s : shapes)
    for (int k : {1, 3, 5})
      for (int stride : {1, 2}) {
        const int H = s[0], W = s[1], Cin = s[2], N = s[3], p = k / 2, ldw = N + 3;
        const int Ho = (H + 2 * p - k) / stride + 1, Wo = (W + 2 * p - k) / stride + 1;
        auto x = rng.vec(size_t(H) * W * Cin), w = rng.vec(size_t(k) * k * Cin * ldw), sc = rng.vec(N), sh = rng.vec(N);
        std::vector<float> out(size_t(Ho) * Wo * N);
        ConvArgs a;
        a.H = H; a.W = W; a.Cin = Cin; a.Wo = Wo; a.N = N; a.k = k; a.stride = stride; a.in = x.data();
        a.w = w.data(); a.ldw = ldw; a.scale = sc.data(); a.shift = sh.data(); a.act = Act::HSwish; a.out = out.data();
        for (int oy = 0; oy < Ho; ++oy) c.t.conv_row(a, oy);
        std::vector<double> want(out.size());
        for (int oy = 0; oy < Ho; ++oy)
          for (int ox = 0; ox < Wo; ++ox)
            for (int n = 0; n < N; ++n) {
              double acc = 0;
              for (int ky = 0; ky < k; ++ky)
                for (int kx = 0; kx < k; ++kx)
                  for (int ci = 0; ci < Cin; ++ci) {
                    const int iy = oy * stride - p + ky, ix = ox * stride - p + kx;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                    acc += double(x[(size_t(iy) * W + ix) * Cin + ci]) * w[(size_t(ky * k + kx) * Cin + ci) * ldw + n];
                  }
              want[(size_t(oy) * Wo + ox) * N + n] = act_ref(acc * sc[n] + sh[n], Act::HSwish);
            }
        c.check(out.data(), want, "conv-" + std::to_string(k) + "x" + std::to_string(k) + "s" + std::to_string(stride) +
                                      "-direct-" + dims({H, W, Cin, N}));
      }
}

void test_resize(Checker& c, Rng& rng) {
  const int shapes[][5] = {{28, 28, 1, 14, 14}, {4, 5, 3, 9, 7}, {7, 7, 16, 7, 7}, {10, 3, 17, 4, 11}, {1, 1, 5, 3, 2},
                           {224, 224, 3, 128, 128}, {9, 40, 3, 5, 27}};
  for (auto& s : shapes) {
    const int H = s[0], W = s[1], C = s[2], Ho = s[3], Wo = s[4];
    auto x = rng.vec(size_t(H) * W * C);
    auto axis = [](int n_in, int n_out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
      for (int o = 0; o < n_out; ++o) {
        double cc = (o + 0.5) * double(n_in) / n_out - 0.5;
        cc = std::min(std::max(cc, 0.0), double(n_in - 1));
        const int a = static_cast<int>(std::floor(cc));
        i0.push_back(a); i1.push_back(std::min(a + 1, n_in - 1)); f.push_back(float(cc - a));
      }
    };
    std::vector<int> ry0, ry1, rx0, rx1;
    std::vector<float> fy, fx;
    axis(H, Ho, ry0, ry1, fy);
    axis(W, Wo, rx0, rx1, fx);
    ResizeArgs a;
    a.W = W; a.C = C; a.Wo = Wo; a.in = x.data();
    a.ry0 = ry0.data(); a.ry1 = ry1.data(); a.fy = fy.data(); a.rx0 = rx0.data(); a.rx1 = rx1.data(); a.fx = fx.data();
    std::vector<int32_t> xe0, xe1;   // the per-element tables (the engine's path for few channels)
    std::vector<float> fxe;
    for (int ox = 0; ox < Wo; ++ox)
      for (int ch = 0; ch < C; ++ch) {
        xe0.push_back(rx0[ox] * C + ch); xe1.push_back(rx1[ox] * C + ch); fxe.push_back(fx[ox]);
      }
    std::vector<int32_t> win, p0, p1;   // windows of 2 vectors (where the taps fit one)
    resize_windows(xe0, xe1, int64_t(W) * C, c.t.vec_w, win, p0, p1);
    std::vector<float> out(size_t(Wo) * C);
    for (int pass = 0; pass < 3; ++pass) {   // the per-pixel path, the element tables, with their windows
      for (int oy = 0; oy < Ho; ++oy) {
        const bool tables = pass >= 1, windows = pass == 2 && !win.empty();
        if (pass == 2 && win.empty()) break;
        a.xe0 = tables ? xe0.data() : nullptr; a.xe1 = tables ? xe1.data() : nullptr; a.fxe = tables ? fxe.data() : nullptr;
        a.xwin = windows ? win.data() : nullptr; a.xp0 = windows ? p0.data() : nullptr; a.xp1 = windows ? p1.data() : nullptr;
        c.t.resize_row(a, oy, out.data());
        std::vector<double> want(out.size());
        auto px = [&](int y, int xx, int ch) { return double(x[(size_t(y) * W + xx) * C + ch]); };
        for (int ox = 0; ox < Wo; ++ox)
          for (int ch = 0; ch < C; ++ch) {
            const double top = px(ry0[oy], rx0[ox], ch) * (1 - fx[ox]) + px(ry0[oy], rx1[ox], ch) * fx[ox];
            const double bot = px(ry1[oy], rx0[ox], ch) * (1 - fx[ox]) + px(ry1[oy], rx1[ox], ch) * fx[ox];
            want[size_t(ox) * C + ch] = top * (1 - fy[oy]) + bot * fy[oy];
          }
        c.check(out.data(), want, "resize-bilinear-" + dims({H, W, C, Ho, Wo}) + "-row" + std::to_string(oy) +
                                      (windows ? "-windows" : tables ? "-element-tables" : ""));
      }
    }
  }
}

}  // namespace

KernelTestReport test_kernel_table(const KernelTable& t, double tol) {
  Checker c{t, tol, {}};
  Rng rng;
  test_gemm(c, rng);
  test_dwconv(c, rng);
  test_reductions_and_elementwise(c, rng);
  test_im2col(c, rng);
  test_conv_direct(c, rng);
  test_resize(c, rng);
  return c.r;
}

}  // namespace art
