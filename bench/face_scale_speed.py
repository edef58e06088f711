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

from vision_data import load_photos  # noqa: E402

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
    cpu: dict[float, list[float]] = {scale: [] for scale in SCALE_FACTORS}
    wall: dict[float, list[float]] = {scale: [] for scale in SCALE_FACTORS}
    face_ms: dict[float, list[float]] = {scale: [] for scale in SCALE_FACTORS}
    categories: dict[float, list[int]] = {scale: [] for scale in SCALE_FACTORS}
    load_before = os.getloadavg()
    for photo in photos:
        data = photo.path.read_bytes()
        timings: dict[float, list[tuple[float, float, float]]] = {scale: [] for scale in SCALE_FACTORS}
        decided: dict[float, int] = {}
        for _ in range(args.repeat):
            for scale, cascade in cascades.items():
                c0, w0 = time.process_time(), time.perf_counter()
                result = cascade.classify_bytes(data)
                cpu_ms = (time.process_time() - c0) * 1000
                wall_ms = (time.perf_counter() - w0) * 1000
                timings[scale].append((cpu_ms, wall_ms, float(result.timings_ms.get("mtcnn", 0.0))))
                decided[scale] = result.category
        for scale, runs in timings.items():
            cpu[scale].append(statistics.median(t[0] for t in runs))
            wall[scale].append(statistics.median(t[1] for t in runs))
            face_ms[scale].append(statistics.median(t[2] for t in runs))
            categories[scale].append(decided[scale])
    reference_cpu = statistics.median(cpu[REFERENCE])
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
            str(scale): {
                "cpu_median_ms": round(statistics.median(cpu[scale]), 1),
                "cpu_mean_ms": round(statistics.mean(cpu[scale]), 1),
                "wall_median_ms": round(statistics.median(wall[scale]), 1),
                "face_stage_wall_median_ms": round(statistics.median(face_ms[scale]), 1),
                "cpu_median_saved_vs_0.709_ms": round(reference_cpu - statistics.median(cpu[scale]), 1),
                "photos_with_another_category_than_0.709": sum(
                    a != b for a, b in zip(categories[scale], categories[REFERENCE], strict=True)
                ),
            }
            for scale in SCALE_FACTORS
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
