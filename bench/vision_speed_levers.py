"""The person stage's speed levers, each against the cascade as shipped, interleaved photo by photo at 1 thread.

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_speed_levers.py [--photos N] [--repeat R]

Variants (same models, same thresholds):
- ``shipped``: one decode for both stages; with the ``min`` rule a net far under the threshold settles the pass;
- ``every net runs``: the same without settling (``settle_margin`` None);
- ``second decode, every net runs``: the cascade before both levers, YOLO on a decode of its own for
  ``decode_long_side`` (bench/vision_scores.own_person_view);
- ``yolov4-tiny run first``: the nets in the other order (it settles more product shots, at a dearer first run);
- a coarser face pyramid (``COARSE_PYRAMID``), timed only.
Per photo (a deterministic sample of the tuning photos), each variant classifies the bytes ``repeat`` times in
turn; the CPU time (process_time, which the machine's load inflates less than wall time) and the wall time are
kept, and the medians printed. The categories of the variants are compared photo by photo. Writes
bench/results/vision_speed_levers.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import load_photos, time_interleaved, variant_figures  # noqa: E402
from vision_scores import own_person_view  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "vision_speed_levers.json"
COARSE_PYRAMID = 0.6
"""A coarser face pyramid (fewer P-Net levels) than the shipped 0.709: timed here; its accuracy is the face
stage's tuning to measure (bench/face_tuning.py), so only the photos it changes are counted."""


def before_levers(cascade: Cascade, data: bytes) -> int:
    """Category as the cascade decided before one decode and settling (timed by the caller)."""
    config = cascade.config
    decoded = decode_image(
        data,
        limits=DecodeLimits.from_config(config),
        target_long_side=max(config.decode_long_side, config.face_max_side),
    )
    if cascade.detect_faces(decoded.bgr).faces:
        return 1
    return 2 if cascade.persons.search(own_person_view(config, decoded, data)).found else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120, help="tuning photos sampled (0 = all 470)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = VisionConfig.from_env({}, models_dir=args.models, threads=1)
    shipped = Cascade.load(config)
    every_net = Cascade.load(config)
    every_net.persons = replace_settle(every_net.persons)
    cv2.setNumThreads(1)
    photos = load_photos()
    if args.photos:
        photos = random.Random(14).sample(photos, args.photos)
    v4_first = Cascade.load(config)
    v4_first.persons = copy.copy(v4_first.persons)
    v4_first.persons.nets = dict(reversed(list(v4_first.persons.nets.items())))
    coarse = Cascade.load(replace(config, face_scale_factor=COARSE_PYRAMID))
    variants = {
        "shipped": lambda data: shipped.classify_bytes(data).category,
        "every net runs": lambda data: every_net.classify_bytes(data).category,
        "second decode, every net runs": lambda data: before_levers(every_net, data),
        "yolov4-tiny run first": lambda data: v4_first.classify_bytes(data).category,
        f"face pyramid factor {COARSE_PYRAMID} (not tuned)": lambda data: coarse.classify_bytes(data).category,
    }
    load_before = os.getloadavg()
    timed = time_interleaved(photos, variants, args.repeat)
    categories = {name: [runs[-1] for runs in returned] for name, returned in timed.returned.items()}
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/vision_speed_levers.py"
        + (f" --photos {args.photos}" if args.photos != 120 else "")
        + (f" --repeat {args.repeat}" if args.repeat != 2 else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "photos": len(photos),
        "repeat": args.repeat,
        "variants": variant_figures(timed, categories, "shipped"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| variant | CPU median ms | CPU mean ms | wall median ms | photos with another category |")
    print("|---|---|---|---|---|")
    for name, r in report["variants"].items():
        print(
            f"| {name} | {r['cpu_median_ms']} | {r['cpu_mean_ms']} | {r['wall_median_ms']} | "
            f"{r['photos_with_another_category_than_shipped']} |"
        )
    return 0


def replace_settle(finder):
    """The same person finder with every net always run."""
    clone = copy.copy(finder)
    clone.settle_margin = None
    return clone


if __name__ == "__main__":
    raise SystemExit(main())
