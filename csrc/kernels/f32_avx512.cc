// f32 kernels for avx512: impl.h instantiated with VecAVX512, a 8x(2 vectors) GEMM tile.
#include "kernels.h"
#include "vec_avx512.h"

namespace art {
namespace k_avx512 {
using V = VecAVX512;
constexpr int MR = 8;
constexpr int NV = 2;
constexpr int DWT = 8;
#define ISA_NAME "avx512"
#include "impl.h"
#undef ISA_NAME
}  // namespace k_avx512

const KernelTable* kernels_avx512() { return &k_avx512::table; }
}  // namespace art
