#!/usr/bin/env bash
# Cross-compile the engine core (everything but the pybind11 bindings, which
# need the target's Python headers) for aarch64 with Debian's
# g++-aarch64-linux-gnu: the NEON kernels and the portable code must build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$cxx" >/dev/null || { echo "cross_aarch64: $cxx not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for src in engine.cc threadpool.cc cpu.cc kernels/f32_scalar.cc kernels/f32_neon.cc; do
  "$cxx" -std=c++17 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -fPIC -I"$root/csrc" \
    -c "$root/csrc/$src" -o "$out/$(basename "$src" .cc).o"
done
"$cxx" -shared -o "$out/libart_core.so" "$out"/*.o -lpthread
file "$out/libart_core.so" 2>/dev/null || true
echo "cross_aarch64: ok ($("$cxx" --version | head -1))"
