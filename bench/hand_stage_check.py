"""The shipped hand stage (VisionConfig.hand_stage) against the rule bench/hands_fusion.py fitted, on every tuning
photo's original copy: the same decision per photo, and what the stage costs where it runs.

    OMP_NUM_THREADS=1 .venv/bin/python bench/hand_stage_check.py    # after bench/hands_fusion_scores.py

The cascade runs with the stage on (config defaults otherwise, 1 thread); each photo's category is compared with
the category the fitted rule gives on bench/hands_fusion_scores.py's cached scores. Interleaved in the same run,
the cascade with the stage off on the same decode gives the reference time. Writes
bench/results/hand_stage_check.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from hands_fusion_scores import load_scores  # noqa: E402
from vision_data import load_photos  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.hand_stage import best_person_score  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402


def expected(copy: dict, config: VisionConfig) -> int:
    if copy["category"] != 3:
        return copy["category"]
    stretched = max(b[0] for b in copy["hands"]["stretch"].values())
    padded = max(b[0] for b in copy["hands"]["pad"].values())
    person = best_person_score(copy["person_scores"])
    fired = min(stretched, padded) >= config.hand_min_confidence and person >= config.hand_person_min_confidence
    return 2 if fired else 3


def main() -> int:
    on = Cascade.load(VisionConfig.from_env(models_dir=ROOT / "models", threads=1, hand_stage=True))
    off = Cascade.load(VisionConfig.from_env(models_dir=ROOT / "models", threads=1, hand_stage=False))
    config = on.config
    records = {r["id"]: r for r in load_scores()}
    loads, mismatches, stage_ms, on_ms, off_ms = [], [], [], [], []
    fired = ran = 0
    started = time.monotonic()
    for number, photo in enumerate(load_photos(), 1):
        decoded = decode_image(
            photo.path.read_bytes(),
            limits=DecodeLimits.from_config(config),
            target_long_side=max(config.decode_long_side, config.face_max_side),
        )
        result = on.classify_decoded(decoded)
        reference = off.classify_decoded(decoded)
        want = expected(records[photo.id]["copies"]["original"], config)
        if result.category != want:
            mismatches.append({"photo": photo.id, "stage": result.category, "fitted_rule": want})
        if result.hand_vote is not None:
            ran += 1
            fired += bool(result.hand_vote["fired"])
            stage_ms.append(result.timings_ms["hands"])
            on_ms.append(result.timings_ms["total"])
            off_ms.append(reference.timings_ms["total"])
        if number % 100 == 0:
            loads.append(os.getloadavg()[0])
            print(f"{number} photos, {time.monotonic() - started:.0f} s", flush=True)
    ratios = sorted(a / b for a, b in zip(on_ms, off_ms, strict=True))
    out = {
        "photos": len(records),
        "copies": "original",
        "mismatches": mismatches,
        "stage_ran": ran,
        "stage_fired": fired,
        "stage_ms_median": round(statistics.median(stage_ms), 1),
        "stage_ms_p95": round(sorted(stage_ms)[int(0.95 * (len(stage_ms) - 1))], 1),
        "cascade_ms_median_with_stage": round(statistics.median(on_ms), 1),
        "cascade_ms_median_without_stage": round(statistics.median(off_ms), 1),
        "ratio_with_over_without_median": round(statistics.median(ratios), 3),
        "note": "wall-clock ms at 1 thread on the photos where the stage ran, the two cascades interleaved per photo",
        "load_1min_every_100_photos": loads,
        "seconds": round(time.monotonic() - started),
    }
    path = ROOT / "bench" / "results" / "hand_stage_check.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k != "mismatches"}, indent=2), len(mismatches), "mismatches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
