"""Body votes for the photos the cascade (hand stage on) still calls product: MoveNet keypoints and CenterNet's
best person score, for every tuning photo and each of its copies.

    OMP_NUM_THREADS=1 .venv/bin/python bench/body_votes_scores.py [--models DIR] [--body DIR] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``category`` / ``decided_by`` / ``person_best``: the cascade with config defaults (hand stage on);
- where it says product (3): ``keypoints`` (MoveNet Lightning, 17 x [y, x, score] on the photo padded to a
  square), ``centernet`` (CenterNet's best person score, same input) and the CPU milliseconds of each net.
Nothing is thresholded here: bench/body_votes.py chooses the rule by nested cross-validation.
Cached per photo under .cache/body_votes_scores/ (keyed by the file's sha256, both body models' sha256 and
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
from imagelift.vision.body import PersonCenters, PoseEstimator  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.hand_stage import best_person_score  # noqa: E402

SCORES_VERSION = 1
CACHE = ROOT / ".cache" / "body_votes_scores"
POSE_MODEL = "body/movenet-lightning.onnx"
CENTERNET_MODEL = "body/centernet.onnx"


def _digest(body: Path) -> str:
    h = hashlib.sha256()
    for rel in (POSE_MODEL, CENTERNET_MODEL):
        h.update((body / rel).read_bytes())
    return h.hexdigest()[:16]


def score_photo(cascade: Cascade, pose: PoseEstimator, centers: PersonCenters, data: bytes) -> dict:
    decoded = decode_upload(data, cascade.config)
    result = cascade.classify_decoded(decoded)
    record = {
        "category": result.category,
        "decided_by": result.decided_by,
        "person_best": round(best_person_score(result.person_scores), 4),
        "hand_vote": result.hand_vote,
    }
    if result.category == 3:
        rgb = cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2RGB)
        c0 = time.process_time()
        keypoints = pose.keypoints(rgb)
        c1 = time.process_time()
        person = centers.best_person(rgb)
        c2 = time.process_time()
        record["keypoints"] = [[round(float(v), 4) for v in row] for row in keypoints]
        record["centernet"] = round(person, 4)
        record["cpu_ms"] = {"movenet": round((c1 - c0) * 1000, 2), "centernet": round((c2 - c1) * 1000, 2)}
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--body", type=Path, default=None, help="folder holding body/*.onnx (default: --models)")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    body = args.body or args.models
    config = VisionConfig.from_env(models_dir=args.models, threads=1)
    cascade = Cascade.load(config)
    pose = PoseEstimator(body / POSE_MODEL, threads=1)
    centers = PersonCenters(body / CENTERNET_MODEL, threads=1)
    digest = _digest(body)
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
    score_photos(photos, CACHE, digest, SCORES_VERSION, partial(score_photo, cascade, pose, centers))
    return 0


def load_scores(body: Path = ROOT / "models") -> list[dict]:
    """The cached records of every tuning photo (raises when one is missing)."""
    return load_cached(CACHE, _digest(body), SCORES_VERSION, "bench/body_votes_scores.py")


if __name__ == "__main__":
    sys.exit(main())
