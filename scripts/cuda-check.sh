#!/usr/bin/env bash
# The CUDA build's tests (`--features cuda`: the model on candle's CUDA ops,
# checked against the CPU kernels), built on a machine without a GPU and run
# on one that has it.
#
#   scripts/cuda-check.sh build   # here: builds and packs the test and bench binaries into .cudacheck/
#   scripts/cuda-check.sh run     # on the GPU machine, from the repository root
#   scripts/cuda-check.sh bench   # there: the train_epoch bench on cuda:0, beside PyTorch
#
# On a machine with both a GPU and the CUDA toolkit, the plain command does
# all of it: cargo test --release --features cuda cuda
#
# `build` needs no CUDA toolkit: it takes nvcc 13.0 and its headers from
# NVIDIA's wheels on PyPI (cached in target/cuda-toolkit), and links against
# stub libraries that only name the driver, cuBLAS, cuRAND and NVRTC symbols
# candle uses; `run` finds the real ones (the driver's libcuda and the
# CUDA 13 libraries of the machine's Python packages, as on the lent H200).
set -euo pipefail
cd "$(dirname "$0")/.."
pack=.cudacheck
toolkit=target/cuda-toolkit
cuda_cap=${CUDA_COMPUTE_CAP:-90}

build() {
  local cu=$toolkit/nvidia/cu13
  if [ ! -x "$cu/bin/nvcc" ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux_2_12_x86_64 -d "$toolkit/wheels" \
      "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
      "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*"
    for w in "$toolkit"/wheels/*.whl; do python3 -m zipfile -e "$w" "$toolkit"; done
    chmod +x "$cu"/bin/* "$cu"/nvvm/bin/*
    # nvcc looks for headers and libraries under targets/<arch>.
    mkdir -p "$cu/targets" && ln -sfn .. "$cu/targets/x86_64-linux"
    ln -sfn libcudart.so.13 "$cu/lib/libcudart.so"
  fi
  export PATH="$PWD/$cu/bin:$PATH" CUDA_HOME="$PWD/$cu" CUDARC_CUDA_VERSION=13000
  export CUDA_COMPUTE_CAP=$cuda_cap CARGO_TARGET_DIR=target/cuda
  # The libraries first (nothing linked yet), then a stub for each CUDA
  # library with the symbols that they use.
  cargo build --release -p nas-host --features cuda --lib
  local stub
  for stub in "cuda 1 ^cu[A-Z]" "nvrtc 13 ^nvrtc" "curand 10 ^curand" \
    "cublasLt 13 ^cublasLt" "cublas 13 ^cublas([^L]|LoggerConfigure)"; do
    set -- $stub
    [ -e "$cu/lib/lib$1.so" ] && continue
    nm -u --quiet target/cuda/release/deps/lib{cudarc,candle_core}-*.rlib 2>/dev/null \
      | awk '{print $NF}' | grep -E "$3" | sort -u | awk '{print "void " $1 "(void) {}"}' \
      > "$toolkit/stub_$1.c" || true
    gcc -shared -o "$cu/lib/lib$1.so" "$toolkit/stub_$1.c" -Wl,-soname,"lib$1.so.$2"
  done
  local built
  built=$(cargo test --release -p nas-host --features cuda --no-run --lib --test run_search \
    --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["kind"][0], m["executable"])')
  local bench
  bench=$(cargo bench -p nas-bench --features cuda --bench train_epoch --no-run \
    --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
  rm -rf "$pack" && mkdir -p "$pack"
  cp target/cuda/release/nas-host "$pack/nas-host"
  cp "$(echo "$built" | awk '$1 == "lib" {print $2}')" "$pack/lib-tests"
  cp "$(echo "$built" | awk '$1 == "test" {print $2}')" "$pack/run_search"
  cp "$bench" "$pack/train_epoch"
  strip "$pack"/nas-host "$pack"/lib-tests "$pack"/run_search "$pack"/train_epoch
  xz -T2 -6 "$pack"/nas-host "$pack"/lib-tests "$pack"/run_search "$pack"/train_epoch
  # The bench's data (the GPU machine has no Debian package), as xz: a
  # sixth smaller than gzip.
  local f
  if [ -d /usr/share/datasets/fashion-mnist ]; then
    mkdir -p "$pack/fashion-mnist"
    for f in /usr/share/datasets/fashion-mnist/*.gz; do
      zcat "$f" | xz -T2 -9e > "$pack/fashion-mnist/$(basename "$f" .gz).xz"
    done
  fi
  du -sh "$pack"/*
}

# Unpacks the binaries and finds the CUDA libraries; sets `built_at`.
unpack() {
  local f l dirs=""
  for f in "$pack"/*.xz; do
    [ -e "${f%.xz}" ] && continue
    python3 -c 'import lzma, sys; open(sys.argv[1][:-3], "wb").write(lzma.open(sys.argv[1]).read())' "$f"
    chmod +x "${f%.xz}"
  done
  nvidia-smi -L
  # The binaries were built here with this checkout at the path below.
  built_at=${CUDA_CHECK_BUILT_AT:-/work/main}
  [ "$PWD" = "$built_at" ] || { mkdir -p "$(dirname "$built_at")" && ln -sfn "$PWD" "$built_at"; }
  mkdir -p "$built_at/target/cuda/release" && cp "$pack/nas-host" "$built_at/target/cuda/release/nas-host"
  for l in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
    f=$(find /opt /usr -name "$l" 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "cuda-check: $l not found on this machine" >&2; exit 1; }
    dirs="$dirs:$(dirname "$f")"
  done
  export LD_LIBRARY_PATH="${dirs#:}:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
}

run() {
  unpack
  local rc=0
  (cd "$built_at/host" && "$OLDPWD/$pack/lib-tests" cuda_tests --test-threads 1) || rc=1
  (cd "$built_at" && "$pack/run_search" cuda) || rc=1
  exit $rc
}

# The train_epoch bench on cuda:0 beside PyTorch on the same GPU (the
# machine's python3 holds torch); its settings (NAS_BENCH_*) pass through.
bench() {
  unpack
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())'
  export NAS_BENCH_FASHION_MNIST="$PWD/$pack/fashion-mnist"
  local f
  for f in "$NAS_BENCH_FASHION_MNIST"/*.xz; do
    python3 -c 'import gzip, lzma, sys; gzip.open(sys.argv[1][:-3] + ".gz", "wb", 1).write(lzma.open(sys.argv[1]).read())' "$f"
  done
  mkdir -p /usr/share/datasets && ln -sfn "$NAS_BENCH_FASHION_MNIST" /usr/share/datasets/fashion-mnist
  (cd "$built_at/bench" && NAS_BENCH_DEVICE=cuda:0 NAS_BENCH_PYTHON=python3 "$OLDPWD/$pack/train_epoch" --bench)
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  bench) bench ;;
  *) echo "usage: scripts/cuda-check.sh build|run|bench" >&2; exit 2 ;;
esac
