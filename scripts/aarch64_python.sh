#!/usr/bin/env bash
# The Python extension on aarch64, for real: an arm64 Python 3.11 (Debian
# bookworm's arm64 packages, unpacked into a sysroot) with NumPy, psutil and
# pytest (their manylinux aarch64 wheels from PyPI), the extension
# cross-compiled for it with g++-aarch64-linux-gnu and no x86 flags, then the
# engine's Python tests — every entry of the shipped pool and random configs
# against the NumPy reference at 1 and 2 threads, on the scalar and NEON
# tables, and the kernel test of both — run under qemu-aarch64-static.
# Everything comes from the package registries (apt, PyPI) and is cached in
# $ART_AARCH64_CACHE (default build/aarch64); nothing is downloaded by tests.
# Needs root for `dpkg --add-architecture arm64` the first time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ART_AARCH64_CACHE:-$root/build/aarch64}
cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
qemu=${QEMU_AARCH64:-qemu-aarch64-static}
for tool in "$cxx" "$qemu" dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "aarch64_python: $tool not found" >&2; exit 1; }
done
sysroot=$cache/sysroot
site=$cache/site
mkdir -p "$cache"

if [ ! -x "$sysroot/usr/bin/python3.11" ]; then
  echo "aarch64_python: unpacking an arm64 Python 3.11 into $sysroot"
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -q >/dev/null; }
  debs=$cache/debs
  mkdir -p "$debs"
  pkgs=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11-dev libpython3.11 libc6
        libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libstdc++6 libgcc-s1 libuuid1
        libncursesw6 libtinfo6 libreadline8 libcrypt1 libtirpc3 libnsl2 libgdbm6 libdb5.3)
  (cd "$debs" && apt-get download -q "${pkgs[@]/%/:arm64}" >/dev/null 2>&1) || {
    apt-get update -q >/dev/null && (cd "$debs" && apt-get download -q "${pkgs[@]/%/:arm64}" >/dev/null); }
  rm -rf "$sysroot.tmp" && mkdir -p "$sysroot.tmp"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$sysroot.tmp"; done
  rm -rf "$sysroot" && mv "$sysroot.tmp" "$sysroot"
fi

if [ ! -d "$site/numpy" ]; then
  echo "aarch64_python: NumPy, psutil and pytest for cp311 aarch64 into $site"
  numpy_pin=$(python -c "import numpy; print(numpy.__version__)")
  wheels=$cache/wheels
  rm -rf "$wheels" "$site.tmp" && mkdir -p "$wheels" "$site.tmp"
  python -m pip download -q --dest "$wheels" --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux_2_28_aarch64 \
    "numpy==$numpy_pin" psutil pytest pytest-timeout
  for w in "$wheels"/*.whl; do python -m zipfile -e "$w" "$site.tmp"; done
  rm -rf "$site" && mv "$site.tmp" "$site"
fi

echo "aarch64_python: cross-compiling adaptive_rt._core ($("$cxx" --version | head -1))"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$root/adaptive_rt" "$root/tests" "$root/pools" "$root/pyproject.toml" "$stage/"
rm -f "$stage"/adaptive_rt/_core*.so
source "$root/scripts/core_sources.sh"
srcs=(bindings.cc "${core_srcs[@]}")
# the arm64 Python headers; its pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>, found last
pyinc=(-I"$sysroot/usr/include/python3.11" -idirafter "$sysroot/usr/include")
pbinc=$(python -c "import pybind11; print(pybind11.get_include())")
flags=("${core_flags[@]}" -fvisibility=hidden -I"$pbinc" "${pyinc[@]}")
objs=()
for src in "${srcs[@]}"; do
  o="$stage/${src//\//_}"; o="${o%.cc}.o"
  "$cxx" "${flags[@]}" -c "$root/csrc/$src" -o "$o" &
  objs+=("$o")
  if [ "$(jobs -r | wc -l)" -ge "$(nproc)" ]; then wait -n; fi
done
wait
"$cxx" -shared -o "$stage/adaptive_rt/_core.cpython-311-aarch64-linux-gnu.so" "${objs[@]}" -lpthread

echo "aarch64_python: the engine's tests under $qemu"
cd "$stage"
export QEMU_LD_PREFIX="$sysroot"
PYTHONPATH="$stage:$site" PYTHONDONTWRITEBYTECODE=1 "$qemu" -L "$sysroot" "$sysroot/usr/bin/python3.11" - <<'EOF'
import platform
from adaptive_rt import _core
assert platform.machine() == "aarch64", platform.machine()
assert _core.available_isas() == ["scalar", "neon"], _core.available_isas()
print("aarch64_python:", platform.machine(), platform.python_version(), "tables", _core.available_isas())
EOF
PYTHONPATH="$stage:$site" PYTHONDONTWRITEBYTECODE=1 "$qemu" -L "$sysroot" "$sysroot/usr/bin/python3.11" -m pytest -q \
  -p no:cacheprovider tests/test_kernels.py tests/test_shipped_pool.py tests/test_engine.py tests/test_quant.py \
  -k "not test_224 and not mnist and not drop_float and not refuses and not accuracy and not agree and not onnx and not litert" "$@"
