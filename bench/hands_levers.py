"""Preprocessing levers for the HandTrack stage, on the original copy of every tuning photo.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hands_levers.py    # after bench/hands_scores.py

Score: the best of the four hand classes, with the photo given to the net as the library does (``stretch``: the
whole photo stretched to 320 x 320), padded to a square with grey 114 first (``letterbox``), or as the best of four
corner crops of 60% of each side (``tiles``). The cascade's decisions come from bench/hands_scores.py's cache; the
threshold is chosen as bench/hands_curve.py chooses it (lowest within 1% of training products flipped), in 5 photo
folds and with each source left out; pooled test figures. Originals only (no copies): 470 photos, 23 of them hands.
Writes bench/results/hands_levers.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

import hands_curve  # noqa: E402
from hands_scores import load_scores  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.hand_stage import pad_to_square  # noqa: E402
from imagelift.vision.hands import HandDetector  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402

MODEL = ROOT / "models" / "hands" / "handtrack.onnx"
TILE_FRACTION = 0.6


def best_hand(detector: HandDetector, image: np.ndarray) -> float:
    scores, _ = detector.raw(image)
    return float(scores[:, :4].max())


def variants(detector: HandDetector, rgb: np.ndarray) -> dict[str, float]:
    h, w = rgb.shape[:2]
    canvas = pad_to_square(rgb)[0]
    th, tw = int(h * TILE_FRACTION), int(w * TILE_FRACTION)
    tiles = [rgb[top : top + th, left : left + tw] for top in (0, h - th) for left in (0, w - tw)]
    return {
        "stretch": best_hand(detector, rgb),
        "letterbox": best_hand(detector, canvas),
        "tiles": max(best_hand(detector, tile) for tile in tiles),
    }


def main() -> int:
    detector = HandDetector(MODEL)
    config = VisionConfig.from_env()
    records = load_scores(MODEL)
    started = time.monotonic()
    scores: dict[str, list[float]] = {"stretch": [], "letterbox": [], "tiles": []}
    for photo in load_photos():
        decoded = decode_image(
            photo.path.read_bytes(),
            limits=DecodeLimits.from_config(config),
            target_long_side=max(config.decode_long_side, config.face_max_side),
        )
        for name, value in variants(detector, cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2RGB)).items():
            scores[name].append(value)
    folds = hands_curve.photo_folds(records)
    sources = [r["source"] for r in records]
    results = {}
    for name, values in scores.items():
        originals = []
        for record, value in zip(records, values, strict=True):
            copy = dict(record["copies"]["original"], hand={"hand": value, "fist": 0.0, "pinch": 0.0, "point": 0.0})
            originals.append({**record, "copies": {"original": copy}})
        table = hands_curve.rows(originals, "hand_classes")
        for scheme, groups in (("photos", folds), ("sources", sources)):
            cv = hands_curve.cross_validate(table, groups)
            results[f"{name}/{scheme}"] = {
                "threshold_median": cv["threshold_median"],
                "hands": cv["test"]["hands"]["called_worn"],
                "other_worn": cv["test"]["legs"]["called_worn"],
                "products_flipped": cv["test"]["product_fp_by_hand_stage"],
            }
            print(name, scheme, results[f"{name}/{scheme}"], flush=True)
    out = {
        "seconds": round(time.monotonic() - started),
        "note": "original copies only; score = best of the four hand classes; CV as in bench/hands_curve.py",
        "results": results,
    }
    (ROOT / "bench" / "results" / "hands_levers.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
