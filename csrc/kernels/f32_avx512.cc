// f32 kernels for avx512: impl.h instantiated with VecAVX512, an 8x(2 vectors)
// GEMM tile. Column tails narrower than 16 go to the AVX2 kernels, compiled
// into this file too (AVX-512F implies AVX2 and FMA): a masked 16-lane
// vector would spend half its FMAs on missing columns.
#include "kernels.h"
#include "vec_avx2.h"
#include "vec_avx512.h"

namespace art {
namespace k_avx512_half {
using V = VecAVX2;
constexpr int MR = 6;
constexpr int NV = 2;
constexpr int DWT = 4;
constexpr bool DW_SHARE_INPUTS = false;
#define ISA_NAME "avx512-half"
#include "impl.h"
#undef ISA_NAME
}  // namespace k_avx512_half

namespace k_avx512 {
using V = VecAVX512;
constexpr int MR = 8;
constexpr int NV = 2;
constexpr int DWT = 8;
constexpr bool DW_SHARE_INPUTS = true;
#define ISA_NAME "avx512"
#define ART_HALF k_avx512_half
#include "impl.h"
#undef ART_HALF
#undef ISA_NAME
}  // namespace k_avx512

const KernelTable* kernels_avx512() { return &k_avx512::table; }
}  // namespace art
