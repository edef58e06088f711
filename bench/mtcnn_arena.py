"""ONNX Runtime's CPU memory arena for the MTCNN sessions: peak RSS and face-stage time with and without it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/mtcnn_arena.py

P-Net sees a new input shape at every pyramid level and R-/O-Net a new batch size per photo; the arena keeps a
block for the shapes it has seen. Peak RSS: a fresh process classifies the 39 photos of ../shared/data/images and
the same resized to 2000 px (bench/vision_bench.py's PEAK_RSS), once with the arena (as before) and once without
(as shipped). Time: both face stages on the same decoded photos (a deterministic sample of the tuning photos),
interleaved, CPU time at 1 thread, and whether their faces and near misses are identical.
Writes bench/results/mtcnn_arena.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

import vision_bench  # noqa: E402
from vision_data import load_photos  # noqa: E402

import imagelift.vision.mtcnn as mtcnn_module  # noqa: E402
from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import decode_image  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mtcnn_arena.json"
WITH_ARENA = """
import imagelift.vision.mtcnn as m
_options = m.session_options
def _with_arena(threads):
    options = _options(threads)
    options.enable_cpu_mem_arena = True
    return options
m.session_options = _with_arena
"""


def with_arena(threads: int):
    options = SHIPPED_OPTIONS(threads)
    options.enable_cpu_mem_arena = True
    return options


SHIPPED_OPTIONS = mtcnn_module.session_options


def peak_rss_mb(folder: str, prelude: str) -> float:
    code = prelude + vision_bench.PEAK_RSS.format(models=str(ROOT / "models"), folder=folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return round(int(done.stdout.strip().splitlines()[-1]) / 1024, 1)


def main() -> int:
    items = vision_bench.labelled(ROOT.parent / "shared" / "data" / "images")
    with tempfile.TemporaryDirectory() as tmp:
        for k, photos in enumerate([items, vision_bench.resized(items)]):
            for name, data, _ in photos:
                (Path(tmp) / f"{k}_{name}").write_bytes(data)
        rss = {"without arena (shipped)": peak_rss_mb(tmp, ""), "with arena": peak_rss_mb(tmp, WITH_ARENA)}
    config = VisionConfig.from_env({}, models_dir=ROOT / "models", threads=1)
    shipped = Cascade.load(config)
    mtcnn_module.session_options = with_arena
    arena = Cascade.load(config)
    mtcnn_module.session_options = SHIPPED_OPTIONS
    cv2.setNumThreads(1)
    photos = random.Random(5).sample(load_photos(), 80)
    times: dict[str, list[float]] = {"without arena (shipped)": [], "with arena": []}
    identical = 0
    for photo in photos:
        image = decode_image(photo.path.read_bytes(), target_long_side=config.face_max_side).bgr
        for _ in range(2):
            t = time.process_time()
            a = arena.detect_faces(image)
            times["with arena"].append((time.process_time() - t) * 1000)
            t = time.process_time()
            b = shipped.detect_faces(image)
            times["without arena (shipped)"].append((time.process_time() - t) * 1000)
        same_faces = [f.confidence for f in a.faces] == [f.confidence for f in b.faces]
        identical += same_faces and a.best_rejected == b.best_rejected
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "OMP_NUM_THREADS=1 .venv/bin/python bench/mtcnn_arena.py",
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "peak_rss_mb": {**rss, "photos": 2 * len(items)},
        "face_stage_cpu_median_ms": {k: round(statistics.median(v), 1) for k, v in times.items()},
        "photos_timed": len(photos),
        "photos_with_identical_faces_and_near_miss": identical,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
