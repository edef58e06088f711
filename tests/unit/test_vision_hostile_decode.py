"""Hostile photos: scan bombs, forged sizes, memory bombs, damaged data, trailing bytes, and a fuzz run.

Every file is generated here. Each hostile file must end in its typed :class:`ImageDecodeError` (never another
exception, never a picture made up by the decoder), quickly; honest files with oddities must still decode.
"""

from __future__ import annotations

import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from imagelift.config import VisionConfig
from imagelift.vision.image_io import ERROR_CODES, DecodeLimits, ImageDecodeError, decode_image, read_header

LIMITS = DecodeLimits.default()


def _photo(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def _jpeg(image: np.ndarray, *, progressive: bool = False, quality: int = 90) -> bytes:
    ok, buffer = cv2.imencode(
        ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    )
    assert ok
    return buffer.tobytes()


def _code(data: bytes, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, **kwargs)
    return caught.value.code


def _scan_bomb(image: np.ndarray, extra_scans: int) -> bytes:
    """A progressive JPEG with its last scan repeated: every copy is another full pass for the decoder."""
    data = _jpeg(image, progressive=True, quality=50)
    last_scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last_scan * extra_scans + b"\xff\xd9"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------------ decode time
def test_progressive_jpegs_count_their_scans() -> None:
    header = read_header(_jpeg(_photo(), progressive=True))
    assert header.progressive and 2 <= header.scans <= 12
    assert read_header(_jpeg(_photo())).scans == 1


def test_scan_bomb_is_refused_before_decoding() -> None:
    bomb = _scan_bomb(_photo(), LIMITS.max_jpeg_scans)
    assert read_header(bomb).scans > LIMITS.max_jpeg_scans
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="scans") as caught:
        decode_image(bomb)
    assert caught.value.code == "too_large"
    assert time.perf_counter() - started < 1.0


def test_scans_times_pixels_is_budgeted() -> None:
    # 40 scans are allowed on a small photo but not on 7000 x 7000 (the decode time grows with both).
    flat = np.full((7000, 7000, 3), 200, np.uint8)
    bomb = _scan_bomb(flat, 30)
    header = read_header(bomb)
    assert header.scans <= LIMITS.max_jpeg_scans and header.scans * 49_000_000 > LIMITS.max_jpeg_scan_pixels
    started = time.perf_counter()
    assert _code(bomb) == "too_large"
    assert time.perf_counter() - started < 2.0


def test_the_scan_limit_is_configuration() -> None:
    data = _jpeg(_photo(), progressive=True)
    scans = read_header(data).scans
    strict = DecodeLimits.from_config(VisionConfig(max_jpeg_scans=scans - 1))
    assert _code(data, limits=strict) == "too_large"
    assert decode_image(data, limits=DecodeLimits.from_config(VisionConfig(max_jpeg_scans=scans))).bgr.size


def test_repeated_scans_within_the_limits_are_corrupt() -> None:
    # libjpeg warns the progression is inconsistent and decodes anyway; that picture is not the photo.
    assert _code(_scan_bomb(_photo(), 3)) == "corrupt"


# ------------------------------------------------------------------------------------------------ forged sizes
def test_forged_jpeg_size_is_corrupt_without_decoding() -> None:
    data = bytearray(_jpeg(np.full((16, 16, 3), 128, np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 7071, 7071)  # under the pixel limit, over what 600 bytes can hold
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="7071x7071") as caught:
        decode_image(bytes(data))
    assert caught.value.code == "corrupt" and time.perf_counter() - started < 0.5


def test_forged_png_size_is_corrupt() -> None:
    ihdr = struct.pack(">IIBBBBB", 7000, 7000, 8, 2, 0, 0, 0)  # 147 MB of RGB in 100 bytes: deflate cannot do it
    forged = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )
    assert _code(forged) == "corrupt"


def test_a_flat_photo_is_not_mistaken_for_a_forged_one() -> None:
    # The tightest honest JPEG: one colour, so every block costs about the one bit the floor allows for.
    flat = _jpeg(np.full((4000, 3000, 3), 90, np.uint8), quality=30)
    header = read_header(flat)
    assert header.data_bytes >= header.min_data_bytes
    assert decode_image(flat, target_long_side=400).bgr.shape == (500, 375, 3)  # 1/8 of 4000 x 3000
    _ok, png = cv2.imencode(".png", np.full((3000, 3000, 3), 90, np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert decode_image(png.tobytes(), target_long_side=400).bgr.shape[0] >= 400


def test_arithmetic_coded_jpeg_is_unsupported() -> None:
    data = bytearray(_jpeg(_photo()))
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = 0xC9  # SOF9: extended sequential, arithmetic coding
    assert _code(bytes(data)) == "unsupported_format"


# ------------------------------------------------------------------------------------------------ memory
def test_decode_memory_is_budgeted_in_bytes_not_pixels() -> None:
    # 7000 x 7000 16-bit RGBA: under the pixel limit, but 392 MB for the decoder to hold.
    ihdr = struct.pack(">IIBBBBB", 7000, 7000, 16, 6, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1000)  # the budget is checked from IHDR, before the data
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")
    header = read_header(png)
    assert (header.channels, header.bytes_per_sample) == (4, 2)
    assert header.width * header.height <= LIMITS.max_pixels < header.decode_bytes
    with pytest.raises(ImageDecodeError, match="bytes to decode") as caught:
        decode_image(png)
    assert caught.value.code == "too_large"


def test_lossless_webp_bomb_is_decoded_reduced() -> None:
    # A few KB holding 7000 x 7000 with alpha (honest, and allowed: 196 MB to decode); it comes out small.
    picture = np.zeros((7000, 7000, 4), np.uint8)
    picture[:, :3500] = (0, 0, 255, 255)
    _ok, webp = cv2.imencode(".webp", picture, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert len(webp) < 20_000
    decoded = decode_image(webp.tobytes(), target_long_side=400)
    assert decoded.bgr.shape == (411, 411, 3) and (decoded.width, decoded.height) == (7000, 7000)
    assert tuple(decoded.bgr[200, 50]) == (0, 0, 255) and tuple(decoded.bgr[200, 350]) == (255, 255, 255)


def test_sixteen_bit_alpha_png_is_reduced_and_composited() -> None:
    picture = np.zeros((1200, 1600, 4), np.uint16)
    picture[:, :800] = (0, 0, 65535, 65535)  # opaque red, then transparent black
    _ok, png = cv2.imencode(".png", picture)
    decoded = decode_image(png.tobytes(), target_long_side=400)
    assert decoded.bgr.shape == (300, 400, 3) and decoded.scale == 0.25
    assert tuple(decoded.bgr[10, 10]) == (0, 0, 255) and tuple(decoded.bgr[10, 390]) == (255, 255, 255)
    assert tuple(decoded.bgr[10, 199]) == (0, 0, 255) and tuple(decoded.bgr[10, 200]) == (255, 255, 255)


def test_grey_alpha_png() -> None:
    grey_alpha = np.zeros((40, 40, 2), np.uint8)
    grey_alpha[:, :20] = (60, 255)
    _ok, png = cv2.imencode(".png", cv2.cvtColor(grey_alpha[:, :, 0], cv2.COLOR_GRAY2BGRA))
    decoded = decode_image(png.tobytes())
    assert decoded.bgr.shape == (40, 40, 3)


def test_memory_error_while_decoding_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cv2, "imdecode", out_of_memory)
    assert _code(_jpeg(_photo())) == "too_large"


# ------------------------------------------------------------------------------------------------ corrupt data
def test_half_a_jpeg_with_an_end_marker_is_corrupt() -> None:
    data = _jpeg(_photo())
    assert _code(data[: len(data) // 2] + b"\xff\xd9") == "corrupt"


def test_randomised_jpeg_data_is_corrupt() -> None:
    data = bytearray(_jpeg(_photo()))
    start = data.index(b"\xff\xda") + 20
    third = (len(data) - start) // 3
    data[start : start + third] = np.random.default_rng(1).integers(0, 256, third, dtype=np.uint8).tobytes()
    assert _code(bytes(data)) == "corrupt"


def test_corrupt_pictures_can_be_accepted_by_configuration() -> None:
    data = _jpeg(_photo())
    damaged = data[: len(data) // 2] + b"\xff\xd9"
    accepting = DecodeLimits.from_config(VisionConfig(accept_corrupt=True))
    assert decode_image(damaged, limits=accepting).bgr.shape == (240, 320, 3)


@pytest.mark.parametrize("fmt", [".jpg", ".png", ".webp"])
def test_trailing_bytes_after_a_valid_end_are_accepted(fmt: str) -> None:
    _ok, encoded = cv2.imencode(fmt, _photo())
    trailing = np.random.default_rng(2).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    decoded = decode_image(encoded.tobytes() + trailing)
    assert decoded.bgr.shape == (240, 320, 3)


def test_decoder_warnings_do_not_leak_and_other_output_is_kept(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    data = _jpeg(_photo())
    os.write(2, b"before\n")
    with pytest.raises(ImageDecodeError):
        decode_image(data[: len(data) // 2] + b"\xff\xd9")
    err = capfd.readouterr().err
    assert "before" in err and "premature end" not in err


# ------------------------------------------------------------------------------------------------ fuzz
def _mutations(seed: int, count: int):
    rng = np.random.default_rng(seed)
    seeds = []
    for fmt, params in (
        (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85]),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".png", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
    ):
        _ok, encoded = cv2.imencode(fmt, _photo(64, 48, seed=len(seeds)), params)
        seeds.append(encoded.tobytes())
    for i in range(count):
        data = bytearray(seeds[i % len(seeds)])
        kind = rng.integers(0, 4)
        if kind == 0:  # flip bytes
            for pos in rng.integers(0, len(data), rng.integers(1, 8)):
                data[pos] = int(rng.integers(0, 256))
        elif kind == 1:  # cut
            data = data[: int(rng.integers(1, len(data)))]
        elif kind == 2:  # overwrite a run, keep the end
            start = int(rng.integers(0, len(data) - 1))
            length = int(rng.integers(1, max(2, len(data) // 4)))
            data[start : start + length] = rng.integers(
                0, 256, min(length, len(data) - start), dtype=np.uint8
            ).tobytes()
        else:  # forge a 16-bit field in the header area
            pos = int(rng.integers(2, min(len(data) - 2, 200)))
            data[pos : pos + 2] = struct.pack(">H", int(rng.integers(0, 65536)))
        yield bytes(data)


def test_fuzz_only_typed_errors() -> None:
    codes: dict[str, int] = {}
    decoded = 0
    started = time.perf_counter()
    for data in _mutations(seed=15, count=3000):
        try:
            decode_image(data, target_long_side=400)
            decoded += 1
        except ImageDecodeError as exc:
            assert exc.code in ERROR_CODES
            codes[exc.code] = codes.get(exc.code, 0) + 1
    assert decoded + sum(codes.values()) == 3000
    assert codes.get("corrupt", 0) > 300 and codes.get("truncated", 0) > 300
    assert time.perf_counter() - started < 60
