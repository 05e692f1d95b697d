// f32 kernels for neon: impl.h instantiated with VecNEON, a 6x(2 vectors) GEMM tile.
#include "kernels.h"
#include "vec_neon.h"

namespace art {
namespace k_neon {
using V = VecNEON;
constexpr int MR = 6;
constexpr int NV = 2;
constexpr int DWT = 8;
constexpr bool DW_SHARE_INPUTS = true;
#define ISA_NAME "neon"
#include "impl.h"
#undef ISA_NAME
}  // namespace k_neon

const KernelTable* kernels_neon() { return &k_neon::table; }
}  // namespace art
