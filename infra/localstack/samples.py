"""Sample photos for the demo and the burst benchmark, from files on this machine only (never the network).

By default they are photographs scikit-image ships in its wheel (``skimage.data``), encoded to JPEG, with the
category a person would give each: the astronaut's and the cameraman's portraits show a face (model, 1); the
same photos cropped below the face show a body without one (worn, 2: a person, or part of one); the coffee
cup, the cat, the rocket and the clock show no person (product, 3). ``IMAGES=DIR`` (or ``photos_from_dir``)
takes photos from a folder instead: the label comes from a folder name that starts ``cat1``/``cat2``/``cat3``
or is ``model``/``worn``/``product`` (like ../shared/data/images), else the photo is unlabelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from imagelift.records.categories import CATEGORY_NAMES

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    """File name to upload it as (``<name>.jpg`` for the bundled ones)."""
    data: bytes
    label: int | None
    """The category a person gives it (1 model, 2 worn, 3 product), None when unknown."""
    source: str

    @property
    def label_name(self) -> str:
        return CATEGORY_NAMES.get(self.label or 0, "unlabelled")


def _jpeg(image) -> bytes:  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array[..., :3], cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a sample photo as JPEG")
    return encoded.tobytes()


def bundled_photos() -> list[SamplePhoto]:
    """Eight photos from scikit-image's bundled data, labelled (two or more per category)."""
    from skimage import data

    astronaut, camera = data.astronaut(), data.camera()
    sources = [
        ("astronaut", astronaut, 1, "skimage.data.astronaut (Eileen Collins portrait)"),
        ("cameraman", camera, 1, "skimage.data.camera (cameraman)"),
        ("astronaut-body", astronaut[260:, :420], 2, "skimage.data.astronaut, cropped below the face and on the right"),
        ("cameraman-legs", camera[300:, :], 2, "skimage.data.camera, cropped to legs and tripod"),
        ("coffee", data.coffee(), 3, "skimage.data.coffee"),
        ("chelsea", data.chelsea(), 3, "skimage.data.chelsea (a cat)"),
        ("rocket", data.rocket(), 3, "skimage.data.rocket"),
        ("clock", data.clock(), 3, "skimage.data.clock"),
    ]
    return [SamplePhoto(f"{name}.jpg", _jpeg(image), label, source) for name, image, label, source in sources]


def _label_from_path(path: Path, root: Path) -> int | None:
    for part in path.relative_to(root).parts[:-1]:
        lowered = part.lower()
        match = re.match(r"cat([123])", lowered)
        if match:
            return int(match.group(1))
        for category, name in CATEGORY_NAMES.items():
            if lowered == name:
                return category
    return None


def photos_from_dir(folder: Path) -> list[SamplePhoto]:
    """Every photo under ``folder`` (sorted), labelled from its folder name where it says."""
    if not folder.is_dir():
        raise FileNotFoundError(f"IMAGES={folder} is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"IMAGES={folder} holds no photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
    return [SamplePhoto(_safe_name(p.name), p.read_bytes(), _label_from_path(p, folder), str(p)) for p in paths]


def _safe_name(name: str) -> str:
    """A file name that fits the key contract's last segment (no slash) and reads well in a URL."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "photo.jpg"


def corrupt_variants(photo: SamplePhoto) -> list[tuple[str, bytes]]:
    """Broken files of the kinds uploads really contain: empty, truncated JPEG, random bytes named .jpg."""
    import hashlib

    noise = hashlib.sha256(photo.data).digest() * 64
    return [
        ("empty.jpg", b""),
        ("truncated.jpg", photo.data[: max(len(photo.data) // 3, 1)]),
        ("not-a-photo.jpg", noise),
    ]
