#!/usr/bin/env bash
# Regenerates host/src/onnx/proto.rs (prost types) from host/proto/onnx.proto,
# ONNX's official schema as the `onnx` Python package ships it. Run after
# replacing host/proto/onnx.proto; needs protoc (Debian: protobuf-compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p host/src/onnx
cargo run --quiet --manifest-path scripts/onnx-proto/Cargo.toml
rustfmt --edition 2021 host/src/onnx/proto.rs
