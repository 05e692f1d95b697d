// AVX2 pieces of the x86 int8 tables (q8_x86.cc): activation reads, the
// 8-column epilogue, the depthwise and elementwise kernels. Included inside
// each x86 region after q8_common.h (every x86 int8 table has AVX2).

// The four activations at p as one little-endian word; the last group of a
// row with K % 4 != 0 reads only its `tail` bytes, the rest zero.
static inline int32_t q8_a4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
static inline int32_t q8_a4_tail(const uint8_t* p, int tail) {
  uint32_t v = 0;
  for (int i = 0; i < tail; ++i) v |= uint32_t(p[i]) << (8 * i);
  return static_cast<int32_t>(v);
}

static inline __m256 act8(__m256 t, Act act) {
  const __m256 z = _mm256_setzero_ps(), six = _mm256_set1_ps(6.f);
  switch (act) {
    case Act::Relu: return _mm256_max_ps(t, z);
    case Act::Relu6: return _mm256_min_ps(_mm256_max_ps(t, z), six);
    case Act::HSwish: {
      __m256 g = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, _mm256_set1_ps(3.f)), z), six);
      return _mm256_mul_ps(_mm256_mul_ps(t, g), _mm256_set1_ps(kQ8Sixth));
    }
    case Act::HSigmoid: {
      __m256 g = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, _mm256_set1_ps(3.f)), z), six);
      return _mm256_mul_ps(g, _mm256_set1_ps(kQ8Sixth));
    }
    default: return t;
  }
}

// rint(clamp(u, lo, hi)) + zo of 8 lanes, as 8 bytes in the low half
static inline __m128i round8(__m256 u, float lo, float hi, int zo) {
  u = _mm256_min_ps(_mm256_max_ps(u, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(u), _mm256_set1_epi32(zo));
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packus_epi16(w, w);
}

// hswish / hsigmoid from real units to output steps (q8.h); other acts: t is u
static inline __m256 steps8(__m256 t, const Q8Epilogue& e) {
  if (e.act != Act::HSwish && e.act != Act::HSigmoid) return t;
  const __m256 g = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(t, _mm256_set1_ps(3.f)), _mm256_setzero_ps()),
                                 _mm256_set1_ps(6.f));
  return _mm256_mul_ps(e.act == Act::HSwish ? _mm256_mul_ps(t, g) : g, _mm256_set1_ps(e.out_scale));
}

// The epilogue of the 8 columns [n, n + 8) of row m.
static inline void store8(const Q8GemmArgs& a, int m, int n, __m256i acc) {
  const Q8Epilogue& e = a.e;
  if (e.bias) acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i*)(e.bias + n)));
  __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(e.mul + n));
  t = _mm256_add_ps(t, _mm256_loadu_ps(e.add + n));
  if (a.Cf) {
    _mm256_storeu_ps(a.Cf + (int64_t)m * a.ldc + n, act8(t, e.act));
    return;
  }
  _mm_storel_epi64((__m128i*)(a.C + (int64_t)m * a.ldc + n), round8(steps8(t, e), e.lo, e.hi, e.zo));
}

static inline __m256i load8_u8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
static inline __m256i load8_s8(const int8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)); }

// Depthwise: 8 channels a vector, 32-bit products; the channel tail scalar.
static inline void dwconv(const Q8DwArgs& a, int oy0, int oy1) {
  const int C8 = a.C & ~7;
  const __m256i zi = _mm256_set1_epi32(a.zi);
  Q8GemmArgs st;
  st.e = a.e;
  for (int oy = oy0; oy < oy1; ++oy) {
    for (int ox = 0; ox < a.Wo; ++ox) {
      const Q8Taps tp = q8_taps(a, oy, ox);
      const int iy0 = tp.iy0, ix0 = tp.ix0, ky0 = tp.ky0, ky1 = tp.ky1, kx0 = tp.kx0, kx1 = tp.kx1;
      st.C = a.out + ((int64_t)oy * a.Wo + ox) * a.C;
      for (int c = 0; c < C8; c += 8) {
        __m256i acc = _mm256_setzero_si256();
        for (int ky = ky0; ky < ky1; ++ky) {
          const uint8_t* in = a.in + ((int64_t)(iy0 + ky) * a.W + ix0) * a.C + c;
          const int8_t* w = a.w + (int64_t)ky * a.k * a.wc + c;
          for (int kx = kx0; kx < kx1; ++kx)
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_sub_epi32(load8_u8(in + kx * a.C), zi),
                                                           load8_s8(w + kx * a.wc)));
        }
        store8(st, 0, c, acc);
      }
      if (C8 < a.C) q8_dw_pixel(a, oy, ox, C8, a.C);
    }
  }
}

static inline void quantize(const float* x, int64_t n, float inv, float lo, float hi, int zo, uint8_t* out) {
  int64_t i = 0;
  const __m256 vi = _mm256_set1_ps(inv);
  for (; i + 8 <= n; i += 8) _mm_storel_epi64((__m128i*)(out + i), round8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), lo, hi, zo));
  q8_quantize_scalar(x + i, n - i, inv, lo, hi, zo, out + i);
}

static inline void add(const uint8_t* a, int za, float ma, const uint8_t* b, int zb, float mb, int64_t n, float lo, float hi,
                int zo, uint8_t* out) {
  int64_t i = 0;
  const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
  const __m256 vma = _mm256_set1_ps(ma), vmb = _mm256_set1_ps(mb);
  for (; i + 8 <= n; i += 8) {
    const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_u8(a + i), vza)), vma);
    const __m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_u8(b + i), vzb)), vmb);
    _mm_storel_epi64((__m128i*)(out + i), round8(_mm256_add_ps(fa, fb), lo, hi, zo));
  }
  q8_add_scalar(a + i, za, ma, b + i, zb, mb, n - i, lo, hi, zo, out + i);
}

static inline void channel_sum(const uint8_t* x, int64_t pixels, int C, int64_t stride, int32_t* out) {
  const int C8 = C & ~7;
  for (int c = 0; c < C8; c += 8) {
    __m256i s = _mm256_setzero_si256();
    for (int64_t p = 0; p < pixels; ++p) s = _mm256_add_epi32(s, load8_u8(x + p * stride + c));
    _mm256_storeu_si256((__m256i*)(out + c), s);
  }
  for (int c = C8; c < C; ++c) {
    int32_t s = 0;
    for (int64_t p = 0; p < pixels; ++p) s += x[p * stride + c];
    out[c] = s;
  }
}

static inline void scale_channels(const uint8_t* x, int64_t pixels, int C, int zi, const float* m, float lo, float hi, int zo,
                           uint8_t* out) {
  const int C8 = C & ~7;
  const __m256i vz = _mm256_set1_epi32(zi);
  for (int64_t p = 0; p < pixels; ++p) {
    const uint8_t* xp = x + p * C;
    uint8_t* op = out + p * C;
    for (int c = 0; c < C8; c += 8) {
      const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(load8_u8(xp + c), vz)), _mm256_loadu_ps(m + c));
      _mm_storel_epi64((__m128i*)(op + c), round8(f, lo, hi, zo));
    }
    for (int c = C8; c < C; ++c) op[c] = q8_round(static_cast<float>(int(xp[c]) - zi) * m[c], lo, hi, zo);
  }
}
