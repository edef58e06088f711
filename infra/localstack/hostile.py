"""Hostile uploads, generated (never stored): what each one is, and the record the classifier must leave for it.

Used by the hostile corpus test (through the handler on the template's stack), the hostile benchmark (time and
peak memory of each case in its own process) and the burst benchmark (a share of hostile files among real
photos). Every case is built with numpy and OpenCV (HEIC with pillow-heif, AVIF with Pillow) from nothing but a seed; the big ones are cached under
``.cache/hostile/`` by :func:`build_file`, since encoding 50 MP takes a while.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "hostile"


@dataclass(frozen=True)
class HostileCase:
    name: str
    what: str
    make: Callable[[], bytes]
    status: str
    """The record's ``status``: ``failed`` or ``classified``."""
    code: str | None = None
    """``error.code`` of a failed record."""
    big: bool = False
    """Costly to make (cached by :func:`build_file`); the quick corpus leaves these out."""


def _texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth colour texture: photo-like to an encoder (neither flat nor noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {ext}")
    return buffer.tobytes()


def scan_bomb(width: int, height: int, extra_scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``extra_scans`` times (each copy: one more full pass)."""
    picture = np.full((height, width, 3), 200, np.uint8)
    picture[::50] = 40
    data = _encode(picture, ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 50])
    last_scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last_scan * extra_scans + b"\xff\xd9"


def forged_size(width: int = 7071, height: int = 7071) -> bytes:
    """A 16 x 16 JPEG whose frame header claims ``width`` x ``height`` (under the pixel limit)."""
    data = bytearray(_encode(np.full((16, 16, 3), 128, np.uint8), ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def half_jpeg_with_end() -> bytes:
    data = _encode(_texture(800, 600, 1), ".jpg")
    return data[: len(data) // 2] + b"\xff\xd9"


def randomised_third() -> bytes:
    data = bytearray(_encode(_texture(800, 600, 2), ".jpg"))
    start = data.index(b"\xff\xda") + 20
    third = (len(data) - start) // 3
    data[start : start + third] = np.random.default_rng(3).integers(0, 256, third, dtype=np.uint8).tobytes()
    return bytes(data)


def png_with_trailing_bytes() -> bytes:
    trailing = np.random.default_rng(4).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    return _encode(_texture(800, 600, 5), ".png") + trailing


def rgba16_png(width: int, height: int) -> bytes:
    """16-bit RGBA: a gradient cut-out on transparency (8 bytes a pixel to decode)."""
    ramp = np.linspace(0, 65535, width, dtype=np.uint16)
    picture = np.zeros((height, width, 4), np.uint16)
    picture[:, :, 0] = ramp
    picture[:, :, 1] = np.linspace(0, 65535, height, dtype=np.uint16)[:, None]
    picture[:, :, 2] = 30000
    picture[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4, 3] = 65535
    return _encode(picture, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9])


def rgb16_png(width: int, height: int) -> bytes:
    ramp = np.linspace(0, 65535, width, dtype=np.uint16)
    picture = np.empty((height, width, 3), np.uint16)
    picture[:] = ramp[None, :, None]
    return _encode(picture, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9])


def lossless_webp_bomb(width: int, height: int) -> bytes:
    """A lossless WebP with alpha that holds ``width`` x ``height`` in a few KB (1.9 KB at 7000 x 7000)."""
    picture = np.zeros((height, width, 4), np.uint8)
    picture[:, :, 2] = 200
    picture[:, :, 3] = 128
    return _encode(picture, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])


def big_jpeg(width: int, height: int, *, progressive: bool = False) -> bytes:
    return _encode(_texture(width, height, 6), ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])


def heic(picture: np.ndarray, quality: int = 80) -> bytes:
    """``picture`` (BGR) as HEIC, by libheif's x265 encoder through pillow-heif."""
    import io

    import pillow_heif

    rgb = np.ascontiguousarray(picture[:, :, ::-1])
    out = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB", size=(rgb.shape[1], rgb.shape[0]), data=rgb.tobytes()).save(out, quality=quality)
    return out.getvalue()


def avif(picture: np.ndarray, quality: int = 60) -> bytes:
    """``picture`` (BGR) as AVIF, by libavif through Pillow (its fastest speed: the big ones take a while)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture[:, :, ::-1])).save(out, format="AVIF", quality=quality, speed=10)
    return out.getvalue()


def forged_ispe(data: bytes, width: int, height: int) -> bytes:
    """A HEIF file whose every image size property (ispe) says ``width`` x ``height``, whatever its data holds."""
    forged = bytearray(data)
    at = forged.find(b"ispe")
    while at >= 0:
        forged[at + 8 : at + 16] = struct.pack(">II", width, height)  # after the box type: version/flags, w, h
        at = forged.find(b"ispe", at + 4)
    return bytes(forged)


def truncated_upload() -> bytes:
    data = _encode(_texture(800, 600, 7), ".jpg")
    return data[: len(data) * 2 // 3]


CASES: tuple[HostileCase, ...] = (
    HostileCase("scan-bomb-500", "7000x7000 progressive JPEG, last scan repeated 500 times", lambda: scan_bomb(7000, 7000, 500), "failed", "too_large", big=True),
    HostileCase("scan-bomb-5000", "the same with 5000 scans", lambda: scan_bomb(7000, 7000, 5000), "failed", "too_large", big=True),
    HostileCase("scan-bomb-small-120", "640x480 progressive JPEG with 120 scans (over the scan limit)", lambda: scan_bomb(640, 480, 120), "failed", "too_large"),
    HostileCase("scan-bomb-worst-accepted", "7000x7000 progressive JPEG with 20 scans (at the scan x pixel budget)", lambda: scan_bomb(7000, 7000, 10), "failed", "corrupt", big=True),
    HostileCase("forged-7071", "629-byte JPEG whose header claims 7071x7071", forged_size, "failed", "corrupt"),
    HostileCase("half-jpeg-with-end", "half a JPEG with an end marker appended", half_jpeg_with_end, "failed", "corrupt"),
    HostileCase("randomised-third", "a JPEG with a third of its data randomised", randomised_third, "failed", "corrupt"),
    HostileCase("truncated-upload", "the first two thirds of a JPEG", truncated_upload, "failed", "truncated"),
    HostileCase("png-trailing-2k", "a valid PNG followed by 2 KB of other bytes", png_with_trailing_bytes, "classified"),
    HostileCase("rgba16-7000", "16-bit RGBA PNG, 7000x7000, 405 KB (392 MB to decode)", lambda: rgba16_png(7000, 7000), "failed", "too_large", big=True),
    HostileCase("rgba16-worst-accepted", "16-bit RGBA PNG 5000x5000 (200 MB to decode: the budget)", lambda: rgba16_png(5000, 5000), "classified", big=True),
    HostileCase("rgb16-50mp", "16-bit RGB PNG 7071x7071 (50 MP, 300 MB to decode)", lambda: rgb16_png(7071, 7071), "failed", "too_large", big=True),
    HostileCase("rgb16-worst-accepted", "16-bit RGB PNG 5773x5773 (200 MB to decode: the budget)", lambda: rgb16_png(5773, 5773), "classified", big=True),
    HostileCase("webp-lossless-alpha-7000", "1.9 KB lossless WebP with alpha, 7000x7000", lambda: lossless_webp_bomb(7000, 7000), "classified", big=True),
    HostileCase("webp-lossless-alpha-max", "lossless WebP with alpha, 16383x3051 (50 MP)", lambda: lossless_webp_bomb(16383, 3051), "classified", big=True),
    HostileCase("jpeg-50mp", "an ordinary 8-bit JPEG at 7071x7071", lambda: big_jpeg(7071, 7071), "classified", big=True),
    HostileCase("jpeg-50mp-progressive", "a progressive 8-bit JPEG at 7071x7071 (10 scans)", lambda: big_jpeg(7071, 7071, progressive=True), "classified", big=True),
    HostileCase("heic-claims-100000", "HEIC of 800x600 whose ispe claims 100000x100000", lambda: forged_ispe(heic(_texture(800, 600, 8)), 100000, 100000), "failed", "too_large"),
    HostileCase("avif-claims-100000", "AVIF of 800x600 whose ispe claims 100000x100000", lambda: forged_ispe(avif(_texture(800, 600, 8)), 100000, 100000), "failed", "too_large"),
    HostileCase("heic-truncated", "the first two thirds of a HEIC", lambda: (lambda d: d[: len(d) * 2 // 3])(heic(_texture(800, 600, 9))), "failed", "truncated"),
    HostileCase("avif-truncated", "the first two thirds of an AVIF", lambda: (lambda d: d[: len(d) * 2 // 3])(avif(_texture(800, 600, 9))), "failed", "truncated"),
    HostileCase("heic-hides-7000", "HEIC of 7000x7000 whose ispe claims 100x100 (a small size hiding a big frame)", lambda: forged_ispe(heic(_texture(7000, 7000, 10), 30), 100, 100), "failed", "corrupt", big=True),
    HostileCase("avif-hides-7000", "AVIF of 7000x7000 whose ispe claims 100x100 (a small size hiding a big frame)", lambda: forged_ispe(avif(_texture(7000, 7000, 10), 30), 100, 100), "failed", "corrupt", big=True),
    HostileCase("heic-50mp", "an ordinary HEIC at 7070x7070 (50 MP: HEVC declares an odd size one pixel larger)", lambda: heic(_texture(7070, 7070, 11), 50), "classified", big=True),
    HostileCase("avif-50mp", "an ordinary AVIF at 7071x7071", lambda: avif(_texture(7071, 7071, 11), 40), "classified", big=True),
)  # fmt: skip


def case(name: str) -> HostileCase:
    for candidate in CASES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def build_file(item: HostileCase, cache: Path = CACHE) -> Path:
    """The case as a file under ``cache`` (made once: the big ones take a while to encode)."""
    path = cache / f"{item.name}.bin"
    if not path.is_file():
        data = item.make()
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def build(item: HostileCase, cache: Path = CACHE) -> bytes:
    """The case's bytes (the big ones from the cache)."""
    return build_file(item, cache).read_bytes() if item.big else item.make()
