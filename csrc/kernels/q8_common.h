// Scalar pieces of every int8 kernel (q8.h): the epilogue and the
// elementwise loops. Included inside each ISA's namespace (and target
// region): vector kernels use them for their tails, so a tail computes
// exactly what a full vector does. No fused multiply-add anywhere
// (setup.py builds with -ffp-contract=off): the NumPy reference does not fuse.
// Needs <cmath> and <cstring>, included by q8.h (outside any namespace).

static constexpr float kQ8Sixth = 1.f / 6.f;

// The activation in real units (a float output: the logits, an SE gate).
static inline float q8_act(float t, Act act) {
  switch (act) {
    case Act::Relu: return t > 0.f ? t : 0.f;
    case Act::Relu6: { float u = t > 0.f ? t : 0.f; return u < 6.f ? u : 6.f; }
    case Act::HSwish: {
      float g = t + 3.f;
      g = g > 0.f ? g : 0.f;
      g = g < 6.f ? g : 6.f;
      return (t * g) * kQ8Sixth;
    }
    case Act::HSigmoid: {
      float g = t + 3.f;
      g = g > 0.f ? g : 0.f;
      g = g < 6.f ? g : 6.f;
      return g * kQ8Sixth;
    }
    default: return t;
  }
}

// rint(clamp(u, lo, hi)) + zo, u already in output steps
static inline uint8_t q8_round(float u, float lo, float hi, int zo) {
  u = u > lo ? u : lo;
  u = u < hi ? u : hi;
  return static_cast<uint8_t>(static_cast<int>(std::nearbyint(u)) + zo);
}

static inline float q8_t(int32_t acc, const Q8Epilogue& e, int n) {
  if (e.bias) acc += e.bias[n];
  const float t = static_cast<float>(acc) * e.mul[n];
  return t + e.add[n];
}

// The uint8 output of t (q8.h: hswish/hsigmoid from real units, other acts in the bounds)
static inline uint8_t q8_quant(float t, const Q8Epilogue& e) {
  float u = t;
  if (e.act == Act::HSwish || e.act == Act::HSigmoid) {
    float g = t + 3.f;
    g = g > 0.f ? g : 0.f;
    g = g < 6.f ? g : 6.f;
    u = e.act == Act::HSwish ? (t * g) * e.out_scale : g * e.out_scale;
  }
  return q8_round(u, e.lo, e.hi, e.zo);
}

// The k4 weight of row k, column n.
static inline int8_t q8_b(const Q8GemmArgs& a, int k, int n) {
  return a.B[(int64_t)(k >> 2) * a.ldb * 4 + (int64_t)n * 4 + (k & 3)];
}

static inline void q8_store(const Q8GemmArgs& a, int m, int n, int32_t acc) {
  const float t = q8_t(acc, a.e, n);
  if (a.Cf) a.Cf[(int64_t)m * a.ldc + n] = q8_act(t, a.e.act);
  else a.C[(int64_t)m * a.ldc + n] = q8_quant(t, a.e);
}

static inline void q8_gemm_scalar(const Q8GemmArgs& a, int m0, int m1, int n0, int n1) {
  for (int m = m0; m < m1; ++m) {
    const uint8_t* A = a.A + (int64_t)m * a.lda;
    for (int n = n0; n < n1; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < a.K; ++k) acc += int32_t(A[k]) * int32_t(q8_b(a, k, n));
      q8_store(a, m, n, acc);
    }
  }
}

// The taps of output pixel (oy, ox) inside the image: rows ky0..ky1 from
// input row iy0 + ky, columns kx0..kx1 from input column ix0 + kx.
struct Q8Taps {
  int iy0, ix0, ky0, ky1, kx0, kx1;
};
static inline Q8Taps q8_taps(const Q8DwArgs& a, int oy, int ox) {
  const int p = a.k / 2, iy0 = oy * a.stride - p, ix0 = ox * a.stride - p;
  return {iy0, ix0, iy0 < 0 ? -iy0 : 0, iy0 + a.k > a.H ? a.H - iy0 : a.k,
          ix0 < 0 ? -ix0 : 0, ix0 + a.k > a.W ? a.W - ix0 : a.k};
}

// One output pixel's channels [c0, c1) of a depthwise conv.
static inline void q8_dw_pixel(const Q8DwArgs& a, int oy, int ox, int c0, int c1) {
  const Q8Taps tp = q8_taps(a, oy, ox);
  const int iy0 = tp.iy0, ix0 = tp.ix0, ky0 = tp.ky0, ky1 = tp.ky1, kx0 = tp.kx0, kx1 = tp.kx1;
  uint8_t* out = a.out + ((int64_t)oy * a.Wo + ox) * a.C;
  for (int c = c0; c < c1; ++c) {
    int32_t acc = 0;
    for (int ky = ky0; ky < ky1; ++ky)
      for (int kx = kx0; kx < kx1; ++kx)
        acc += (int32_t(a.in[((int64_t)(iy0 + ky) * a.W + ix0 + kx) * a.C + c]) - a.zi) *
               int32_t(a.w[((int64_t)ky * a.k + kx) * a.wc + c]);
    out[c] = q8_quant(q8_t(acc, a.e, c), a.e);
  }
}

static inline void q8_dwconv_scalar(const Q8DwArgs& a, int oy0, int oy1) {
  for (int oy = oy0; oy < oy1; ++oy)
    for (int ox = 0; ox < a.Wo; ++ox) q8_dw_pixel(a, oy, ox, 0, a.C);
}

static inline void q8_quantize_scalar(const float* x, int64_t n, float inv, float lo, float hi, int zo, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = q8_round(x[i] * inv, lo, hi, zo);
}

static inline void q8_add_scalar(const uint8_t* a, int za, float ma, const uint8_t* b, int zb, float mb, int64_t n, float lo,
                          float hi, int zo, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float t = static_cast<float>(int(a[i]) - za) * ma + static_cast<float>(int(b[i]) - zb) * mb;
    out[i] = q8_round(t, lo, hi, zo);
  }
}

static inline void q8_channel_sum_scalar(const uint8_t* x, int64_t pixels, int C, int64_t stride, int32_t* out) {
  for (int c = 0; c < C; ++c) out[c] = 0;
  for (int64_t p = 0; p < pixels; ++p)
    for (int c = 0; c < C; ++c) out[c] += x[p * stride + c];
}

static inline void q8_scale_channels_scalar(const uint8_t* x, int64_t pixels, int C, int zi, const float* m, float lo,
                                     float hi, int zo, uint8_t* out) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int c = 0; c < C; ++c)
      out[p * C + c] = q8_round(static_cast<float>(int(x[p * C + c]) - zi) * m[c], lo, hi, zo);
}

// One output row of im2col. Where a tap row (k pixels of C channels) lies
// inside the image it is one contiguous run of the input: copied at once,
// as 16 bytes when it is at most that long and 16 bytes can be read there
// (cols has Q8_IM2COL_SLACK bytes past its end for the over-write).
static inline void q8_im2col_row(const Q8Im2colArgs& a, int oy, uint8_t* cols) {
  const int p = a.k / 2;
  const int64_t kc = (int64_t)a.k * a.k * a.C, run = (int64_t)a.k * a.C;
  const uint8_t* end = a.in + (int64_t)a.H * a.W * a.C;
  for (int ox = 0; ox < a.Wo; ++ox) {
    uint8_t* dst = cols + ox * kc;
    const int ix0 = ox * a.stride - p;
    for (int ky = 0; ky < a.k; ++ky) {
      const int iy = oy * a.stride - p + ky;
      if (iy >= 0 && iy < a.H && ix0 >= 0 && ix0 + a.k <= a.W) {
        const uint8_t* src = a.in + ((int64_t)iy * a.W + ix0) * a.C;
        if (run <= 16 && src + 16 <= end) std::memcpy(dst + ky * run, src, 16);
        else std::memcpy(dst + ky * run, src, run);
        continue;
      }
      for (int kx = 0; kx < a.k; ++kx) {
        const int ix = ox * a.stride - p + kx;
        uint8_t* d = dst + (ky * a.k + kx) * a.C;
        if (iy < 0 || iy >= a.H || ix < 0 || ix >= a.W) std::memset(d, a.pad, a.C);
        else std::memcpy(d, a.in + ((int64_t)iy * a.W + ix) * a.C, a.C);
      }
    }
  }
}

static inline void q8_resize_row(const Q8ResizeArgs& a, int oy, uint8_t* out) {
  const int64_t row = (int64_t)a.W * a.C;
  const uint8_t* r0 = a.in + a.ry0[oy] * row;
  const uint8_t* r1 = a.in + a.ry1[oy] * row;
  const float fy = a.fy[oy], gy = 1.f - fy;
  for (int ox = 0; ox < a.Wo; ++ox) {
    const float fx = a.fx[ox], gx = 1.f - fx;
    const int64_t x0 = (int64_t)a.rx0[ox] * a.C, x1 = (int64_t)a.rx1[ox] * a.C;
    for (int c = 0; c < a.C; ++c) {
      const float top = float(r0[x0 + c]) * gx + float(r0[x1 + c]) * fx;
      const float bot = float(r1[x0 + c]) * gx + float(r1[x1 + c]) * fx;
      out[(int64_t)ox * a.C + c] = q8_round(top * gy + bot * fy, 0.f, 255.f, 0);
    }
  }
}
