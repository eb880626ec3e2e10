//! Writes the prost types of ONNX's official `onnx.proto` to
//! `host/src/onnx/proto.rs`. Needs `protoc` (Debian: protobuf-compiler).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempdir();
    prost_build::Config::new()
        .out_dir(&out)
        .compile_protos(&[root.join("host/proto/onnx.proto")], &[root.join("host/proto")])
        .expect("compile host/proto/onnx.proto (is protoc installed?)");
    let generated = std::fs::read_to_string(out.join("onnx.rs")).expect("read the generated code");
    std::fs::write(root.join("host/src/onnx/proto.rs"), generated).expect("write host/src/onnx/proto.rs");
    std::fs::remove_dir_all(&out).ok();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("onnx-proto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}
