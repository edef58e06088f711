"""The shipped pose stage (VisionConfig.pose_face) against the rule bench/pose_face.py fitted, on every tuning
photo's original copy, and what the stage costs: CPU per photo and peak memory, with the stage off as reference.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pose_stage_check.py [--rss-rounds 3]   # after bench/pose_face_scores.py

- Decisions: the cascade with the stage on (config defaults otherwise, 1 thread); each photo's category is compared
  with the one the fitted rule (``pose_face_score`` less ``pose_face_away_penalty`` where MoveNet sees a person
  turned away, >= ``pose_face_min_score`` on some person box) gives on
  bench/pose_face_scores.py's cached keypoints.
- CPU: the cascade with the stage off on the same decode, the two interleaved photo by photo (which goes first
  alternates), over all 470 photos and over the photos where the stage ran.
- Peak RSS: fresh processes classifying the 39 photos of ../shared/data/images as they are and at 2000 px (the
  classifier benchmark's 78), ``IMAGELIFT_POSE_FACE`` 0 and 1 alternating for ``--rss-rounds`` rounds.

Writes bench/results/pose_stage_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from pose_face_scores import load_scores  # noqa: E402
from vision_bench import labelled, peak_rss, resized  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.body import head_score  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402


def expected(copy: dict, config: VisionConfig) -> int:
    boxes = copy.get("boxes", [])[: config.pose_face_max_boxes]
    best = max(
        (head_score(b["keypoints"], b["crop"], config.pose_face_score, config.pose_face_away_penalty) for b in boxes),
        default=0.0,
    )
    return 1 if boxes and best >= config.pose_face_min_score else copy["category"]


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def decisions_and_cpu(records: dict[str, dict]) -> dict:
    on = Cascade.load(VisionConfig.from_env(models_dir=ROOT / "models", threads=1, pose_face=True))
    off = Cascade.load(VisionConfig.from_env(models_dir=ROOT / "models", threads=1, pose_face=False))
    config = on.config
    loads, mismatches, changed = [], [], []
    cpu = {"on": [], "off": []}
    ran_on, ran_off, stage_ms = [], [], []
    started = time.monotonic()
    for number, photo in enumerate(load_photos(), 1):
        decoded = decode_image(
            photo.path.read_bytes(),
            limits=DecodeLimits.from_config(config),
            target_long_side=max(config.decode_long_side, config.face_max_side),
        )
        results, spent = {}, {}
        for name in ("on", "off") if number % 2 else ("off", "on"):
            cascade = on if name == "on" else off
            c0 = time.process_time()
            results[name] = cascade.classify_decoded(decoded)
            spent[name] = (time.process_time() - c0) * 1000
        for name in cpu:
            cpu[name].append(spent[name])
        result = results["on"]
        want = expected(records[photo.id]["copies"]["original"], config)
        if result.category != want:
            mismatches.append({"photo": photo.id, "stage": result.category, "fitted_rule": want})
        if result.category != results["off"].category:
            changed.append(
                {"photo": photo.id, "label": photo.label, "on": result.category, "off": results["off"].category}
            )
        if result.pose_face is not None:
            ran_on.append(spent["on"])
            ran_off.append(spent["off"])
            stage_ms.append(result.timings_ms["pose_face"])
        if number % 100 == 0:
            loads.append(round(os.getloadavg()[0], 2))
            print(f"{number} photos, {time.monotonic() - started:.0f} s", flush=True)
    ratios = [a / b for a, b in zip(cpu["on"], cpu["off"], strict=True)]
    return {
        "photos": len(cpu["on"]),
        "copies": "original",
        "mismatches": mismatches,
        "changed_category": changed,
        "cpu_ms_median": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "cpu_ms_mean": {k: round(statistics.fmean(v), 2) for k, v in cpu.items()},
        "cpu_ms_p95": {k: round(quantile(v, 0.95), 2) for k, v in cpu.items()},
        "paired_ratio_on_over_off_median": round(statistics.median(ratios), 3),
        "stage_ran": len(stage_ms),
        "stage_ms_median": round(statistics.median(stage_ms), 1) if stage_ms else None,
        "stage_ms_p95": round(quantile(stage_ms, 0.95), 1) if stage_ms else None,
        "where_it_ran_cpu_ms_median": {
            "on": round(statistics.median(ran_on), 1) if ran_on else None,
            "off": round(statistics.median(ran_off), 1) if ran_off else None,
        },
        "load_1min_every_100_photos": loads,
    }


def peak_rss_rounds(rounds: int) -> dict:
    items = labelled(ROOT.parent / "shared" / "data" / "images")
    sets = [items, resized(items)]
    peaks: dict[str, list[float]] = {"off": [], "on": []}
    loads = []
    for _ in range(rounds):
        for name in peaks:
            os.environ["IMAGELIFT_POSE_FACE"] = "1" if name == "on" else "0"
            peaks[name].append(peak_rss(ROOT / "models", sets)["peak_rss_mb"])
            loads.append(round(os.getloadavg()[0], 2))
            print(f"peak RSS, pose stage {name}: {peaks[name][-1]} MB", flush=True)
    os.environ.pop("IMAGELIFT_POSE_FACE")
    return {"photos": sum(len(s) for s in sets), "peak_rss_mb": peaks, "load_1min": loads}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rss-rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    records = {r["id"]: r for r in load_scores()}
    fresh = peak_rss_rounds(args.rss_rounds)  # first, while this process is small
    out = {"decisions_and_cpu": decisions_and_cpu(records), "fresh_processes": fresh}
    out["note"] = "CPU ms at 1 thread, the cascades with the stage on and off interleaved per photo on one decode"
    out["seconds"] = round(time.monotonic() - started)
    path = ROOT / "bench" / "results" / "pose_stage_check.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
