"""The tuning photos: ../shared/data/images + ../shared/data/pool, each with its label, kind and source, and the
copies made of each in memory (mirror, 90% centre crop, 2000 px rescale, JPEG q=60 recompress).

Kinds split the three categories the way the acceptance figures do: ``model``; ``hands`` and ``legs`` (worn);
``amateur`` and ``studio`` (product). A product photo from alexeygrigorev/clothing-dataset is an amateur shot (floors,
beds, tables), every other shop's is a studio/shop shot. A worn photo is ``hands`` when its MANIFEST note starts with
``hand`` or its file name says ``hand``.
"""

from __future__ import annotations

import csv
import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = ("images", "pool")
CATEGORY_BY_FOLDER = {"cat1_model": 1, "cat2_legs": 2, "cat3_product": 3}
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
AMATEUR_SOURCE = "alexeygrigorev/clothing-dataset"
COPIES = ("original", "mirror", "crop90", "rescale2000", "jpeg60")
KINDS = ("model", "hands", "legs", "amateur", "studio")


@dataclass(frozen=True)
class Photo:
    set_name: str
    path: Path
    label: int
    kind: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.set_name}/{self.path.parent.name}/{self.path.name}"


def _kind(label: int, name: str, source: str, notes: str) -> str:
    if label == 1:
        return "model"
    if label == 2:
        return "hands" if notes.lower().startswith("hand") or "hand" in name.lower() else "legs"
    return "amateur" if source == AMATEUR_SOURCE else "studio"


def load_photos(data: Path = DATA, sets: tuple[str, ...] = SETS) -> list[Photo]:
    photos = []
    for set_name in sets:
        folder = data / set_name
        manifest = {}
        if (folder / "MANIFEST.csv").is_file():
            with (folder / "MANIFEST.csv").open(encoding="utf-8") as handle:
                manifest = {row["file"]: row for row in csv.DictReader(handle)}
        for path in sorted(folder.glob("cat*/*")):
            if path.parent.name not in CATEGORY_BY_FOLDER or path.suffix.lower() not in SUFFIXES:
                continue
            row = manifest.get(path.name, {})
            label = CATEGORY_BY_FOLDER[path.parent.name]
            source = row.get("source_repo") or "unknown"
            photos.append(Photo(set_name, path, label, _kind(label, path.name, source, row.get("notes", "")), source))
    return photos


def _encode(image: np.ndarray, quality: int = 95) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def make_copy(data: bytes, copy: str) -> bytes:
    """The encoded bytes of one copy of a photo; ``original`` is the file as it is."""
    if copy == "original":
        return data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("cannot decode")
    h, w = image.shape[:2]
    if copy == "mirror":
        return _encode(image[:, ::-1])
    if copy == "crop90":
        dy, dx = round(h * 0.05), round(w * 0.05)
        return _encode(image[dy : h - dy, dx : w - dx])
    if copy == "rescale2000":
        scale = 2000 / max(h, w)
        interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        return _encode(cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=interpolation))
    if copy == "jpeg60":
        return _encode(image, 60)
    raise ValueError(f"unknown copy {copy!r}")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class Interleaved:
    """Per variant and photo: the median CPU and wall milliseconds over the repeats, and what each repeat returned."""

    cpu_ms: dict[str, list[float]]
    wall_ms: dict[str, list[float]]
    returned: dict[str, list[list[Any]]]


def time_interleaved(photos: list[Photo], variants: dict[str, Callable[[bytes], Any]], repeat: int) -> Interleaved:
    """Each variant on each photo's bytes ``repeat`` times in turn, so a change of the machine's load falls on every
    variant alike; CPU time (process_time, which the load inflates less than wall time) and wall time per run."""
    out = Interleaved({n: [] for n in variants}, {n: [] for n in variants}, {n: [] for n in variants})
    for photo in photos:
        data = photo.path.read_bytes()
        runs: dict[str, list[tuple[float, float, Any]]] = {name: [] for name in variants}
        for _ in range(repeat):
            for name, run in variants.items():
                c0, w0 = time.process_time(), time.perf_counter()
                value = run(data)
                runs[name].append(((time.process_time() - c0) * 1000, (time.perf_counter() - w0) * 1000, value))
        for name, timings in runs.items():
            out.cpu_ms[name].append(statistics.median(t[0] for t in timings))
            out.wall_ms[name].append(statistics.median(t[1] for t in timings))
            out.returned[name].append([t[2] for t in timings])
    return out


def variant_figures(timed: Interleaved, categories: dict[str, list[int]], reference: str) -> dict[str, dict]:
    """The printed and written figures of each variant; categories compared photo by photo with ``reference``'s."""
    return {
        name: {
            "cpu_median_ms": round(statistics.median(timed.cpu_ms[name]), 1),
            "cpu_mean_ms": round(statistics.mean(timed.cpu_ms[name]), 1),
            "wall_median_ms": round(statistics.median(timed.wall_ms[name]), 1),
            f"photos_with_another_category_than_{reference}": sum(
                a != b for a, b in zip(categories[name], categories[reference], strict=True)
            ),
        }
        for name in timed.cpu_ms
    }
