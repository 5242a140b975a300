#!/usr/bin/env bash
# Build precis with CUDA kernels on a machine that has no GPU (or no CUDA toolkit), taking nvcc,
# the CUDA headers and the CUDA libraries from PyPI's NVIDIA wheels. The binary then runs on a
# machine with an NVIDIA driver (R580+) and the CUDA 13 cuBLAS/cuRAND libraries on its library
# path (the wheels' nvidia/cu13/lib will do): `precis summarize --device cuda ...`.
#
#   scripts/build_cuda.sh            # Hopper (H100/H200): compute capability 9.0
#   CUDA_COMPUTE_CAP=80 scripts/build_cuda.sh   # Ampere (A100)
#
# Builds and links here (2 cores: 8.5 to 35 min, mostly candle's CUDA kernels); run on an H200
# on 2026-12-04 with the CUDA 13 libraries of that machine's Python wheels (scripts/gpu_check.sh
# finds them). See README "GPU".
set -euo pipefail
cd "$(dirname "$0")/.."

export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
venv="$(realpath -m "${CUDA_VENV:-.venv-cuda}")"
python3 -m venv "$venv"
# The CUDA 13 wheels (package names without a -cuXX suffix) ship nvcc itself and lay everything
# out under nvidia/cu13/ like /usr/local/cuda; the older -cu12 nvcc wheel has only ptxas.
# Pinned to CUDA 13.0: the newest toolkit cudarc 0.19 knows is 13.4, and 13.0 PTX loads on every
# driver that supports CUDA 13 (R580 and later).
"$venv/bin/pip" install -q \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-cuda-cccl==13.0.85 "nvidia-nvvm~=13.0.0" "nvidia-cuda-crt~=13.0.0" \
    nvidia-curand
export CUDARC_CUDA_VERSION=13000

toolkit="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
mkdir -p "$toolkit/lib64/stubs"
for lib in "$toolkit"/lib/lib*.so.*; do
    # The wheels ship only versioned names; the linker looks for the plain ones.
    ln -sf "$lib" "$toolkit/lib64/$(basename "$lib" | sed 's/\.so\..*/.so/')"
done
# libcuda.so belongs to the driver, which a build machine need not have: link against a stub
# with the same soname that defines every driver function cudarc binds (the real driver library
# is loaded at run time). The names come from cudarc's own bindings.
if ! ldconfig -p | grep -q 'libcuda.so '; then
    cargo fetch --locked
    bindings="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys/mod.rs | tail -1)"
    grep -o 'fn cu[A-Za-z0-9_]*' "$bindings" | sort -u | sed 's/^fn \(.*\)/void \1(void) {}/' \
        | gcc -shared -fPIC -x c - -Wl,-soname,libcuda.so.1 -o "$toolkit/lib64/stubs/libcuda.so"
fi

export CUDA_PATH="$toolkit" CUDA_ROOT="$toolkit" CUDA_TOOLKIT_ROOT_DIR="$toolkit"
export PATH="$toolkit/bin:$PATH"
export LIBRARY_PATH="$toolkit/lib64:$toolkit/lib64/stubs:${LIBRARY_PATH:-}"
export LD_LIBRARY_PATH="$toolkit/lib64:${LD_LIBRARY_PATH:-}"
nvcc --version | tail -1
cargo build --release --features cuda
echo "built ${CARGO_TARGET_DIR:-target}/release/precis with CUDA (compute capability $CUDA_COMPUTE_CAP)"
