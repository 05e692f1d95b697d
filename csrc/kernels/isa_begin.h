// Compile what follows (up to isa_end.h) for the ISA named by ART_TARGET, e.g.
//   #define ART_TARGET "avx2,fma"
//   #include "isa_begin.h"  ... kernels ...  #include "isa_end.h"
// Per-function target attributes (GCC's `#pragma GCC target`, clang's
// `#pragma clang attribute`) instead of per-file compiler flags: the build
// needs no special flags, and nothing outside the region — the standard
// library, the engine — is compiled for an ISA the CPU may lack. The
// intrinsics headers are included first, outside the region, as both
// compilers allow.
#include <immintrin.h>
#define ART_PRAGMA_STR(x) #x
#define ART_PRAGMA(x) _Pragma(ART_PRAGMA_STR(x))   // expands ART_TARGET, then stringifies
#if defined(__clang__)
ART_PRAGMA(clang attribute push(__attribute__((target(ART_TARGET))), apply_to = function))
#elif defined(__GNUC__)
#pragma GCC push_options
ART_PRAGMA(GCC target(ART_TARGET))
#else
#error "x86 SIMD kernels need GCC or clang (per-function target attributes)"
#endif
