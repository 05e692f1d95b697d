// f32 kernels for avx512: impl.h instantiated with VecAVX512, an 8x(2 vectors)
// GEMM tile. Column tails narrower than 16 go to the AVX2 kernels, compiled
// into this file too (AVX-512F implies AVX2 and FMA): a masked 16-lane
// vector would spend half its FMAs on missing columns.
// Compiled for AVX-512F (+AVX2, FMA) by target attributes (isa_begin.h).
#include "kernels.h"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: a false positive in its AVX-512 headers
#endif
#define ART_TARGET "avx512f,avx2,fma"
#include "isa_begin.h"
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
#include "isa_end.h"

const KernelTable* kernels_avx512() { return &k_avx512::table; }
}  // namespace art
