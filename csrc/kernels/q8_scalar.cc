// int8 kernels, scalar: the table every CPU has (and the tails of the vector ones).
#include "q8.h"

namespace art {
namespace q8_scalar {
#include "q8_common.h"

const Q8Table table = {"scalar", 1, 1, q8_gemm_scalar, q8_dwconv_scalar, q8_quantize_scalar, q8_add_scalar,
                       q8_channel_sum_scalar, q8_scale_channels_scalar, q8_im2col_row, q8_resize_row,
                       nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0};
}  // namespace q8_scalar

const Q8Table* q8_kernels_scalar() { return &q8_scalar::table; }
}  // namespace art
