// f32 kernels for avx2: impl.h instantiated with VecAVX2, a 6x(2 vectors) GEMM tile.
// Compiled for AVX2+FMA by target attributes (isa_begin.h); used only where the CPU check finds both.
#include "kernels.h"
#define ART_TARGET "avx2,fma"
#include "isa_begin.h"
#include "vec_avx2.h"

namespace art {
namespace k_avx2 {
using V = VecAVX2;
constexpr int MR = 6;
constexpr int NV = 2;
constexpr int DWT = 4;
constexpr bool DW_SHARE_INPUTS = false;
#define ISA_NAME "avx2"
#include "impl.h"
#undef ISA_NAME
}  // namespace k_avx2
#include "isa_end.h"

const KernelTable* kernels_avx2() { return &k_avx2::table; }
}  // namespace art
