"""What the body votes would cost: the cascade (config defaults, hand stage on) with and without MoveNet +
CenterNet run where it still says product, interleaved photo by photo on ../shared/data/images.

    OMP_NUM_THREADS=1 .venv/bin/python bench/body_speed.py [--models DIR] [--body DIR] [--repeat N]

Both variants take the photo's bytes and decode them the way the cascade decodes an upload; ``with_body`` then
runs both body nets (one thread each) on the photos the cascade leaves in category 3. Medians of CPU (process)
time per photo over the repeats, then over the photos (all, and those where the nets ran); the ratio of the two
variants on the same photos. Writes bench/results/body_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import load_photos, time_interleaved  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.body import PersonCenters, PoseEstimator  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--body", type=Path, default=None, help="folder holding body/*.onnx (default: --models)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    body = args.body or args.models
    config = VisionConfig.from_env(models_dir=args.models, threads=1)
    cascade = Cascade.load(config)
    pose = PoseEstimator(body / "body" / "movenet-lightning.onnx", threads=1)
    centers = PersonCenters(body / "body" / "centernet.onnx", threads=1)
    limits = DecodeLimits.from_config(config)
    long_side = max(config.decode_long_side, config.face_max_side) if config.decode_long_side else None

    def cascade_only(data: bytes) -> int:
        return cascade.classify_decoded(decode_image(data, limits=limits, target_long_side=long_side)).category

    def with_body(data: bytes) -> int:
        decoded = decode_image(data, limits=limits, target_long_side=long_side)
        category = cascade.classify_decoded(decoded).category
        if category == 3:
            rgb = cv2.cvtColor(decoded.bgr, cv2.COLOR_BGR2RGB)
            pose.keypoints(rgb)
            centers.best_person(rgb)
        return category

    photos = load_photos(sets=("images",))
    load_before = os.getloadavg()
    timed = time_interleaved(photos, {"cascade": cascade_only, "with_body": with_body}, args.repeat)
    load_after = os.getloadavg()
    ran = [i for i, values in enumerate(timed.returned["cascade"]) if values[0] == 3]

    def summary(indices: list[int]) -> dict:
        base = [timed.cpu_ms["cascade"][i] for i in indices]
        more = [timed.cpu_ms["with_body"][i] for i in indices]
        return {
            "photos": len(indices),
            "cascade_cpu_median_ms": round(statistics.median(base), 1),
            "with_body_cpu_median_ms": round(statistics.median(more), 1),
            "added_cpu_median_ms": round(statistics.median(m - b for m, b in zip(more, base, strict=True)), 1),
            "ratio_median": round(statistics.median(m / b for m, b in zip(more, base, strict=True)), 2),
        }

    result = {
        "repeat": args.repeat,
        "all_photos": summary(list(range(len(photos)))),
        "photos_where_the_nets_ran": summary(ran),
        "load": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "threads": 1,
    }
    out = ROOT / "bench" / "results" / "body_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
