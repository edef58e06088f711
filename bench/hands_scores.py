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
import json
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, file_digest, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.hands import HandDetector  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402

SCORES_VERSION = 2
TOP_BOXES = 5
BOX_FLOOR = 0.05
CACHE = ROOT / ".cache" / "hands_scores"


def score_photo(cascade: Cascade, hands: HandDetector, data: bytes) -> dict:
    config = cascade.config
    decoded = decode_image(
        data,
        limits=DecodeLimits.from_config(config),
        target_long_side=max(config.decode_long_side, config.face_max_side) if config.decode_long_side else None,
    )
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
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for number, photo in enumerate(photos, 1):
        digest = file_digest(photo.path)
        cache = CACHE / f"{digest}-{model_digest}-v{SCORES_VERSION}.json"
        if cache.is_file():
            continue
        data = photo.path.read_bytes()
        copies = {}
        for copy in COPIES:
            try:
                copies[copy] = score_photo(cascade, hands, make_copy(data, copy))
            except Exception as exc:  # a photo that cannot be decoded is recorded, not skipped silently
                copies[copy] = {"error": f"{type(exc).__name__}: {exc}"}
        record = {"id": photo.id, "kind": photo.kind, "label": photo.label, "source": photo.source, "copies": copies}
        cache.write_text(json.dumps(record), encoding="utf-8")
        if number % 20 == 0:
            print(f"{number}/{len(photos)} photos, {time.monotonic() - started:.0f} s", flush=True)
    print(f"done: {len(photos)} photos in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def load_scores(hand_model: Path) -> list[dict]:
    """The cached records of every tuning photo for ``hand_model`` (raises when one is missing)."""
    model_digest = hashlib.sha256(hand_model.read_bytes()).hexdigest()[:16]
    records = []
    for photo in load_photos():
        cache = CACHE / f"{file_digest(photo.path)}-{model_digest}-v{SCORES_VERSION}.json"
        if not cache.is_file():
            raise FileNotFoundError(f"{photo.id} has no cached scores: run bench/hands_scores.py first")
        records.append(json.loads(cache.read_text(encoding="utf-8")))
    return records


if __name__ == "__main__":
    sys.exit(main())
