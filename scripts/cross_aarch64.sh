#!/usr/bin/env bash
# The engine on aarch64: cross-compile the core (everything but the pybind11
# bindings, which need the target's Python headers) with Debian's
# g++-aarch64-linux-gnu, warnings as errors, then build the C++ self-test
# statically and run it under qemu-aarch64-static (Debian's qemu-user-static):
# the NEON kernels and a small plan at 1 and 2 threads against the scalar table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$cxx" >/dev/null || { echo "cross_aarch64: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
source "$root/scripts/core_sources.sh"
flags=("${core_flags[@]}" -Werror)
objs=()
srcs=("${core_srcs[@]}")
for src in "${srcs[@]}"; do
  o="$out/${src//\//_}"; o="${o%.cc}.o"
  "$cxx" "${flags[@]}" -c "$root/csrc/$src" -o "$o"
  objs+=("$o")
done
"$cxx" -shared -o "$out/libart_core.so" "${objs[@]}" -lpthread
"$cxx" "${flags[@]}" -c "$root/csrc/tests/kernel_selftest.cc" -o "$out/selftest.o"
"$cxx" -static -o "$out/kernel_selftest" "$out/selftest.o" "${objs[@]}" -lpthread
echo "cross_aarch64: built ($("$cxx" --version | head -1))"
qemu=${QEMU_AARCH64:-qemu-aarch64-static}
if command -v "$qemu" >/dev/null; then
  "$qemu" "$out/kernel_selftest"
else
  echo "cross_aarch64: $qemu not found (apt-get install qemu-user-static): self-test not run" >&2
  exit 1
fi
