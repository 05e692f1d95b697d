// Kernel implementations over a vector trait V (see vec_*.h). Included once
// per ISA inside that ISA's own namespace, so each instantiation is a
// distinct symbol compiled with its own flags. No std:: templates here:
// a shared inline instantiation could be merged across ISAs by the linker.
//
// Requires: V, MR (GEMM rows per tile), NV (vectors per tile row), DWT
// (output pixels per depthwise strip), DW_SHARE_INPUTS (true where the ISA
// has 32 vector registers).

// Vector registers a depthwise strip may fill with its inputs, weights and
// accumulators: 32 less the scale and shift it also holds (at 31 the 7x7
// strips spilled: 56x56x144 7x7 ~7% slower, and 28 also slower, in a
// 2026-12-06 recheck of one-op plans).
// Strips of up to this many input columns read them through indexed loads
// where the ISA has them (V::kIndexedLoads): the 7x7 stride-1 loop went from
// ~69 to ~31 cycles a kernel row in llvm-mca (icelake-server); dev A/Bs,
// results bit-identical: mbv3-224 entries ~3% faster at 1 thread with up to
// 14 columns, ~3% more with 17 (the stride-2 strips) in alternating processes.
#ifndef ART_DW_IDX_MAX
#define ART_DW_IDX_MAX 17
#endif
#ifndef ART_DW_REGS
#define ART_DW_REGS 30
#endif

static inline V::T act_vec(V::T x, Act act) {
  switch (act) {
    case Act::None: return x;
    case Act::Relu: return V::max(x, V::zero());
    case Act::Relu6: return V::min(V::max(x, V::zero()), V::set1(6.f));
    // hard-swish x * clamp(x + 3, 0, 6) / 6 as x * clamp(x / 6 + 1/2, 0, 1): one
    // FMA in place of an add and a multiply, on every output of the GEMM and
    // depthwise epilogues (mbv3-224 entries ~1.5% faster end to end, a dev
    // A/B); the same value to within rounding (the NumPy reference keeps
    // the textbook form; tests compare within 1e-4 of the output's range)
    case Act::HSwish: {
      V::T g = V::min(V::max(V::fma(x, V::set1(1.f / 6.f), V::set1(0.5f)), V::zero()), V::set1(1.f));
      return V::mul(x, g);
    }
    case Act::HSigmoid:
      return V::min(V::max(V::fma(x, V::set1(1.f / 6.f), V::set1(0.5f)), V::zero()), V::set1(1.f));
    default: return x;   // Sigmoid is applied by the caller (SE gate only)
  }
}

constexpr int NR = NV * V::W;   // the widest tile
constexpr int MR1 = MR * NV < 14 ? MR * NV : 14;   // rows of a one-vector-wide tile

// A full tile's epilogue with its activation and residual known at compile
// time: the same operations, in the same order, as gemm_tile's generic loop.
template <int MR_, int NVT, int ACT, bool RES>
static inline void gemm_store(const GemmArgs& a, typename V::T (&acc)[MR_][NVT], int i, int j) {
  _Pragma("GCC unroll 16")
  for (int v = 0; v < NVT; ++v) {
    const int col = j + v * V::W;
    const typename V::T sc = a.scale ? V::load(a.scale + col) : V::set1(1.f);
    const typename V::T sh = a.shift ? V::load(a.shift + col) : V::zero();
    _Pragma("GCC unroll 16")
    for (int r = 0; r < MR_; ++r) {
      typename V::T y = act_vec(V::fma(acc[r][v], sc, sh), static_cast<Act>(ACT));
      if (RES) y = V::add(y, V::load(a.res + (int64_t)(i + r) * a.ldr + col));
      V::store(a.C + (int64_t)(i + r) * a.ldc + col, y);
    }
  }
}

// One MRxNR tile (rows < MR_ and columns < nr handled by the caller's choice).
// ACT >= 0: a full tile whose activation (ACT) is known at compile time and
// whose residual branch is taken once, so its epilogue is straight-line code
// on the accumulators' registers (with a branch per vector the compiler kept
// the accumulators in memory, which on a short K cost as much as the k loop).
template <int MR_, int NVT, bool FULL, int ACT = -1>
static inline void gemm_tile(const GemmArgs& a, int i, int j, int nr) {
  typename V::T acc[MR_][NVT];
  _Pragma("GCC unroll 16")
  for (int r = 0; r < MR_; ++r)
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NVT; ++v) acc[r][v] = V::zero();
  const float* Ap[MR_];
  _Pragma("GCC unroll 16")
  for (int r = 0; r < MR_; ++r) Ap[r] = a.A + (int64_t)(i + r) * a.lda;
  int64_t ldb;
  const float* b = gemm_bcol(a, j, &ldb);
  int cnt[NVT];
  _Pragma("GCC unroll 16")
  for (int v = 0; v < NVT; ++v) {
    int c = nr - v * V::W;
    cnt[v] = c < 0 ? 0 : (c > V::W ? V::W : c);
  }
  // unrolled: the per-row pointer steps the compiler makes of Ap[r][k] are
  // paid once per 4 k, so the loop issues at the FMA rate, not the front end's
#pragma GCC unroll 4
  for (int k = 0; k < a.K; ++k, b += ldb) {
    typename V::T bv[NVT];
    _Pragma("GCC unroll 16")
    for (int v = 0; v < NVT; ++v) bv[v] = FULL ? V::load(b + v * V::W) : V::load_n(b + v * V::W, cnt[v]);
    _Pragma("GCC unroll 16")
    for (int r = 0; r < MR_; ++r) {
      typename V::T av = V::set1(Ap[r][k]);
      _Pragma("GCC unroll 16")
      for (int v = 0; v < NVT; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
    }
  }
  if constexpr (FULL && ACT >= 0) {   // the residual's branch once for the tile
    if (a.res) gemm_store<MR_, NVT, ACT, true>(a, acc, i, j);
    else gemm_store<MR_, NVT, ACT, false>(a, acc, i, j);
    return;
  }
  _Pragma("GCC unroll 16")
  for (int v = 0; v < NVT; ++v) {
    if (!FULL && cnt[v] == 0) break;
    int col = j + v * V::W;
    typename V::T sc = a.scale ? (FULL ? V::load(a.scale + col) : V::load_n(a.scale + col, cnt[v])) : V::set1(1.f);
    typename V::T sh = a.shift ? (FULL ? V::load(a.shift + col) : V::load_n(a.shift + col, cnt[v])) : V::zero();
    _Pragma("GCC unroll 16")
    for (int r = 0; r < MR_; ++r) {
      typename V::T y = act_vec(V::fma(acc[r][v], sc, sh), a.act);
      float* c = a.C + (int64_t)(i + r) * a.ldc + col;
      if (a.res) {
        const float* rp = a.res + (int64_t)(i + r) * a.ldr + col;
        y = V::add(y, FULL ? V::load(rp) : V::load_n(rp, cnt[v]));
      }
      if (FULL) V::store(c, y); else V::store_n(c, y, cnt[v]);
    }
  }
}

template <int NV_, bool FULL>
static inline void gemm_rows(const GemmArgs& a, int i, int mr, int j, int nr) {
  constexpr int ROWS = NV_ == 1 ? MR1 : MR;
  switch (mr) {
#define ART_MR_CASE(n) case n: if (n <= ROWS) gemm_tile<(n <= ROWS ? n : 1), NV_, FULL>(a, i, j, nr); break;
    ART_MR_CASE(1) ART_MR_CASE(2) ART_MR_CASE(3) ART_MR_CASE(4) ART_MR_CASE(5) ART_MR_CASE(6)
    ART_MR_CASE(7) ART_MR_CASE(8) ART_MR_CASE(9) ART_MR_CASE(10) ART_MR_CASE(11) ART_MR_CASE(12)
    ART_MR_CASE(13) ART_MR_CASE(14)
#undef ART_MR_CASE
    default: break;
  }
}

// The full MR_ x NVT tile for this activation (gemm_tile's ACT), or null
// for an activation only the generic tile applies.
using TileFn = void (*)(const GemmArgs&, int, int, int);
template <int MR_, int NVT>
static TileFn full_tile(Act act) {
  switch (act) {
#define ART_ACT_CASE(A) case A: return &gemm_tile<MR_, NVT, true, static_cast<int>(A)>;
    ART_ACT_CASE(Act::None) ART_ACT_CASE(Act::Relu) ART_ACT_CASE(Act::Relu6) ART_ACT_CASE(Act::HSwish)
    ART_ACT_CASE(Act::HSigmoid)
#undef ART_ACT_CASE
    default: return nullptr;
  }
}

// Column blocks: full NR-wide tiles, then single full vectors, then the
// last < W columns as a half-width tile where the ISA has one (ART_HALF: the
// AVX2 kernels inside the AVX-512 file) or one masked vector. No FMA is spent
// on columns beyond the last vector that holds real ones.
static void gemv(const GemmArgs& a, int n0, int n1);
static void gemm(const GemmArgs& a, int m0, int m1, int n0, int n1);

// A gated GEMM (a fused SE gate): B's columns [n0, n1), their rows scaled
// by the gate, are packed once into a.bpack (K x (n1 - n0)) and used by every
// row tile. Each thread packs its own copy: no cache lines written by one
// core and read by another.
static void gemm_gated(const GemmArgs& a, int m0, int m1, int n0, int n1) {
  const int w = n1 - n0;
  for (int c0 = 0; c0 < w;) {   // one panel's columns at a time (all of them when B is row-major)
    int64_t ld;
    const float* src = gemm_bcol(a, n0 + c0, &ld);
    const int in_panel = a.bk ? kPanel - (n0 + c0 + a.boff) % kPanel : w;
    const int cw = w - c0 < in_panel ? w - c0 : in_panel;
    for (int k = 0; k < a.K; ++k, src += ld) {
      const typename V::T g = V::set1(a.bscale[k]);
      float* dst = a.bpack + (int64_t)k * w + c0;
      for (int c = 0; c < cw; c += V::W) {
        const int n = cw - c < V::W ? cw - c : V::W;
        V::store_n(dst + c, V::mul(V::load_n(src + c, n), g), n);
      }
    }
    c0 += cw;
  }
  GemmArgs p = a;
  p.N = w; p.B = a.bpack; p.ldb = w; p.bk = 0; p.boff = 0; p.bscale = nullptr; p.bpack = nullptr;
  p.C = a.C + n0;
  if (a.scale) p.scale = a.scale + n0;
  if (a.shift) p.shift = a.shift + n0;
  if (a.res) p.res = a.res + n0;
  gemm(p, m0, m1, 0, w);
}

static void gemm(const GemmArgs& a, int m0, int m1, int n0, int n1) {
  if (m0 == 0 && m1 == 1) return gemv(a, n0, n1);
  if (a.bscale) return gemm_gated(a, m0, m1, n0, n1);
  for (int j = n0; j < n1;) {
    const int rem = n1 - j;
#ifdef ART_HALF
    if (rem < V::W) {   // the narrower ISA's own column blocking takes the tail
      ART_HALF::gemm(a, m0, m1, j, n1);
      return;
    }
#endif
    const int nr = rem >= NR ? NR : (rem >= V::W ? V::W : rem);
    // a one-vector tile is as tall as the accumulators allow (MR1 rows):
    // enough independent FMA chains to hide the FMA latency
    // Rows split evenly over the fewest tiles: 49 rows as 7 x 7, not 6 x 8
    // and a 1-row tile that streams the whole B panel again for one row.
    const int rows = nr == NR ? MR : MR1;
    const int tiles = (m1 - m0 + rows - 1) / rows;
    const int base = tiles ? (m1 - m0) / tiles : 0, extra = tiles ? (m1 - m0) % tiles : 0;
    // the tile of full size (MR x NR, or MR1 x W) with its epilogue's branches compiled out
    // (and one row less: the even split makes 7-row tiles of 14, 28 and 49 rows)
    const TileFn full = nr == NR ? full_tile<MR, NV>(a.act) : nr == V::W ? full_tile<MR1, 1>(a.act) : nullptr;
    const TileFn less = nr == NR ? full_tile<MR - 1, NV>(a.act) : nr == V::W ? full_tile<MR1 - 1, 1>(a.act) : nullptr;
    for (int t = 0, i = m0; t < tiles; ++t) {
      const int mr = base + (t < extra ? 1 : 0);
      if (full && mr == rows) full(a, i, j, nr);
      else if (less && mr == rows - 1) less(a, i, j, nr);
      else if (nr == NR) gemm_rows<NV, true>(a, i, mr, j, nr);
      else if (nr == V::W) gemm_rows<1, true>(a, i, mr, j, nr);
      else gemm_rows<1, false>(a, i, mr, j, nr);
      i += mr;
    }
    j += nr;
  }
}

// Matrix-vector (one row of A: linear layers, SE): B is streamed row by row,
// CV vectors of columns at a time, so each weight is read once, in order.
// Wide GEMVs (N > GVN vectors) are memory-bound: one FMA chain per output
// vector, in k order. Narrow ones (an SE's reduce conv: N of 24-72 over
// K of 96-288) would wait on the FMA latency with a chain per vector, so
// each output vector sums P interleaved partial chains (rows k = p mod P),
// added pairwise at the end. P depends on N alone, never on the columns a
// thread takes, so any column split gives the same bits.
constexpr int GV = 8;                                // vectors per chunk of a wide GEMV
constexpr int GVN = 4;                               // at most this many vectors: a narrow GEMV
constexpr int GP_MAX = DW_SHARE_INPUTS ? 4 : 2;      // partial chains (32 vector registers: 4)

template <bool FULL, bool G, bool PAN, int CV, int P>
static inline void gemv_chunk(const GemmArgs& a, int j, int cols) {
  typename V::T acc[P][CV];
  int cnt[CV];
  for (int v = 0; v < CV; ++v) {
    for (int p = 0; p < P; ++p) acc[p][v] = V::zero();
    int c = cols - v * V::W;
    cnt[v] = c < 0 ? 0 : (c > V::W ? V::W : c);
  }
  // B's rows: one run of CV vectors for a row-major B; in panels, one run
  // of VPP vectors per panel (rows kPanel floats apart, the last panel's
  // narrower), NP panels per chunk (a chunk never crosses a panel it does
  // not start on, see gemv)
  constexpr int VPP = !PAN ? CV : (kPanel / V::W < CV ? kPanel / V::W : CV), NP = CV / VPP;
  static_assert(CV % VPP == 0, "a GEMV chunk covers whole panels");
  const float* bp[NP];
  int64_t ld[NP];
  for (int q = 0; q < NP; ++q) bp[q] = gemm_bcol(a, j + (cnt[q * VPP] > 0 ? q * VPP * V::W : 0), &ld[q]);
  // one row of B into partial chain p
  auto row = [&](int k, int p) {
    // a gate scales the product as gemm_gated's packed rows do: (b * g) * a
    const typename V::T av = V::set1(a.A[k]);
    const typename V::T g = G ? V::set1(a.bscale[k]) : V::zero();
    for (int q = 0; q < NP; ++q) {
      for (int u = 0; u < VPP; ++u) {
        const int v = q * VPP + u;
        if (!FULL && cnt[v] == 0) continue;
        const float* b = bp[q] + u * V::W;
        typename V::T bv = FULL ? V::load(b) : V::load_n(b, cnt[v]);
        if (G) bv = V::mul(bv, g);
        acc[p][v] = V::fma(av, bv, acc[p][v]);
      }
      bp[q] += ld[q];
    }
  };
  int k = 0;
  for (; k + P <= a.K; k += P)
    for (int p = 0; p < P; ++p) row(k + p, p);
  for (; k < a.K; ++k) row(k, 0);
  for (int v = 0; v < CV; ++v) {
    if (!FULL && cnt[v] == 0) break;
    typename V::T sum = acc[0][v];
    if (P == 2) sum = V::add(acc[0][v], acc[P - 1][v]);
    if (P == 4) sum = V::add(V::add(acc[0][v], acc[1 % P][v]), V::add(acc[2 % P][v], acc[3 % P][v]));
    const int col = j + v * V::W;
    const int n = FULL ? V::W : cnt[v];
    typename V::T sc = a.scale ? V::load_n(a.scale + col, n) : V::set1(1.f);
    typename V::T sh = a.shift ? V::load_n(a.shift + col, n) : V::zero();
    typename V::T y = act_vec(V::fma(sum, sc, sh), a.act);
    if (a.res) y = V::add(y, V::load_n(a.res + col, n));
    V::store_n(a.C + col, y, n);
  }
}

template <bool G, bool PAN, int CV, int P>
static void gemv_cols(const GemmArgs& a, int n0, int n1) {
  for (int j = n0; j < n1;) {
    int cols = n1 - j < CV * V::W ? n1 - j : CV * V::W;
    // in panels, chunks start on a panel: a start inside one (a thread's
    // columns) first takes the rest of that panel alone
    const int into = PAN ? (j + a.boff) % kPanel : 0;
    if (into && cols > kPanel - into) cols = kPanel - into;
    if (cols == CV * V::W) gemv_chunk<true, G, PAN, CV, P>(a, j, cols);
    else gemv_chunk<false, G, PAN, CV, P>(a, j, cols);
    j += cols;
  }
}

template <bool G, bool PAN>
static void gemv_layout(const GemmArgs& a, int n0, int n1) {
  const int nv = (a.N + V::W - 1) / V::W;   // the whole GEMV's width, whatever this thread's columns
  if (nv > GVN) gemv_cols<G, PAN, GV, 1>(a, n0, n1);
  else if (nv * 2 <= GVN && GP_MAX >= 4) gemv_cols<G, PAN, GVN / 2, GP_MAX>(a, n0, n1);
  else gemv_cols<G, PAN, GVN, 2>(a, n0, n1);
}

static void gemv(const GemmArgs& a, int n0, int n1) {
  if (a.bk) a.bscale ? gemv_layout<true, true>(a, n0, n1) : gemv_layout<false, true>(a, n0, n1);
  else a.bscale ? gemv_layout<true, false>(a, n0, n1) : gemv_layout<false, false>(a, n0, n1);
}

static void channel_sum_strided(const float* x, int64_t pixels, int C, int64_t stride, float mul, float* out) {
  for (int c = 0; c < C; c += V::W) {
    const int n = C - c < V::W ? C - c : V::W;
    typename V::T acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};   // 4 chains hide the add latency
    int64_t i = 0;
    for (; i + 4 <= pixels; i += 4)
      for (int u = 0; u < 4; ++u) acc[u] = V::add(acc[u], V::load_n(x + (i + u) * stride + c, n));
    for (; i < pixels; ++i) acc[0] = V::add(acc[0], V::load_n(x + i * stride + c, n));
    V::store_n(out + c, V::mul(V::add(V::add(acc[0], acc[1]), V::add(acc[2], acc[3])), V::set1(mul)), n);
  }
}

static void channel_sum(const float* x, int64_t pixels, int C, float mul, float* out) {
  channel_sum_strided(x, pixels, C, C, mul, out);
}

// sigmoid(x) = (1 + tanh(x / 2)) / 2, tanh as a [13/6] rational on [-7.9, 7.9]
// (Eigen's float tanh; error a few ulp), so it vectorises without exp.
static inline V::T sigmoid_vec(V::T x) {
  const V::T h = V::mul(x, V::set1(0.5f));
  const V::T t = V::min(V::max(h, V::set1(-7.90531110763549805f)), V::set1(7.90531110763549805f));
  const V::T t2 = V::mul(t, t);
  V::T p = V::set1(-2.76076847742355e-16f);
  p = V::fma(p, t2, V::set1(2.00018790482477e-13f));
  p = V::fma(p, t2, V::set1(-8.60467152213735e-11f));
  p = V::fma(p, t2, V::set1(5.12229709037114e-08f));
  p = V::fma(p, t2, V::set1(1.48572235717979e-05f));
  p = V::fma(p, t2, V::set1(6.37261928875436e-04f));
  p = V::fma(p, t2, V::set1(4.89352455891786e-03f));
  p = V::mul(p, t);
  V::T q = V::set1(1.19825839466702e-06f);
  q = V::fma(q, t2, V::set1(1.18534705686654e-04f));
  q = V::fma(q, t2, V::set1(2.26843463243900e-03f));
  q = V::fma(q, t2, V::set1(4.89352518554385e-03f));
  return V::fma(V::div(p, q), V::set1(0.5f), V::set1(0.5f));
}

static void activation(const float* x, int64_t n, Act act, float* out) {
  int64_t i = 0;
  for (; i < n; i += V::W) {
    const int m = n - i < V::W ? (int)(n - i) : V::W;
    const typename V::T v = m == V::W ? V::load(x + i) : V::load_n(x + i, m);
    const typename V::T y = act == Act::Sigmoid ? sigmoid_vec(v) : act_vec(v, act);
    if (m == V::W) V::store(out + i, y); else V::store_n(out + i, y, m);
  }
}

static inline void copy_floats(float* d, const float* s, int n) {
  if (n < V::W) {   // a short span (a stem with few channels): plain moves beat a masked vector
    for (int j = 0; j < n; ++j) d[j] = s[j];
    return;
  }
  int j = 0;
  for (; j + V::W <= n; j += V::W) V::store(d + j, V::load(s + j));
  if (j < n) V::store_n(d + j, V::load_n(s + j, n - j), n - j);
}

static inline void zero_floats(float* d, int n) {
  if (n < V::W) {
    for (int j = 0; j < n; ++j) d[j] = 0.f;
    return;
  }
  int j = 0;
  for (; j + V::W <= n; j += V::W) V::store(d + j, V::zero());
  if (j < n) V::store_n(d + j, V::zero(), n - j);
}

static void im2col_row(const Im2colArgs& a, int oy, float* cols) {
  const int k = a.k, p = k / 2, C = a.C;
  const int64_t kk = (int64_t)k * k * C;
  for (int ox = 0; ox < a.Wo; ++ox) {
    float* row = cols + (int64_t)ox * kk;
    const int ix0 = ox * a.stride - p;
    const bool inside_x = ix0 >= 0 && ix0 + k <= a.W;
    for (int ky = 0; ky < k; ++ky) {
      const int iy = oy * a.stride - p + ky;
      float* d = row + (int64_t)ky * k * C;
      if (iy < 0 || iy >= a.H) {
        zero_floats(d, k * C);
      } else if (inside_x) {   // the k taps of this kernel row are contiguous in NHWC
        copy_floats(d, a.in + ((int64_t)iy * a.W + ix0) * C, k * C);
      } else {
        for (int kx = 0; kx < k; ++kx) {
          const int ix = ix0 + kx;
          if (ix < 0 || ix >= a.W) zero_floats(d + kx * C, C);
          else copy_floats(d + kx * C, a.in + ((int64_t)iy * a.W + ix) * C, C);
        }
      }
    }
  }
}

static void resize_row(const ResizeArgs& a, int oy, float* out) {
  const int C = a.C;
  const float fy = a.fy[oy];
  const float* r0 = a.in + (int64_t)a.ry0[oy] * a.W * C;
  const float* r1 = a.in + (int64_t)a.ry1[oy] * a.W * C;
  if (C < V::W && a.xe0) {   // few channels (a grey or RGB input): a vector of row elements at a time
    const int n = a.Wo * C;
    const typename V::T wy0 = V::set1(1.f - fy), wy1 = V::set1(fy), one = V::set1(1.f), neg = V::set1(-1.f);
    int j = 0;
    for (; j + V::W <= n; j += V::W) {
      const typename V::T fx = V::load(a.fxe + j);
      const typename V::T gx = V::fma(fx, neg, one);    // 1 - fx, rounded once as the scalar path does
      typename V::T x00, x01, x10, x11;   // (row, tap)
      const int32_t win = a.xwin ? a.xwin[j / V::W] : -1;
      if (win >= 0) {   // both taps of every lane inside one window of 2W floats
        x00 = V::permute2(r0 + win, a.xp0 + j); x01 = V::permute2(r0 + win, a.xp1 + j);
        x10 = V::permute2(r1 + win, a.xp0 + j); x11 = V::permute2(r1 + win, a.xp1 + j);
      } else {
        x00 = V::gather(r0, a.xe0 + j); x01 = V::gather(r0, a.xe1 + j);
        x10 = V::gather(r1, a.xe0 + j); x11 = V::gather(r1, a.xe1 + j);
      }
      const typename V::T top = V::add(V::mul(x00, gx), V::mul(x01, fx));
      const typename V::T bot = V::add(V::mul(x10, gx), V::mul(x11, fx));
      V::store(out + j, V::add(V::mul(top, wy0), V::mul(bot, wy1)));
    }
    for (; j < n; ++j) {
      const float fx = a.fxe[j];
      const float top = r0[a.xe0[j]] * (1.f - fx) + r0[a.xe1[j]] * fx;
      const float bot = r1[a.xe0[j]] * (1.f - fx) + r1[a.xe1[j]] * fx;
      out[j] = top * (1.f - fy) + bot * fy;
    }
    return;
  }
  if (C < V::W) {   // few channels, no element tables: plain floats beat a masked vector per pixel
    for (int ox = 0; ox < a.Wo; ++ox) {
      const float fx = a.fx[ox];
      const float* p0 = r0 + (int64_t)a.rx0[ox] * C;
      const float* p1 = r0 + (int64_t)a.rx1[ox] * C;
      const float* q0 = r1 + (int64_t)a.rx0[ox] * C;
      const float* q1 = r1 + (int64_t)a.rx1[ox] * C;
      float* o = out + (int64_t)ox * C;
      for (int c = 0; c < C; ++c) {
        const float top = p0[c] * (1.f - fx) + p1[c] * fx;
        const float bot = q0[c] * (1.f - fx) + q1[c] * fx;
        o[c] = top * (1.f - fy) + bot * fy;
      }
    }
    return;
  }
  const typename V::T wy0 = V::set1(1.f - fy), wy1 = V::set1(fy);
  for (int ox = 0; ox < a.Wo; ++ox) {
    const float fx = a.fx[ox];
    const typename V::T wx0 = V::set1(1.f - fx), wx1 = V::set1(fx);
    const float* p0 = r0 + (int64_t)a.rx0[ox] * C;
    const float* p1 = r0 + (int64_t)a.rx1[ox] * C;
    const float* q0 = r1 + (int64_t)a.rx0[ox] * C;
    const float* q1 = r1 + (int64_t)a.rx1[ox] * C;
    float* o = out + (int64_t)ox * C;
    for (int c = 0; c < C; c += V::W) {
      const int n = C - c < V::W ? C - c : V::W;
      const typename V::T top = V::add(V::mul(V::load_n(p0 + c, n), wx0), V::mul(V::load_n(p1 + c, n), wx1));
      const typename V::T bot = V::add(V::mul(V::load_n(q0 + c, n), wx0), V::mul(V::load_n(q1 + c, n), wx1));
      V::store_n(o + c, V::add(V::mul(top, wy0), V::mul(bot, wy1)), n);
    }
  }
}

static void scale_channels(const float* x, int64_t pixels, int C, const float* g, float* out) {
  for (int64_t i = 0; i < pixels; ++i)
    for (int c = 0; c < C; c += V::W) {
      const int n = C - c < V::W ? C - c : V::W;
      if (n == V::W) V::store(out + i * C + c, V::mul(V::load(x + i * C + c), V::load(g + c)));
      else V::store_n(out + i * C + c, V::mul(V::load_n(x + i * C + c, n), V::load_n(g + c, n)), n);
    }
}

static void add(const float* a, const float* b, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(out + i, V::add(V::load(a + i), V::load(b + i)));
  if (i < n) V::store_n(out + i, V::add(V::load_n(a + i, (int)(n - i)), V::load_n(b + i, (int)(n - i))), (int)(n - i));
}

// One output pixel, any kernel size, taps clipped at the borders.
template <bool FULL>
static inline void dw_pixel(const DwArgs& a, int oy, int ox, int c, int n, V::T sc, V::T sh) {
  const int k = a.k, p = k / 2, C = a.C;
  const int iy0 = oy * a.stride - p, ix0 = ox * a.stride - p;
  const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = iy0 + k > a.H ? a.H - iy0 : k;
  const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = ix0 + k > a.W ? a.W - ix0 : k;
  typename V::T acc = V::zero();
  for (int ky = ky0; ky < ky1; ++ky) {
    const float* irow = dw_row_ptr(a, iy0 + ky) + (int64_t)ix0 * C + c;
    const float* wrow = a.w + (int64_t)ky * k * a.wc + c;
    for (int kx = kx0; kx < kx1; ++kx) {
      typename V::T x = FULL ? V::load(irow + (int64_t)kx * C) : V::load_n(irow + (int64_t)kx * C, n);
      typename V::T w = FULL ? V::load(wrow + (int64_t)kx * a.wc) : V::load_n(wrow + (int64_t)kx * a.wc, n);
      acc = V::fma(x, w, acc);
    }
  }
  typename V::T y = act_vec(V::fma(acc, sc, sh), a.act);
  float* o = a.out + ((int64_t)(oy - a.oy_base) * a.Wo + ox) * (a.ldo ? a.ldo : C) + c;
  if (FULL) V::store(o, y); else V::store_n(o, y, n);
}

// T output vectors, O floats apart: act(y[t]) stored (the first n lanes
// where not FULL).
template <int T, bool FULL, int ACT>
static inline void store_act_n(typename V::T (&y)[T], float* o, int64_t O, int n) {
  _Pragma("GCC unroll 16")
  for (int t = 0; t < T; ++t) {
    const typename V::T v = act_vec(y[t], static_cast<Act>(ACT));
    if (FULL) V::store(o + (int64_t)t * O, v); else V::store_n(o + (int64_t)t * O, v, n);
  }
}

// The same with the activation's branch taken once for the T vectors: with
// a branch per vector the compiler kept a kernel's accumulators in memory.
template <int T, bool FULL>
static inline void store_act(typename V::T (&y)[T], Act act, float* o, int64_t O, int n) {
  switch (act) {
    case Act::Relu: store_act_n<T, FULL, static_cast<int>(Act::Relu)>(y, o, O, n); break;
    case Act::Relu6: store_act_n<T, FULL, static_cast<int>(Act::Relu6)>(y, o, O, n); break;
    case Act::HSwish: store_act_n<T, FULL, static_cast<int>(Act::HSwish)>(y, o, O, n); break;
    case Act::HSigmoid: store_act_n<T, FULL, static_cast<int>(Act::HSigmoid)>(y, o, O, n); break;
    default: store_act_n<T, FULL, static_cast<int>(Act::None)>(y, o, O, n); break;   // None
  }
}

// Vectors I..N-1 of a strip's columns (N <= 17), column i at b + i * st
// bytes, through indexed loads: 4 bases (b, b + st, b + 2 st, b + 5 st) and 2
// index registers (st, 3 st) reach columns 0-14, two more bases 15 and 16
// (a stride-2 strip's 17). EDGE: columns outside
// [0, W) of the row (x0 + i) are zeros (the padding).
template <int I, int N, bool EDGE>
static inline void dw_cols(typename V::T* x, const float* b, int64_t st, int x0, int W) {
  if constexpr (I < N) {
    const int64_t st3 = 3 * st;
    const float* b1 = reinterpret_cast<const float*>(reinterpret_cast<const char*>(b) + st);
    const float* b2 = reinterpret_cast<const float*>(reinterpret_cast<const char*>(b) + 2 * st);
    const float* b5 = reinterpret_cast<const float*>(reinterpret_cast<const char*>(b2) + st3);
    if (EDGE && (x0 + I < 0 || x0 + I >= W)) x[I] = V::zero();
    else if constexpr (I == 0) x[I] = V::load(b);
    else if constexpr (I == 1) x[I] = V::template load_at<1>(b, st);
    else if constexpr (I == 2) x[I] = V::template load_at<2>(b, st);
    else if constexpr (I == 3) x[I] = V::template load_at<1>(b, st3);
    else if constexpr (I == 4) x[I] = V::template load_at<4>(b, st);
    else if constexpr (I == 5) x[I] = V::template load_at<4>(b1, st);
    else if constexpr (I == 6) x[I] = V::template load_at<2>(b, st3);
    else if constexpr (I == 7) x[I] = V::template load_at<2>(b1, st3);
    else if constexpr (I == 8) x[I] = V::template load_at<8>(b, st);
    else if constexpr (I == 9) x[I] = V::template load_at<8>(b1, st);
    else if constexpr (I == 10) x[I] = V::template load_at<8>(b2, st);
    else if constexpr (I == 11) x[I] = V::template load_at<2>(b5, st3);
    else if constexpr (I == 12) x[I] = V::template load_at<4>(b, st3);
    else if constexpr (I == 13) x[I] = V::template load_at<4>(b1, st3);
    else if constexpr (I == 14) x[I] = V::template load_at<4>(b2, st3);
    else if constexpr (I == 15) x[I] = V::template load_at<4>(reinterpret_cast<const float*>(reinterpret_cast<const char*>(b) + st3), st3);
    else {
      static_assert(I == 16, "indexed loads reach 17 columns");
      x[I] = V::template load_at<4>(reinterpret_cast<const float*>(reinterpret_cast<const char*>(b) + 4 * st), st3);
    }
    dw_cols<I + 1, N, EDGE>(x, b, st, x0, W);
  }
}

// T output pixels of one row: the kernel row's K weights stay in registers
// while T accumulators sweep it. EDGE strips may reach past the left or right
// border, where the input is zero (the padding). Taps are accumulated in the
// same order everywhere (ky, then kx), so a pixel's value does not depend on
// which strip or thread computed it.
// P partial sums per output (the kernel row's taps alternate between them):
// P = 2 doubles the independent FMA chains a strip has in flight, at the
// cost of a narrower strip (dw_tile); dwconv_select picks per shape.
template <int K, int S, bool FULL, int T, bool EDGE, int P>
static inline void dw_strip(const DwArgs& a, int oy, int ox, int ky0, int ky1, const float* const* rp, int c, int n,
                            V::T sc, V::T sh) {
  const int C = a.C, p = K / 2;
  const int ix0 = ox * S - p;
  typename V::T acc[P][T];
  _Pragma("GCC unroll 4")
  for (int q = 0; q < P; ++q)
    _Pragma("GCC unroll 16")
    for (int t = 0; t < T; ++t) acc[q][t] = V::zero();
  constexpr int NX = S * (T - 1) + K;
  // indexed loads (see VecAVX512::load_at): columns from 4 bases and 2 strides
  constexpr bool IDX = V::kIndexedLoads && FULL && DW_SHARE_INPUTS && NX + K + P * T <= ART_DW_REGS && NX <= ART_DW_IDX_MAX;
  const int64_t cs = (int64_t)C * 4, ws = a.wc * 4;   // bytes from one input column / weight column to the next
  for (int ky = ky0; ky < ky1; ++ky) {
    const float* wrow = a.w + (int64_t)ky * K * a.wc + c;
    typename V::T wv[K];
    const float* irow = rp[ky] + (int64_t)ix0 * C + c;
    if constexpr (IDX) {
      dw_cols<0, K, false>(wv, wrow, ws, 0, 0);
    } else {
      _Pragma("GCC unroll 16")
      for (int kx = 0; kx < K; ++kx) wv[kx] = FULL ? V::load(wrow + (int64_t)kx * a.wc) : V::load_n(wrow + (int64_t)kx * a.wc, n);
    }
    if constexpr (IDX) {
      typename V::T xin[NX];
      dw_cols<0, NX, EDGE>(xin, irow, cs, ix0, a.W);
      _Pragma("GCC unroll 16")
      for (int kx = 0; kx < K; ++kx)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; ++t) acc[kx % P][t] = V::fma(xin[t * S + kx], wv[kx], acc[kx % P][t]);
    } else if constexpr (DW_SHARE_INPUTS && NX + K + P * T <= ART_DW_REGS) {
      // the row's input columns are loaded once each and shared by the
      // accumulators whose windows overlap them, where inputs, weights and
      // accumulators all fit the 32 registers with scale and shift (no spills)
      typename V::T xin[NX];
      _Pragma("GCC unroll 32")
      for (int i = 0; i < NX; ++i) {
        if (EDGE && (ix0 + i < 0 || ix0 + i >= a.W)) xin[i] = V::zero();
        else xin[i] = FULL ? V::load(irow + (int64_t)i * C) : V::load_n(irow + (int64_t)i * C, n);
      }
      _Pragma("GCC unroll 16")
      for (int kx = 0; kx < K; ++kx)
        _Pragma("GCC unroll 16")
        for (int t = 0; t < T; ++t) acc[kx % P][t] = V::fma(xin[t * S + kx], wv[kx], acc[kx % P][t]);
    } else {
      for (int kx = 0; kx < K; ++kx)
        for (int t = 0; t < T; ++t) {
          const int i = t * S + kx;
          if (EDGE && (ix0 + i < 0 || ix0 + i >= a.W)) continue;
          const float* ip = irow + (int64_t)i * C;
          acc[kx % P][t] = V::fma(FULL ? V::load(ip) : V::load_n(ip, n), wv[kx], acc[kx % P][t]);
        }
    }
  }
  const int64_t O = a.ldo ? a.ldo : C;
  float* o = a.out + ((int64_t)(oy - a.oy_base) * a.Wo + ox) * O + c;
  _Pragma("GCC unroll 16")
  for (int t = 0; t < T; ++t) {
    _Pragma("GCC unroll 4")
    for (int q = 1; q < P; ++q) acc[0][t] = V::add(acc[0][t], acc[q][t]);
    acc[0][t] = V::fma(acc[0][t], sc, sh);
  }
  store_act<T, FULL>(acc[0], a.act, o, O, n);
}

// Output pixels per strip for a KxK, stride-S kernel: DWT where inputs are
// not shared; otherwise as many as fit ART_DW_REGS registers with the shared
// input columns (S*(T-1)+K), the K weights and T accumulators (up to 16).
template <int K, int S, int P>
constexpr int dw_tile() {
  if (!DW_SHARE_INPUTS) return DWT;
  int t = 16;
  while (t > 1 && S * (t - 1) + 2 * K + P * t > ART_DW_REGS) --t;
  return t;
}

// Output pixels [ox, end) of one row in strips of 8 (where the tile is
// wider), then 4, 2, 1.
template <int K, int S, bool FULL, bool EDGE, int P>
static inline void dw_span(const DwArgs& a, int oy, int ox, int end, int ky0, int ky1, const float* const* rp, int c,
                           int n, V::T sc, V::T sh) {
  constexpr int T = dw_tile<K, S, P>();
  if (T > 8)
    for (; ox + 8 <= end; ox += 8) dw_strip<K, S, FULL, (T > 8 ? 8 : 1), EDGE, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
  if (T > 4)
    for (; ox + 4 <= end; ox += 4) dw_strip<K, S, FULL, (T > 4 ? 4 : 1), EDGE, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
  for (; ox + 2 <= end; ox += 2) dw_strip<K, S, FULL, 2, EDGE, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
  if (ox < end) dw_strip<K, S, FULL, 1, EDGE, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
}

// One output row: strips of dw_tile() pixels across the whole row (a strip
// that reaches into the padding reads zeros there: EDGE), the rest in
// narrower strips. Narrow strips only at the end keep the FMA chains
// of the row as many as the ISA needs.
template <int K, int S, bool FULL, int P>
static inline void dw_row(const DwArgs& a, int oy, int lo, int hi, int c, int n, V::T sc, V::T sh) {
  const int iy0 = oy * S - K / 2;
  const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = iy0 + K > a.H ? a.H - iy0 : K;
  // the input rows' addresses once per row, not per strip (a ring slot is a division)
  const float* rp[K];
  _Pragma("GCC unroll 16")
  for (int ky = 0; ky < K; ++ky) rp[ky] = ky >= ky0 && ky < ky1 ? dw_row_ptr(a, iy0 + ky) : nullptr;
  constexpr int T = dw_tile<K, S, P>();
  int ox = 0;
  for (; ox + T <= a.Wo; ox += T) {
    if (ox < lo || ox + T > hi) dw_strip<K, S, FULL, T, true, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
    else dw_strip<K, S, FULL, T, false, P>(a, oy, ox, ky0, ky1, rp, c, n, sc, sh);
  }
  if (ox < a.Wo) dw_span<K, S, FULL, true, P>(a, oy, ox, a.Wo, ky0, ky1, rp, c, n, sc, sh);
}

template <int K, int S, int P>
static void dw_fixed(const DwArgs& a, int oy0, int oy1) {
  const int p = K / 2, C = a.C;
  // output columns whose window needs no x padding
  int lo = (p + S - 1) / S;
  int hi = a.W - K + p >= 0 ? (a.W - K + p) / S + 1 : 0;
  if (hi > a.Wo) hi = a.Wo;
  if (lo > hi) lo = hi;
  // Bands of output rows, channel blocks inside: the input rows one band
  // reads in one channel block ((band-1)*S + K rows of W 64-byte pieces)
  // stay in L1 while the band's rows reuse them, instead of coming from L2
  // K times over. The band's input rows take at most ART_DW_BAND_BYTES:
  // 32 KB measured best of 16/32/64 KB on a 48 KB L1 for 7x7 at 56x56x144,
  // 5x5 at 28x28x240 and 3x3 at 32x32x72 (16 and 64 KB 4-10% slower in a
  // 2026-12-06 recheck of one-op plans), though 7x7 at 14x14x672 ran ~10%
  // faster at 16 or 64 KB; the rows also fit a 32 KB L1 (Cortex-A7x; not
  // measured there).
  const int64_t piece = (int64_t)a.W * V::W * 4;
  int band = 1;
#ifndef ART_DW_BAND_BYTES
#define ART_DW_BAND_BYTES (32 << 10)
#endif
  while (band < 16 && ((band * 2 - 1) * S + K) * piece <= ART_DW_BAND_BYTES) band *= 2;
  for (int b0 = oy0; b0 < oy1; b0 += band) {
    const int b1 = b0 + band < oy1 ? b0 + band : oy1;
    for (int c = 0; c < C; c += V::W) {
      const int n = C - c < V::W ? C - c : V::W;
      if (n == V::W) {
        const typename V::T sc = V::load(a.scale + c), sh = V::load(a.shift + c);
        for (int oy = b0; oy < b1; ++oy) dw_row<K, S, true, P>(a, oy, lo, hi, c, n, sc, sh);
      } else {
#ifdef ART_HALF
        if (n == ART_HALF::V::W) {   // a half-width tail: the narrower ISA's own rows
          for (int oy = b0; oy < b1; ++oy) ART_HALF::dw_fixed_cols<K, S>(a, oy, c);
          continue;
        }
#endif
        const typename V::T sc = V::load_n(a.scale + c, n), sh = V::load_n(a.shift + c, n);
        for (int oy = b0; oy < b1; ++oy) dw_row<K, S, false, P>(a, oy, lo, hi, c, n, sc, sh);
      }
    }
  }
}

// One output row, channels [c, c + W) only: the tail of a wider ISA's row.
template <int K, int S>
static void dw_fixed_cols(const DwArgs& a, int oy, int c) {
  const int p = K / 2;
  int lo = (p + S - 1) / S;
  int hi = a.W - K + p >= 0 ? (a.W - K + p) / S + 1 : 0;
  if (hi > a.Wo) hi = a.Wo;
  if (lo > hi) lo = hi;
  dw_row<K, S, true, 1>(a, oy, lo, hi, c, V::W, V::load(a.scale + c), V::load(a.shift + c));
}

static void dw_generic(const DwArgs& a, int oy0, int oy1) {
  for (int oy = oy0; oy < oy1; ++oy)
    for (int c = 0; c < a.C; c += V::W) {
      const int n = a.C - c < V::W ? a.C - c : V::W;
      const bool full = n == V::W;
      const typename V::T sc = full ? V::load(a.scale + c) : V::load_n(a.scale + c, n);
      const typename V::T sh = full ? V::load(a.shift + c) : V::load_n(a.shift + c, n);
      for (int ox = 0; ox < a.Wo; ++ox)
        full ? dw_pixel<true>(a, oy, ox, c, n, sc, sh) : dw_pixel<false>(a, oy, ox, c, n, sc, sh);
    }
}

// The kernel for (k, stride) and output width wo: at stride 1, strips of 2
// partial sums where a row has few strips (short rows: more chains per
// strip) and for 5x5; one partial sum with wider strips otherwise (measured
// on AVX-512; the register budget holds on NEON too).
// Direct convolution: R output pixels x one vector of output channels per
// tile, taps in (ky, kx, ci) order — the order of im2col's K — each a
// broadcast of the input and one weight vector. EDGE tiles skip taps that
// fall into the padding. K, S, CIN are compile-time for the common stems
// (input offsets become constants), 0 for "read from the arguments".
template <int R, bool EDGE, bool FULL, int K, int S, int CIN>
static inline void conv_tile(const ConvArgs& a, int oy, int ox0, int j, int n) {
  const int k = K ? K : a.k, st = S ? S : a.stride, Cin = CIN ? CIN : a.Cin, p = k / 2;
  typename V::T acc[R];
  _Pragma("GCC unroll 16")
  for (int r = 0; r < R; ++r) acc[r] = V::zero();
  for (int ky = 0; ky < k; ++ky) {
    const int iy = oy * st - p + ky;
    if (iy < 0 || iy >= a.H) continue;
    const float* xrow = a.in + (int64_t)iy * a.W * Cin;
    for (int kx = 0; kx < k; ++kx) {
      const float* wp = a.w + (int64_t)(ky * k + kx) * Cin * a.ldw + j;
      const int ixb = ox0 * st - p + kx;
      const float* xp = xrow + (int64_t)ixb * Cin;   // pixel r's tap at xp[r * st * Cin + ci]
      for (int ci = 0; ci < Cin; ++ci, wp += a.ldw) {
        const typename V::T wv = FULL ? V::load(wp) : V::load_n(wp, n);
        for (int r = 0; r < R; ++r) {
          if (EDGE && (ixb + r * st < 0 || ixb + r * st >= a.W)) continue;
          acc[r] = V::fma(V::set1(xp[r * st * Cin + ci]), wv, acc[r]);
        }
      }
    }
  }
  const typename V::T sc = a.scale ? V::load_n(a.scale + j, n) : V::set1(1.f);
  const typename V::T sh = a.shift ? V::load_n(a.shift + j, n) : V::zero();
  float* o = a.out + ((int64_t)(oy - a.oy_base) * a.Wo + ox0) * a.N + j;
  _Pragma("GCC unroll 16")
  for (int r = 0; r < R; ++r) acc[r] = V::fma(acc[r], sc, sh);
  store_act<R, FULL>(acc, a.act, o, a.N, n);
}

template <bool FULL, int K, int S, int CIN>
static inline void conv_tiles(const ConvArgs& a, int oy, int j, int n) {
  constexpr int R = MR1;
  const int p = a.k / 2;
  // output columns whose taps are all inside the image
  int lo = (p + a.stride - 1) / a.stride;
  int hi = a.W - a.k + p >= 0 ? (a.W - a.k + p) / a.stride + 1 : 0;
  if (hi > a.Wo) hi = a.Wo;
  if (lo > hi) lo = hi;
  // the border columns one pixel at a time with the padding checks, the
  // columns between in tiles without them (a narrow image, e.g. 28 wide,
  // would otherwise be all border tiles)
  int ox = 0;
  for (; ox < lo; ++ox) conv_tile<1, true, FULL, K, S, CIN>(a, oy, ox, j, n);
  for (; ox + R <= hi; ox += R) conv_tile<R, false, FULL, K, S, CIN>(a, oy, ox, j, n);
  for (; ox + 4 <= hi; ox += 4) conv_tile<(R > 4 ? 4 : 1), false, FULL, K, S, CIN>(a, oy, ox, j, n);
  for (; ox < hi; ++ox) conv_tile<1, false, FULL, K, S, CIN>(a, oy, ox, j, n);
  for (; ox < a.Wo; ++ox) conv_tile<1, true, FULL, K, S, CIN>(a, oy, ox, j, n);
}

template <int K, int S, int CIN>
static void conv_row_fixed(const ConvArgs& a, int oy) {
  for (int j = 0; j < a.N; j += V::W) {
    const int n = a.N - j < V::W ? a.N - j : V::W;
    if (n == V::W) conv_tiles<true, K, S, CIN>(a, oy, j, n);
    else conv_tiles<false, K, S, CIN>(a, oy, j, n);
  }
}

static void conv_row(const ConvArgs& a, int oy) {
  if (a.k == 3 && a.stride == 2 && a.Cin == 3) return conv_row_fixed<3, 2, 3>(a, oy);   // RGB stems
  if (a.k == 3 && a.stride == 1 && a.Cin == 3) return conv_row_fixed<3, 1, 3>(a, oy);
  if (a.k == 3 && a.stride == 1 && a.Cin == 1) return conv_row_fixed<3, 1, 1>(a, oy);   // grey stems
  if (a.k == 3 && a.stride == 2 && a.Cin == 1) return conv_row_fixed<3, 2, 1>(a, oy);
  conv_row_fixed<0, 0, 0>(a, oy);
}

static DwKernel dwconv_select(int k, int stride, int wo, bool* specialised) {
  const bool split = DW_SHARE_INPUTS && stride == 1 && (wo <= 14 || k == 5);
  DwKernel f = nullptr;
  switch (k * 10 + stride) {
    case 31: f = split ? &dw_fixed<3, 1, 2> : &dw_fixed<3, 1, 1>; break;
    case 32: f = split ? &dw_fixed<3, 2, 2> : &dw_fixed<3, 2, 1>; break;
    case 51: f = split ? &dw_fixed<5, 1, 2> : &dw_fixed<5, 1, 1>; break;
    case 52: f = split ? &dw_fixed<5, 2, 2> : &dw_fixed<5, 2, 1>; break;
    case 71: f = split ? &dw_fixed<7, 1, 2> : &dw_fixed<7, 1, 1>; break;
    case 72: f = split ? &dw_fixed<7, 2, 2> : &dw_fixed<7, 2, 1>; break;
    default: break;
  }
  if (specialised) *specialised = f != nullptr;
  return f ? f : &dw_generic;
}

static void dwconv(const DwArgs& a, int oy0, int oy1) {
  dwconv_select(a.k, a.stride, a.Wo, nullptr)(a, oy0, oy1);
}

static const KernelTable table = {ISA_NAME, MR, NR, GV * V::W, V::W, GVN * V::W, &gemm, &dwconv, &dwconv_select, &channel_sum,
                                  &channel_sum_strided, &scale_channels, &add, &activation,
                                  &im2col_row, &resize_row, &conv_row};
