"""The whole cascade at each face pyramid factor, interleaved photo by photo at 1 thread.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_scale_speed.py [--photos N] [--repeat R]

Variants: the cascade with its configured defaults except ``face_scale_factor`` (``SCALE_FACTORS``; 0.709 is the
MTCNN paper's factor). Per photo (a deterministic sample of the tuning photos), each variant classifies the bytes
``repeat`` times in turn, so a change of the machine's load falls on every variant alike; the CPU time
(process_time, which the load inflates less than wall time) and the wall time are kept and their medians printed.
The categories are compared photo by photo with the 0.709 pyramid's. Which factor keeps the faces is
bench/face_tuning.py's question; this one only times them. Writes bench/results/face_scale_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import load_photos, time_interleaved, variant_figures  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "face_scale_speed.json"
REFERENCE = 0.709
SCALE_FACTORS = (0.709, 0.65, 0.6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=120, help="tuning photos sampled (0 = all 470)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = VisionConfig.from_env({}, models_dir=args.models, threads=1)
    cv2.setNumThreads(1)
    cascades = {scale: Cascade.load(replace(config, face_scale_factor=scale)) for scale in SCALE_FACTORS}
    photos = load_photos()
    if args.photos:
        photos = random.Random(14).sample(photos, args.photos)
    load_before = os.getloadavg()
    variants = {str(scale): cascade.classify_bytes for scale, cascade in cascades.items()}
    timed = time_interleaved(photos, variants, args.repeat)
    categories = {name: [runs[-1].category for runs in returned] for name, returned in timed.returned.items()}
    face_ms = {
        name: [statistics.median(float(r.timings_ms.get("mtcnn", 0.0)) for r in runs) for runs in returned]
        for name, returned in timed.returned.items()
    }
    reference = str(REFERENCE)
    figures = variant_figures(timed, categories, reference)
    reference_cpu = statistics.median(timed.cpu_ms[reference])
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/face_scale_speed.py"
        + (f" --photos {args.photos}" if args.photos != 120 else "")
        + (f" --repeat {args.repeat}" if args.repeat != 2 else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "config_defaults_at_run": {
            "face_scale_factor": config.face_scale_factor,
            "face_max_side": config.face_max_side,
        },
        "photos": len(photos),
        "repeat": args.repeat,
        "variants": {
            name: {
                **r,
                "face_stage_wall_median_ms": round(statistics.median(face_ms[name]), 1),
                "cpu_median_saved_vs_0.709_ms": round(reference_cpu - statistics.median(timed.cpu_ms[name]), 1),
            }
            for name, r in figures.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| face_scale_factor | CPU median ms | CPU mean ms | wall median ms | face stage ms | other category |")
    print("|---|---|---|---|---|---|")
    for scale, r in report["variants"].items():
        print(
            f"| {scale} | {r['cpu_median_ms']} | {r['cpu_mean_ms']} | {r['wall_median_ms']} | "
            f"{r['face_stage_wall_median_ms']} | {r['photos_with_another_category_than_0.709']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
