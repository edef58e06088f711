"""The per-photo score caches of bench/hands_scores.py, bench/hands_fusion_scores.py and bench/body_votes_scores.py.

Each script scores every copy of a tuning photo (bench/vision_data.py) decoded the way the cascade decodes an
upload, and keeps one JSON record per photo under its cache folder, named by the photo file's sha256, a digest of
the models the scores depend on and the script's SCORES_VERSION: a changed photo, model or scoring rescores only
what it touches. Imported by those scripts once they have put layers/ and bench/ on ``sys.path``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from vision_data import COPIES, Photo, file_digest, load_photos, make_copy

from imagelift.config import VisionConfig
from imagelift.vision.image_io import DecodedImage, DecodeLimits, decode_image


def decode_upload(data: bytes, config: VisionConfig) -> DecodedImage:
    """``data`` decoded as the cascade decodes an upload under ``config``."""
    return decode_image(
        data,
        limits=DecodeLimits.from_config(config),
        target_long_side=config.decode_target_long_side,
    )


def cache_path(cache: Path, photo: Photo, model_digest: str, version: int) -> Path:
    return cache / f"{file_digest(photo.path)}-{model_digest}-v{version}.json"


def score_photos(
    photos: list[Photo], cache: Path, model_digest: str, version: int, score: Callable[[bytes], dict]
) -> None:
    """Every copy of each photo not cached yet scored by ``score`` and the photo's record written to ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for number, photo in enumerate(photos, 1):
        path = cache_path(cache, photo, model_digest, version)
        if path.is_file():
            continue
        data = photo.path.read_bytes()
        copies = {}
        for copy in COPIES:
            try:
                copies[copy] = score(make_copy(data, copy))
            except Exception as exc:  # a photo that cannot be decoded is recorded, not skipped silently
                copies[copy] = {"error": f"{type(exc).__name__}: {exc}"}
        record = {"id": photo.id, "kind": photo.kind, "label": photo.label, "source": photo.source, "copies": copies}
        path.write_text(json.dumps(record), encoding="utf-8")
        if number % 20 == 0:
            print(f"{number}/{len(photos)} photos, {time.monotonic() - started:.0f} s", flush=True)
    print(f"done: {len(photos)} photos in {time.monotonic() - started:.0f} s", flush=True)


def load_cached(cache: Path, model_digest: str, version: int, script: str) -> list[dict]:
    """The cached records of every tuning photo (raises when one is missing, naming the ``script`` to run)."""
    records = []
    for photo in load_photos():
        path = cache_path(cache, photo, model_digest, version)
        if not path.is_file():
            raise FileNotFoundError(f"{photo.id} has no cached scores: run {script} first")
        records.append(json.loads(path.read_text(encoding="utf-8")))
    return records
