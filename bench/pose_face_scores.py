"""Scores for a face seen by the pose net: MoveNet's head keypoints on each person box the cascade found without
a face, for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pose_face_scores.py [--models DIR] [--shard I/N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``category`` / ``decided_by``: the cascade with config defaults but without the pose stage (``pose_face`` off:
  the cascade the stage is judged against);
- where it says worn because a person was found (``decided_by`` yolo): for each of its person boxes (at most
  ``MAX_BOXES``, best first) the box as fractions of the photo, its confidence, and MoveNet Lightning's 17
  keypoints (y, x in 0..1 of the crop, score) on a square crop around the box (``CROP_MARGIN`` of the box's long
  side added around it, grey beyond the photo), with the CPU milliseconds.
Nothing is thresholded here: bench/pose_face.py chooses by nested cross-validation. Cached per photo under
.cache/pose_face_scores/ (keyed by the file's sha256, the models' sha256 and SCORES_VERSION).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from score_cache import decode_upload, load_cached, score_photos  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.body import PoseEstimator, crop_origin, person_crop  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

SCORES_VERSION = 2
CACHE = ROOT / ".cache" / "pose_face_scores"
POSE_MODEL = "body/movenet-lightning.onnx"
MAX_BOXES = 3
CROP_MARGIN = 0.15


def _digest(cascade: Cascade, models: Path) -> str:
    h = hashlib.sha256("".join(sorted(cascade.models.values())).encode())
    h.update((models / POSE_MODEL).read_bytes())
    return h.hexdigest()[:16]


def score_photo(cascade: Cascade, pose: PoseEstimator, data: bytes) -> dict:
    decoded = decode_upload(data, cascade.config)
    result = cascade.classify_decoded(decoded)
    record = {"category": result.category, "decided_by": result.decided_by}
    if result.decided_by != "yolo":
        return record
    image = decoded.bgr
    h, w = image.shape[:2]
    to_image = w / decoded.width
    rgb = image[:, :, ::-1]
    boxes = []
    for person in sorted(result.persons, key=lambda p: -p.confidence)[:MAX_BOXES]:
        x, y, bw, bh = (v * to_image for v in person.box)
        c0 = time.process_time()
        crop = person_crop(rgb, (x, y, bw, bh), CROP_MARGIN)
        x0, y0, side = crop_origin((x, y, bw, bh), CROP_MARGIN)
        keypoints = pose.keypoints_of(pose.resize(crop))
        ms = (time.process_time() - c0) * 1000
        boxes.append(
            {
                "box": [round(x / w, 4), round(y / h, 4), round(bw / w, 4), round(bh / h, 4)],
                "confidence": round(float(person.confidence), 4),
                "net": person.net,
                "crop": [round(x0 / w, 4), round(y0 / h, 4), round(side / w, 4), round(side / h, 4)],
                "keypoints": [[round(float(v), 4) for v in row] for row in keypoints],
                "cpu_ms": round(ms, 2),
            }
        )
    record["boxes"] = boxes
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--shard", default="0/1", help="I/N: score every N-th photo from the I-th")
    args = parser.parse_args()
    index, count = (int(v) for v in args.shard.split("/"))
    cascade = Cascade.load(VisionConfig.from_env(models_dir=str(args.models), threads=1, pose_face=False))
    pose = PoseEstimator(args.models / POSE_MODEL, threads=1)
    digest = _digest(cascade, args.models)
    photos = load_photos()[index::count]
    score_photos(photos, CACHE, digest, SCORES_VERSION, partial(score_photo, cascade, pose))
    return 0


def load_scores(models: Path = ROOT / "models") -> list[dict]:
    cascade = Cascade.load(VisionConfig.from_env(models_dir=str(models), threads=1, pose_face=False))
    return load_cached(CACHE, _digest(cascade, models), SCORES_VERSION, "bench/pose_face_scores.py")


if __name__ == "__main__":
    raise SystemExit(main())
