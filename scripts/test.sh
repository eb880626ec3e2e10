#!/usr/bin/env bash
# Runs every test of nas-host, after installing what the tests need on a fresh
# Debian machine: Fashion-MNIST (Debian's dataset-fashion-mnist package),
# scikit-learn's bundled datasets (python3-sklearn: the own-data tests' digit
# images and tables), Chromium (the report test renders the HTML report
# headless), onnxruntime and onnx from PyPI (exported ONNX models are run),
# PyTorch from PyPI (the zero-cost proxies' reference)
# and the wasm32-wasip2 Rust target (plugins are WebAssembly components).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$missing dataset-fashion-mnist"
[ -e /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz ] || missing="$missing python3-sklearn"
# The HTML report is checked in headless Chromium.
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
export NAS_REQUIRE_CHROMIUM=1
# Exported ONNX models are checked with the ONNX checker and onnxruntime (PyPI).
python3 -c "import onnxruntime, onnx" 2>/dev/null ||
  python3 -m pip install --quiet onnxruntime==1.32.0 onnx==1.23.2
export NAS_REQUIRE_ONNXRUNTIME=1
# The zero-cost proxies are checked against PyTorch (PyPI), in a virtual
# environment of its own under target/ (about 5 GB with its CUDA libraries).
target/pytorch/bin/python -c "import torch, numpy" 2>/dev/null || {
  python3 -m venv target/pytorch
  target/pytorch/bin/pip install --quiet torch==2.15.0 numpy
}
export NAS_TORCH_PYTHON="$PWD/target/pytorch/bin/python"
export NAS_REQUIRE_TORCH=1
# RUSTUP_AUTO_INSTALL=0 on some machines: add the target explicitly.
rustup target add wasm32-wasip2

# The host workspace (unit and end-to-end tests), then the unit tests of the
# plugin SDK and of the Gaussian-process strategy's model.
cargo test --workspace
# The kernels' portable paths, which CPUs without AVX-512 take, on this
# machine too: the kernels' tests and the model's gradient checks again.
NAS_KERNELS_AVX512=off cargo test -p nas-kernels
NAS_KERNELS_AVX512=off cargo test -p nas-host --lib -- network:: train::
cargo test --manifest-path plugins/Cargo.toml -p nas-plugin-sdk --features strategy
cargo test --manifest-path plugins/Cargo.toml -p nas-strategy-gp
