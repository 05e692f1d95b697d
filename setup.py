"""Build script for the C++ engine, adaptive_rt._core (pybind11, C++17).

Metadata lives in pyproject.toml. Kernels are compiled once per ISA, each
file's kernels marked for their ISA by target attributes in the source
(csrc/kernels/isa_begin.h), so every file builds with the same flags; the
engine picks a table at run time from a CPU check; the scalar table always
exists.
Environment knobs (build time):
  ADAPTIVE_RT_SANITIZE=1   build with AddressSanitizer + UBSan (see scripts/sanitize.sh)
  ADAPTIVE_RT_NATIVE=1     add -march=native (a build for this CPU only)
  ADAPTIVE_RT_OPENMP=1     parallel regions on OpenMP instead of the engine's pool (comparison)
"""
import glob
import os
import platform

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build_py import build_py

# Shipped with the wheel (adaptive_rt/_shipped/): the demo's pool and test images.
SHIPPED = ["mnist5k-mbv3.safetensors", "mnist5k-test.npz"]

machine = platform.machine().lower()
X86 = machine in ("x86_64", "amd64")
ARM64 = machine in ("aarch64", "arm64")

# the engine, its operators (csrc/ops, one per file) and plan passes (csrc/plan), the kernel
# test, and the kernels of every ISA this machine's family has (the scalar table always)
sources = (["csrc/bindings.cc", "csrc/engine.cc", "csrc/threadpool.cc", "csrc/cpu.cc",
            "csrc/kernels/f32_scalar.cc", "csrc/kernels/q8_scalar.cc", "csrc/kernels/kernel_test.cc",
            "csrc/kernels/q8_kernel_test.cc"]
           + sorted(glob.glob("csrc/ops/*.cc")) + sorted(glob.glob("csrc/plan/*.cc"))
           + sorted(glob.glob("csrc/serve/*.cc")))
if X86:
    sources += ["csrc/kernels/f32_avx2.cc", "csrc/kernels/f32_avx512.cc", "csrc/kernels/q8_x86.cc"]
if ARM64:
    sources += ["csrc/kernels/f32_neon.cc", "csrc/kernels/q8_neon.cc"]

# -ffp-contract=off: the int8 epilogues must not fuse a multiply and an add (the
# NumPy reference they are bit-identical to does not); float kernels fuse explicitly
compile_args = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"]
link_args = []
if os.environ.get("ADAPTIVE_RT_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
    compile_args = ["-O1"] + san + compile_args[1:]
    link_args += san
if os.environ.get("ADAPTIVE_RT_NATIVE") == "1":
    compile_args.append("-march=native")
if os.environ.get("ADAPTIVE_RT_OPENMP") == "1":   # comparison build: OpenMP instead of our thread pool
    compile_args += ["-fopenmp", "-DART_OPENMP"]
    link_args.append("-fopenmp")


class BuildPy(build_py):
    """Copies the shipped files from pools/ into the package being built."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "adaptive_rt", "_shipped")
        self.mkpath(dest)
        for name in SHIPPED:
            self.copy_file(os.path.join("pools", name), os.path.join(dest, name))


ext = Pybind11Extension(
    "adaptive_rt._core",
    sources,
    include_dirs=["csrc"],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*/*.h")),
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext, "build_py": BuildPy})
