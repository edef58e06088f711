"""The second look for small faces, measured at its untuned defaults: categories with and without it, same photos.

    OMP_NUM_THREADS=1 .venv/bin/python bench/second_look_check.py [COPY ...]   # default: all five copies

Every photo of ../shared/data/images + ../shared/data/pool and its copies (bench/vision_data.py) is classified by
the shipped cascade and by the same cascade with ``face_second_look`` on. Nothing is fitted here: the crop
fraction, upscale and score are fixed guesses, so these figures are not tuned on the photos they are scored on.
Writes bench/results/second_look.json: per kind, right answers and category 1 calls with and without the second
look, how often it ran, its time where it ran (median ms at 1 thread), and every photo whose category changed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, KINDS, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import ImageDecodeError  # noqa: E402


def main() -> None:
    copies = tuple(sys.argv[1:]) or COPIES
    shipped_config = VisionConfig.from_env(os.environ, threads=1)
    shipped = Cascade.load(shipped_config)
    second_look = Cascade.load(dataclasses.replace(shipped_config, face_second_look=True))
    counts: Counter = Counter()
    changed, times = [], []
    for photo in load_photos():
        raw = photo.path.read_bytes()
        for copy in copies:
            data = raw if copy == "original" else make_copy(raw, copy)
            try:
                before, after = shipped.classify_bytes(data), second_look.classify_bytes(data)
            except ImageDecodeError:
                counts[(photo.kind, "undecodable")] += 1
                continue
            counts[(photo.kind, "copies")] += 1
            counts[(photo.kind, "right_shipped")] += before.category == photo.label
            counts[(photo.kind, "right_second_look")] += after.category == photo.label
            counts[(photo.kind, "model_shipped")] += before.category == 1
            counts[(photo.kind, "model_second_look")] += after.category == 1
            if "second_look" in after.timings_ms:
                counts[(photo.kind, "second_look_ran")] += 1
                times.append(after.timings_ms["second_look"])
            if before.category != after.category:
                changed.append(
                    {
                        "photo": photo.id,
                        "copy": copy,
                        "label": photo.label,
                        "shipped": before.category,
                        "second_look": after.category,
                    }
                )
    fields = (
        "copies",
        "right_shipped",
        "right_second_look",
        "model_shipped",
        "model_second_look",
        "second_look_ran",
        "undecodable",
    )
    by_kind = {kind: {f: counts[(kind, f)] for f in fields} for kind in KINDS}
    payload = {
        "copies": list(copies),
        "settings": {
            k: getattr(shipped_config, k)
            for k in ("face_second_look_head_fraction", "face_second_look_upscale", "face_second_look_min_confidence")
        },
        "by_kind": by_kind,
        "second_look_ms_median": round(statistics.median(times), 1) if times else None,
        "load": os.getloadavg(),
        "changed": changed,
    }
    for kind, row in by_kind.items():
        print(f"{kind:8s} {row}")
    print(f"second look ran {len(times)} times, median {payload['second_look_ms_median']} ms; changed {len(changed)}")
    out = ROOT / "bench" / "results" / "second_look.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
