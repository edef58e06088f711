"""Scores for a person gate in front of the face stage: each YOLO net's best person score on every tuning photo
and each of its copies, beside what the cascade calls it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/person_gate_scores.py [--models DIR] [--limit N]

For each photo of ../shared/data/images + ../shared/data/pool (bench/vision_data.py) and each copy (original,
mirror, 90% centre crop, 2000 px rescale, JPEG q=60), decoded the way the cascade decodes an upload:
- ``category`` / ``decided_by`` / ``faces``: the cascade with config defaults but without the face gate
  (``face_gate_min_person`` 0: the cascade the gate is judged against);
- ``gate``: per YOLO net, its best person score on the whole photo at the cascade's input size, down to 0.001
  (the cascade's own near misses stop at 0.01), and the CPU milliseconds of that run;
- ``cpu_ms``: the cascade's face stage and person stage CPU milliseconds (the stage timings it records).
Nothing is thresholded here: bench/person_gate.py chooses by nested cross-validation. Cached per photo under
.cache/person_gate_scores/ (keyed by the file's sha256, the models' sha256 and SCORES_VERSION).
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
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.person import PERSON_CLASS_ID  # noqa: E402

SCORES_VERSION = 2
CACHE = ROOT / ".cache" / "person_gate_scores"
GATE_FLOOR = 0.001


def _digest(cascade: Cascade) -> str:
    return hashlib.sha256("".join(sorted(cascade.models.values())).encode()).hexdigest()[:16]


def score_photo(cascade: Cascade, data: bytes) -> dict:
    decoded = decode_upload(data, cascade.config)
    result = cascade.classify_decoded(decoded)
    gate = {}
    for net, detector in cascade.persons.nets.items():
        c0 = time.process_time()
        found = detector.detect(
            decoded.bgr,
            input_size=cascade.config.yolo_input_size,
            conf_threshold=GATE_FLOOR,
            iou_threshold=cascade.persons.iou_threshold,
            class_ids={PERSON_CLASS_ID},
        )
        ms = (time.process_time() - c0) * 1000
        gate[net] = {"best": round(max((float(d.confidence) for d in found), default=0.0), 5), "cpu_ms": round(ms, 2)}
    return {
        "category": result.category,
        "decided_by": result.decided_by,
        "faces": len(result.faces),
        "review": result.review,
        "gate": gate,
        "cpu_ms": {stage: round(result.timings_ms.get(stage, 0.0), 2) for stage in ("mtcnn", "yolo", "hands")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    cascade = Cascade.load(VisionConfig.from_env(models_dir=args.models, threads=1, face_gate_min_person=0.0))
    photos = load_photos()
    if args.limit:
        photos = photos[: args.limit]
    score_photos(photos, CACHE, _digest(cascade), SCORES_VERSION, partial(score_photo, cascade))
    return 0


def load_scores(models: Path = ROOT / "models") -> list[dict]:
    """The cached records of every tuning photo (raises when one is missing)."""
    cascade = Cascade.load(VisionConfig.from_env(models_dir=models, threads=1))
    return load_cached(CACHE, _digest(cascade), SCORES_VERSION, "bench/person_gate_scores.py")


if __name__ == "__main__":
    sys.exit(main())
