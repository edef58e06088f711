"""The HandTrack scores and the shipped cascade's decision for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hands_scores.py [--models DIR] [--hand-model FILE] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``category`` / ``decided_by``: the shipped cascade (config defaults) on that decode;
- ``hand``: the best score of each HandTrack class over all anchors (imagelift.vision.hands), the best hand box
  (as fractions of the photo) and the CPU milliseconds of the hand stage (prepare + ONNX Runtime + NMS);
- ``hand_boxes``: up to TOP_BOXES hand boxes after NMS (score at least BOX_FLOOR), each with the share of its
  pixels in a skin-colour range (YCrCb, Cr 133-173 and Cb 77-127): a fist-like shoe is seldom skin-coloured.
Nothing is thresholded here: bench/hands_curve.py draws the curve and chooses the threshold by cross-validation.
Cached per photo under .cache/hands_scores/ (keyed by the file's sha256, the hand model's sha256 and
SCORES_VERSION).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from functools import partial
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from score_cache import decode_upload, load_cached, score_photos  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.hands import HandDetector  # noqa: E402

SCORES_VERSION = 2
TOP_BOXES = 5
BOX_FLOOR = 0.05
CACHE = ROOT / ".cache" / "hands_scores"


def score_photo(cascade: Cascade, hands: HandDetector, data: bytes) -> dict:
    decoded = decode_upload(data, cascade.config)
    result = cascade.classify_decoded(decoded)
    rgb = cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2RGB)
    c0 = time.process_time()
    h, w = rgb.shape[:2]
    scores, boxes = hands.raw(rgb)
    found = hands.hands_from(scores, boxes, width=w, height=h, min_score=BOX_FLOOR, limit=TOP_BOXES)
    hand_ms = (time.process_time() - c0) * 1000
    best = hands.best_scores(scores)
    ycrcb = cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2YCrCb)
    skin = cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)) > 0
    hand_boxes = []
    for hand in found:
        x, y, bw, bh = (round(v) for v in hand.box)
        region = skin[max(y, 0) : max(y + bh, y + 1), max(x, 0) : max(x + bw, x + 1)]
        share = float(region.mean()) if region.size else 0.0
        hand_boxes.append(
            {
                "label": hand.label,
                "score": round(hand.confidence, 5),
                "skin": round(share, 4),
                "box": [x / w, y / h, bw / w, bh / h],
            }
        )
    top = None
    if found:
        x, y, bw, bh = found[0].box
        top = {"label": found[0].label, "score": round(found[0].confidence, 5), "box": [x / w, y / h, bw / w, bh / h]}
    return {
        "category": result.category,
        "decided_by": result.decided_by,
        "cascade_ms": round(result.timings_ms["total"], 2),
        "hand": {k: round(v, 5) for k, v in best.items()},
        "hand_top": top,
        "hand_boxes": hand_boxes,
        "hand_cpu_ms": round(hand_ms, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--hand-model", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    # The cascade before the hand stage, whose misses HandTrack is measured on.
    config = VisionConfig.from_env(models_dir=args.models, threads=1, hand_stage=False)
    cascade = Cascade.load(config)
    hand_model = args.hand_model or args.models / "hands" / "handtrack.onnx"
    hands = HandDetector(hand_model, threads=1)
    model_digest = hashlib.sha256(hand_model.read_bytes()).hexdigest()[:16]
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
    score_photos(photos, CACHE, model_digest, SCORES_VERSION, partial(score_photo, cascade, hands))
    return 0


def load_scores(hand_model: Path) -> list[dict]:
    """The cached records of every tuning photo for ``hand_model`` (raises when one is missing)."""
    model_digest = hashlib.sha256(hand_model.read_bytes()).hexdigest()[:16]
    return load_cached(CACHE, model_digest, SCORES_VERSION, "bench/hands_scores.py")


if __name__ == "__main__":
    sys.exit(main())
