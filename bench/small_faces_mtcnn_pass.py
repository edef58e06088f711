"""The shipped face stage's first pass on every tuning photo and copy, cached per photo, for bench/small_faces_curve.py.

    OMP_NUM_THREADS=1 .venv/bin/python bench/small_faces_mtcnn_pass.py

Each copy is decoded as ``Cascade.classify_bytes`` decodes it and goes through ``Cascade.detect_faces``; the record
keeps whether a face counted, the best O-Net score and the CPU milliseconds. Cache:
.cache/small_faces_curve/mtcnn/<key>.json (key: photo id and file digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, Photo, file_digest, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.cascade import Cascade  # noqa: E402
from imagelift.vision.image_io import ImageDecodeError, decode_image  # noqa: E402

CACHE = ROOT / ".cache" / "small_faces_curve"


def cache_file(stage: str, photo: Photo) -> Path:
    key = hashlib.sha256(f"{photo.id}:{file_digest(photo.path)}".encode()).hexdigest()[:20]
    return CACHE / stage / f"{key}.json"


def decode_target(config: VisionConfig) -> int:
    return max(config.decode_long_side, config.face_max_side)


def collect_mtcnn(photos: list[Photo], cascade: Cascade) -> dict:
    """{photo id: {copy: {"face_found", "best_face", "face_cpu_ms", "width", "height"} or {"error"}}}."""
    target = decode_target(cascade.config)
    results, start = {}, time.perf_counter()
    for index, photo in enumerate(photos):
        cache = cache_file("mtcnn", photo)
        if cache.is_file():
            results[photo.id] = json.loads(cache.read_text())
            continue
        raw = photo.path.read_bytes()
        per_copy = {}
        for copy in COPIES:
            try:
                decoded = decode_image(make_copy(raw, copy), target_long_side=target)
            except (ImageDecodeError, ValueError) as exc:
                per_copy[copy] = {"error": str(getattr(exc, "code", exc))}
                continue
            c0 = time.process_time()
            faces = cascade.detect_faces(decoded.bgr)
            face_ms = (time.process_time() - c0) * 1000
            per_copy[copy] = {
                "width": decoded.width,
                "height": decoded.height,
                "face_found": bool(faces.faces),
                "best_face": round(float(max([f.confidence for f in faces.faces] + [faces.best_rejected])), 5),
                "face_cpu_ms": round(face_ms, 2),
            }
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(per_copy))
        results[photo.id] = per_copy
        if (index + 1) % 25 == 0:
            print(f"  mtcnn: {index + 1}/{len(photos)} ({time.perf_counter() - start:.0f} s)", flush=True)
    return results


def main() -> None:
    config = VisionConfig.from_env()
    cascade = Cascade.load(config)
    photos = load_photos()
    results = collect_mtcnn(photos, cascade)
    found = sum(r.get("face_found", False) for p in results.values() for r in p.values())
    print(f"{len(photos)} photos, {found} copies with a face")


if __name__ == "__main__":
    main()
