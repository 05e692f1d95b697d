// int8 depthwise KxK convolution: sums of (input - zero point) x weight over
// the taps inside the image, the epilogue per channel; bands of output rows
// over the threads. Where the table has a packed kernel (AVX-512 VNNI), the
// weight is packed once per engine and each thread keeps a ring of the k
// input rows it reads, in the kernel's interleaved layout.
#include <algorithm>

#include "q8_op.h"

namespace art {
namespace {

void validate(OpDesc& op, const std::vector<Shape3>& shapes) {
  const Shape3 &si = shapes[op.in0], &so = shapes[op.out];
  check_depthwise(op, si, so, "int8 weight", as_buffer(op.w8));
  if (op.k > 13) fail(op, "int8 depthwise kernels are at most 13x13");
  check_qparam(op, "input", op.qin);
  check_qparam(op, "output", op.qout);
  check_vec_finite(op, "epilogue multipliers", op.scale, so.c);
  check_vec_finite(op, "epilogue offsets", op.shift, so.c);
  check_act_params(op, op.act, op.float_out);
  if (op.float_out) fail(op, "a depthwise conv cannot write the logits");
}

int64_t macs(const OpDesc& op, const Shape3& si, const Shape3& so) { return so.size() * op.k * op.k; }

bool packed(const Step& s, const PrepareCtx& c) {
  return c.q8->dwconv_packed != nullptr && c.packs != nullptr && c.q8->dw_packed_stride(s.op.stride);
}

void prepare(Step& s, const PrepareCtx& c) {
  const std::string k = std::to_string(s.op.k);
  s.kernel = q8_kernel_name(*c.q8, "dwconv", k + "x" + k + "s" + std::to_string(s.op.stride));
  if (!packed(s, c)) return;
  const Q8Table& t = *c.q8;
  const OpDesc& op = s.op;
  const Shape3& si = c.shapes[op.in0];
  const int C = si.c, kk = op.k * op.k;
  const int64_t wc = op.w8.shape[2];
  s.packed = c.packs->get(op.w8.data, t.dw_packed_bytes(op.k, wc),
                          [&](int8_t* out) { t.dw_pack(op.w8.data, op.k, wc, out); });
  const int64_t slots = t.dw_slots(C);
  s.bias32.assign(slots, 0);
  s.pmul.assign(slots, 0.f);
  s.padd.assign(slots, 0.f);
  for (int64_t p = 0; p < slots; ++p) {
    const int64_t ch = t.dw_channel(p);
    if (ch >= C) continue;
    int32_t sum = 0;
    for (int tap = 0; tap < kk; ++tap) sum += op.w8.data[tap * wc + ch];
    s.bias32[p] = -op.qin.zp * sum;
    s.pmul[p] = op.scale[ch];
    s.padd[p] = op.shift[ch];
  }
  s.ring_bytes = round_up(t.dw_ring_bytes(op.k, si.w, C, op.stride), 64);
  s.scratch_floats = s.ring_bytes / 4 * c.max_threads;
  s.kernel += " (packed, ring of " + k + " rows)";
}

void run(const Step& s, const RunCtx& c) {
  const OpDesc& op = s.op;
  const Shape3 &si = c.plan.shape(op.in0), &so = c.plan.shape(s.out);
  Q8DwArgs d;
  d.H = si.h; d.W = si.w; d.C = si.c; d.Ho = so.h; d.Wo = so.w; d.k = op.k; d.stride = op.stride;
  d.in = c.in8(op.in0); d.zi = op.qin.zp;
  d.w = op.w8.data; d.wc = op.w8.shape[2]; d.out = c.out8(s.out);
  d.e = q8_epilogue(op, op.scale, op.shift, op.act, op.qout, nullptr);
  const bool pk = s.packed != nullptr;
  if (pk) {
    d.wp = s.packed; d.pbias = s.bias32.data(); d.pmul = s.pmul.data(); d.padd = s.padd.data();
  }
  const int threads = c.threads;
  const int Ho = so.h;
  const bool par = threads > 1 && s.macs >= kParallelMacs && Ho >= 2;
  const int chunk = par ? (Ho + threads - 1) / threads : Ho;
  const int tasks = (Ho + chunk - 1) / chunk;
  auto band = [&](int t) {
    Q8DwArgs dd = d;
    const int r0 = t * chunk, r1 = std::min(Ho, (t + 1) * chunk);
    if (pk) {
      dd.ring = reinterpret_cast<uint8_t*>(c.scratch(s)) + t * s.ring_bytes;
      c.q8().dwconv_packed(dd, r0, r1);
    } else {
      c.q8().dwconv(dd, r0, r1);
    }
  };
  if (tasks == 1) band(0);
  else c.pool.parallel_for(tasks, threads, band);
}

}  // namespace

extern const OpImpl kQ8DwConvOp = {"dwconv", validate, macs, prepare, run};

}  // namespace art
