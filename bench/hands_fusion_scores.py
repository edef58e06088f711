"""Weak votes for the worn fusion: the shipped cascade's decision and person near misses, and HandTrack's best
box per hand class on the photo stretched and padded to a square, for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hands_fusion_scores.py [--models DIR] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``category`` / ``decided_by`` / ``person_scores`` (best person score of each net in each pass that ran, the near
  misses when no person was found) / ``best_face_score``: the shipped cascade with config defaults;
- ``hands``: for each input (``stretch``: the whole photo stretched to the net's input, as the library does;
  ``pad``: padded to a square with grey 114 first) and each hand class (``hand``, ``fist``, ``pinch``, ``point``),
  the best box after NMS as ``[score, x, y, w, h]`` with the box in fractions of the photo (0 score, empty box when
  the class has none above BOX_FLOOR).
Nothing is thresholded here: bench/hands_fusion.py chooses the rule by nested cross-validation.
Cached per photo under .cache/hands_fusion_scores/ (keyed by the file's sha256, the hand model's sha256 and
SCORES_VERSION).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from score_cache import decode_upload, load_cached, score_photos  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.hand_stage import pad_to_square  # noqa: E402
from imagelift.vision.hands import HAND_CLASSES, IOU_THRESHOLD, HandDetector, nms  # noqa: E402

SCORES_VERSION = 1
BOX_FLOOR = 0.02
INPUTS = ("stretch", "pad")
CACHE = ROOT / ".cache" / "hands_fusion_scores"


def best_boxes(detector: HandDetector, image: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> dict:
    """Per hand class, the best box after NMS as [score, x, y, w, h] in fractions of the photo of ``size``."""
    scores, boxes = detector.raw(image)
    ih, iw = image.shape[:2]
    w, h = size
    out = {}
    for class_id in HAND_CLASSES:
        keep = nms(boxes, scores[:, class_id], IOU_THRESHOLD, BOX_FLOOR, 1)
        name = detector.classes[class_id]
        if not keep:
            out[name] = [round(float(scores[:, class_id].max()), 5), 0.0, 0.0, 0.0, 0.0]
            continue
        y1, x1, y2, x2 = np.clip(boxes[keep[0]], 0.0, 1.0)
        px1 = np.clip((x1 * iw - offset[0]) / w, 0.0, 1.0)
        px2 = np.clip((x2 * iw - offset[0]) / w, 0.0, 1.0)
        py1 = np.clip((y1 * ih - offset[1]) / h, 0.0, 1.0)
        py2 = np.clip((y2 * ih - offset[1]) / h, 0.0, 1.0)
        out[name] = [
            round(float(scores[keep[0], class_id]), 5),
            *(round(float(v), 4) for v in (px1, py1, px2 - px1, py2 - py1)),
        ]
    return out


def score_photo(cascade: Cascade, detector: HandDetector, data: bytes) -> dict:
    decoded = decode_upload(data, cascade.config)
    result = cascade.classify_decoded(decoded)
    rgb = cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    canvas, (x, y) = pad_to_square(rgb)
    return {
        "category": result.category,
        "decided_by": result.decided_by,
        "person_scores": result.person_scores,
        "best_face_score": round(float(result.best_face_score), 4),
        "aspect": round(w / h, 4),
        "hands": {
            "stretch": best_boxes(detector, rgb, (0, 0), (w, h)),
            "pad": best_boxes(detector, canvas, (x, y), (w, h)),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    # The cascade before the hand stage: its decision is what the stage's rules are tried on.
    config = VisionConfig.from_env(models_dir=args.models, threads=1, hand_stage=False)
    cascade = Cascade.load(config)
    hand_model = args.models / "hands" / "handtrack.onnx"
    detector = HandDetector(hand_model, threads=1)
    model_digest = hashlib.sha256(hand_model.read_bytes()).hexdigest()[:16]
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
    score_photos(photos, CACHE, model_digest, SCORES_VERSION, partial(score_photo, cascade, detector))
    return 0


def load_scores(models: Path = ROOT / "models") -> list[dict]:
    """The cached records of every tuning photo (raises when one is missing)."""
    hand_model = models / "hands" / "handtrack.onnx"
    model_digest = hashlib.sha256(hand_model.read_bytes()).hexdigest()[:16]
    return load_cached(CACHE, model_digest, SCORES_VERSION, "bench/hands_fusion_scores.py")


if __name__ == "__main__":
    sys.exit(main())
