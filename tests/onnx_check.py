"""Checks models exported as ONNX by nas-host with the ONNX checker and
onnxruntime. Each case folder holds model.onnx, input.f32 and expected.f32
(raw little-endian float32: the input batch and nas-host's outputs for it)
and case.json ({"input": [N, C, H, W], "rtol": R, "atol": A,
"same_classes": B}). Outputs must agree within rtol/atol (numpy.allclose)
and, where same_classes is true, give the same class for every row. Prints one line per case; exits 1 if any case fails."""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def check(case: Path) -> str | None:
    spec = json.loads((case / "case.json").read_text())
    model_path = str(case / "model.onnx")
    onnx.checker.check_model(model_path, full_check=True)
    x = np.fromfile(case / "input.f32", dtype="<f4").reshape(spec["input"])
    expected = np.fromfile(case / "expected.f32", dtype="<f4").reshape(x.shape[0], -1)
    options = ort.SessionOptions()
    # On x86 CPUs without VNNI onnxruntime's default u8 x s8 kernels add
    # pairs of products in 16 bits, which saturate; this option makes it
    # compute exactly (u8 x u8), as nas-host's kernels and VNNI machines do.
    options.add_session_config_entry("session.x64quantprecision", "1")
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x})
    if got.shape != expected.shape:
        return f"output shape {got.shape}, nas-host gave {expected.shape}"
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not np.allclose(got, expected, rtol=spec["rtol"], atol=spec["atol"]):
        return f"outputs differ by up to {diff:.3g}"
    same = np.argmax(got, axis=1) == np.argmax(expected, axis=1)
    if spec["same_classes"] and not same.all():
        return f"{int((~same).sum())} of {len(same)} predictions differ"
    print(f"{case.name}: ok, max difference {diff:.3g}")
    return None


def main() -> int:
    failed = 0
    for case in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
        try:
            error = check(case)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            error = f"{type(e).__name__}: {e}"
        if error:
            print(f"{case.name}: FAILED: {error}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
