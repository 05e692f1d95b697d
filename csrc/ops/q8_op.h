// Shared pieces of the int8 operators (ops/q8_*.cc): checks of quantization
// parameters and int8 buffers, the epilogue, zero-point corrections, and the
// threaded int8 GEMM. The arithmetic is adaptive_rt/model/quant.py's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "op.h"

namespace art {

// int32 sums stay exact: K * 255 * 127 < 2^31, and pooled sums pixels * 255 < 2^31
constexpr int64_t kQ8MaxK = 65536;
constexpr int64_t kQ8MaxPoolPixels = (int64_t(1) << 31) / 256;

void check_qparam(const OpDesc& op, const char* what, const QParam& q);
void check_multiplier(const OpDesc& op, const char* what, float m);
void check_vec_finite(const OpDesc& op, const char* what, const std::vector<float>& v, int n);
// a k4 weight [>= ceil(K/4), >= N, 4]
void check_k4(const OpDesc& op, const char* what, const Buffer8& b, int64_t K, int64_t N);
void check_buffer8(const OpDesc& op, const char* what, const Buffer8& b, std::vector<int64_t> need);
// An int8 buffer seen as a Buffer (for the shape checks the float ops share; data only compared to null).
Buffer as_buffer(const Buffer8& b);

// The epilogue of a conv-like op: mul/add per column, act (ReLU bounds, the
// hard-swish/sigmoid output scale: op.six, op.out_scale), the output quantization.
Q8Epilogue q8_epilogue(const OpDesc& op, const std::vector<float>& mul, const std::vector<float>& add, Act act,
                       const QParam& out, const std::vector<int32_t>* bias);
// The act's parameters are usable (a uint8 output needs out_scale / six where its act uses them).
void check_act_params(const OpDesc& op, Act act, bool float_out);
// bias[n] = -zp * sum_{k < K} w[k, n] of a k4 weight: sum (a - zp) w = sum a w + bias
// (callers pass zp - a_offset for kernels that compute sum (a - a_offset) w)
std::vector<int32_t> q8_zero_point_bias(const Buffer8& w, int K, int N, int zp);
// rint(clamp(u, -zp, 255 - zp)) + zp: the requantization of one value already in output steps
uint8_t q8_requant(float u, const QParam& q);
inline float q8_inv(const QParam& q) { return static_cast<float>(1.0 / double(q.scale)); }
// "i8-<op>-<tile>-<isa>"
std::string q8_kernel_name(const Q8Table& t, const std::string& op, const std::string& tile);
std::string q8_gemm_name(const Q8Table& t);
// An int8 GEMM split over the threads when large enough.
void q8_gemm(const RunCtx& c, const Q8GemmArgs& a, int64_t macs);

}  // namespace art
