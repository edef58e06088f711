"""Skin-coloured pixels of every tuning photo and copy: a weak vote for a hand holding the shoe (no network).

    OMP_NUM_THREADS=1 .venv/bin/python bench/vision_skin.py

A hand that holds a shoe enters the frame from an edge, and COCO's person class hardly fires on it. The vote is
the textbook YCrCb skin box (Chai and Ngan 1999: Cr 133-173, Cb 77-127) on the photo shrunk to SIDE px on its long
side (the face stage's decode, as the cascade would have it), summarised as: the skin share of the whole photo, of
the band of BAND of each side along the edges, and the largest connected skin region's share. bench/tune_vision.py
(vision_fusion) weighs it with the other votes by cross-validation. Cached under .cache/vision_skin/.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))
sys.path.insert(0, str(ROOT / "bench"))

from vision_data import COPIES, file_digest, load_photos, make_copy  # noqa: E402

from imagelift.config import VisionConfig  # noqa: E402
from imagelift.vision.image_io import DecodeLimits, decode_image  # noqa: E402

SKIN_VERSION = 1
CACHE = ROOT / ".cache" / "vision_skin"
SIDE = 192
BAND = 0.2
CR = (133, 173)
CB = (77, 127)


def skin_votes(image_bgr: np.ndarray) -> dict:
    h, w = image_bgr.shape[:2]
    scale = SIDE / max(h, w)
    small = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ycrcb = cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb)
    cr, cb = ycrcb[:, :, 1], ycrcb[:, :, 2]
    mask = (cr >= CR[0]) & (cr <= CR[1]) & (cb >= CB[0]) & (cb <= CB[1])
    sh, sw = mask.shape
    by, bx = max(1, round(sh * BAND)), max(1, round(sw * BAND))
    band = np.zeros_like(mask)
    band[:by], band[-by:], band[:, :bx], band[:, -bx:] = True, True, True, True
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    return {
        "skin": round(float(mask.mean()), 5),
        "skin_edges": round(float(mask[band].mean()), 5),
        "skin_largest": round(largest / mask.size, 5),
    }


def main() -> int:
    config = VisionConfig.from_env({}, threads=1)
    cv2.setNumThreads(1)
    limits = DecodeLimits.from_config(config)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for photo in load_photos():
        target = CACHE / f"{file_digest(photo.path)}.json"
        if target.is_file() and json.loads(target.read_text()).get("version") == SKIN_VERSION:
            continue
        data = photo.path.read_bytes()
        copies = {}
        for copy in COPIES:
            decoded = decode_image(
                make_copy(data, copy),
                limits=limits,
                target_long_side=max(config.decode_long_side, config.face_max_side),
            )
            copies[copy] = skin_votes(decoded.bgr)
        tmp = target.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"version": SKIN_VERSION, "id": photo.id, "copies": copies}))
        os.replace(tmp, target)
    print(f"skin votes in {time.monotonic() - started:.0f} s; cache {CACHE}", file=sys.stderr)
    return 0


def load_skin(photos) -> dict[str, dict]:
    out = {}
    for photo in photos:
        target = CACHE / f"{file_digest(photo.path)}.json"
        if target.is_file():
            cached = json.loads(target.read_text())
            if cached.get("version") == SKIN_VERSION:
                out[photo.id] = cached["copies"]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
