// f32 kernels for scalar: impl.h instantiated with VecScalar, a 4x(2 vectors) GEMM tile.
#include "kernels.h"
#include "vec_scalar.h"

namespace art {
namespace k_scalar {
using V = VecScalar;
constexpr int MR = 4;
constexpr int NV = 2;
constexpr int DWT = 4;
constexpr bool DW_SHARE_INPUTS = false;
#define ISA_NAME "scalar"
#include "impl.h"
#undef ISA_NAME
}  // namespace k_scalar

const KernelTable* kernels_scalar() { return &k_scalar::table; }
}  // namespace art
