# The C++ sources of the engine for an aarch64 build (sourced by
# cross_aarch64.sh and aarch64_python.sh; setup.py lists the same for its
# host): the engine, the scalar and NEON kernel tables, the kernel tests,
# every operator and plan pass. Paths are relative to csrc/. Sets
# core_srcs (without the pybind11 bindings) and core_flags.
core_srcs=(engine.cc threadpool.cc cpu.cc kernels/f32_scalar.cc kernels/f32_neon.cc kernels/q8_scalar.cc kernels/q8_neon.cc
           kernels/kernel_test.cc kernels/q8_kernel_test.cc)
for f in "$root"/csrc/ops/*.cc "$root"/csrc/plan/*.cc "$root"/csrc/serve/*.cc; do core_srcs+=("${f#"$root/csrc/"}"); done
# no contraction of a*b+c into fma: the int8 epilogues are bit-exact to NumPy (setup.py says why)
core_flags=(-std=c++17 -O2 -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -fPIC -I"$root/csrc")
