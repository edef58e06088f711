"""Safe decoding: every kind of bad input gets its typed error; good inputs of every flavour come out upright BGR.

All inputs are generated here (OpenCV and Pillow encoders, or hand-built headers). Pillow is only the
independent reference for EXIF orientation and the encoder of CMYK / EXIF-tagged files; production never uses it.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest

from imagelift.vision.image_io import ImageDecodeError, decode_image, read_header, sniff_format

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageOps  # noqa: E402


def _photo(width: int = 96, height: int = 64) -> np.ndarray:
    """A BGR test card whose orientation is unambiguous: coloured quadrants and a gradient."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2, : width // 2] = (0, 0, 255)
    image[: height // 2, width // 2 :] = (0, 255, 0)
    image[height // 2 :, : width // 2] = (255, 0, 0)
    image[height // 2 :, width // 2 :] = np.linspace(0, 255, width - width // 2, dtype=np.uint8)[None, :, None]
    return image


def _encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return buffer.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------------ bad inputs
BAD_INPUTS = {
    "empty": (b"", "empty"),
    "text": (b"product_id,listing_id\nP1,L1\n" * 20, "unsupported_format"),
    "svg": (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        "unsupported_format",
    ),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "unsupported_format"),
    "gif": (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
        "unsupported_format",
    ),
    "heic without image items": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "corrupt"),
    "avif without image items": (
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64,
        "corrupt",
    ),
    "heic sequence": (b"\x00\x00\x00\x18ftyphevc\x00\x00\x00\x00msf1hevc" + b"\x00" * 64, "unsupported_format"),
    "avif sequence": (b"\x00\x00\x00\x1cftypavis\x00\x00\x00\x00avisavifmsf1" + b"\x00" * 64, "unsupported_format"),
    "mp4 video": (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64, "unsupported_format"),
    "tiff": (b"II*\x00\x08\x00\x00\x00" + b"\x00" * 32, "unsupported_format"),
    "random bytes": (bytes(np.random.default_rng(0).integers(128, 256, 300, dtype=np.uint8)), "unsupported_format"),
    "jpeg signature only": (b"\xff\xd8", "truncated"),
    "wav (RIFF, not WebP)": (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40, "unsupported_format"),
    "jpeg header garbage": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x13\x37" * 40, "corrupt"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gets_its_code(name: str) -> None:
    data, code = BAD_INPUTS[name]
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data)
    assert caught.value.code == code, caught.value
    assert caught.value.message and caught.value.to_record() == {"code": code, "message": caught.value.message}


def test_unsupported_message_names_the_format() -> None:
    with pytest.raises(ImageDecodeError, match="GIF"):
        decode_image(BAD_INPUTS["gif"][0])
    with pytest.raises(ImageDecodeError, match="HEIC image sequences"):
        decode_image(BAD_INPUTS["heic sequence"][0])
    with pytest.raises(ImageDecodeError, match="PDF"):
        decode_image(BAD_INPUTS["pdf"][0])


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_truncated_files(ext: str) -> None:
    data = _encode(_photo(300, 200), ext)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data[: len(data) * 2 // 3])
    assert caught.value.code == "truncated"


def test_truncated_inside_the_jpeg_header() -> None:
    data = _encode(_photo(), ".jpg")
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data[:40])
    assert caught.value.code == "truncated"


def test_corrupt_png_data() -> None:
    data = _encode(_photo(), ".png")
    start = data.index(b"IDAT") + 4
    broken = data[:start] + bytes(len(data) - start - 16) + data[-16:]
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(broken)
    assert caught.value.code == "corrupt"


def test_jpeg_without_frame_header_is_corrupt() -> None:
    data = _encode(_photo(), ".jpg")
    sof = data.index(b"\xff\xc0")
    broken = data[:sof] + b"\xff\xfe" + data[sof + 2 :]  # SOF0 turned into a comment segment
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(broken)
    assert caught.value.code == "corrupt"


def test_too_many_bytes_is_refused_before_parsing() -> None:
    data = _encode(_photo(), ".png")
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(data, max_bytes=len(data) - 1)
    assert caught.value.code == "too_large"


def test_png_decompression_bomb_is_refused_from_the_header() -> None:
    # A 100000 x 100000 8-bit grey PNG header over one tiny IDAT: 10 gigapixels announced, nothing decoded.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )
    assert read_header(bomb).width == 100_000
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(bomb)
    assert caught.value.code == "too_large"
    assert "100000x100000" in caught.value.message


def test_jpeg_bomb_is_refused_from_the_header() -> None:
    data = bytearray(_encode(_photo(), ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)  # height, width
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(bytes(data), max_pixels=50_000_000)
    assert caught.value.code == "too_large"


def test_webp_bomb_is_refused_from_the_header() -> None:
    data = bytearray(_encode(_photo(), ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]))
    assert data[12:16] == b"VP8 "
    data[26:30] = struct.pack("<HH", 16_000, 16_000)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(bytes(data), max_pixels=50_000_000)
    assert caught.value.code == "too_large"


# ------------------------------------------------------------------------------------------------ good inputs
@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_formats_decode_to_bgr(ext: str) -> None:
    source = _photo()
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []  # 101 = lossless
    decoded = decode_image(_encode(source, ext, params))
    assert decoded.format == sniff_format(_encode(source, ext, params))
    assert decoded.bgr.shape == source.shape and decoded.bgr.dtype == np.uint8
    tolerance = 12 if ext == ".jpg" else 0
    assert np.abs(decoded.bgr.astype(int) - source.astype(int)).mean() <= tolerance


def test_grayscale_jpeg_becomes_three_channels() -> None:
    grey = cv2.cvtColor(_photo(), cv2.COLOR_BGR2GRAY)
    decoded = decode_image(_encode(grey, ".jpg"))
    assert decoded.bgr.shape == (*grey.shape, 3)
    assert np.array_equal(decoded.bgr[:, :, 0], decoded.bgr[:, :, 2])


def test_alpha_is_composited_on_white() -> None:
    bgra = np.zeros((40, 40, 4), np.uint8)
    bgra[:, :20] = (0, 0, 255, 255)  # opaque red left half
    bgra[:, 20:] = (0, 0, 0, 0)  # transparent (black underneath) right half
    decoded = decode_image(_encode(bgra, ".png"))
    assert decoded.bgr.shape == (40, 40, 3)
    assert tuple(decoded.bgr[5, 5]) == (0, 0, 255)
    assert tuple(decoded.bgr[5, 30]) == (255, 255, 255)


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    image16 = _photo().astype(np.uint16) * 257  # 255 -> 65535
    decoded = decode_image(_encode(image16, ".png"))
    assert decoded.bgr.dtype == np.uint8
    assert np.array_equal(decoded.bgr, _photo())


def test_cmyk_jpeg() -> None:
    rgb = cv2.cvtColor(_photo(), cv2.COLOR_BGR2RGB)
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, format="JPEG", quality=95)
    decoded = decode_image(buffer.getvalue())
    reference = cv2.cvtColor(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")), cv2.COLOR_RGB2BGR)
    assert decoded.bgr.shape == reference.shape
    assert np.abs(decoded.bgr.astype(int) - reference.astype(int)).mean() < 8


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(fmt: str, orientation: int) -> None:
    rgb = cv2.cvtColor(_photo(96, 64), cv2.COLOR_BGR2RGB)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else ({"lossless": True} if fmt == "WEBP" else {})
    Image.fromarray(rgb).save(buffer, format=fmt, exif=exif.tobytes(), **options)
    data = buffer.getvalue()
    assert read_header(data).orientation == orientation
    expected = cv2.cvtColor(np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))), cv2.COLOR_RGB2BGR)
    decoded = decode_image(data)
    assert decoded.bgr.shape == expected.shape
    assert (decoded.width, decoded.height) == (expected.shape[1], expected.shape[0])
    assert np.abs(decoded.bgr.astype(int) - expected.astype(int)).mean() < 6


def test_reduced_jpeg_decode_keeps_the_photo_size() -> None:
    big = cv2.resize(_photo(), (1600, 1200), interpolation=cv2.INTER_NEAREST)
    decoded = decode_image(_encode(big, ".jpg"), target_long_side=400)
    assert decoded.bgr.shape[:2] == (300, 400) and decoded.scale == 0.25
    assert (decoded.width, decoded.height) == (1600, 1200)
    assert decode_image(_encode(big, ".jpg"), target_long_side=500).bgr.shape[:2] == (600, 800)
    assert decode_image(_encode(big, ".jpg")).bgr.shape[:2] == (1200, 1600)
