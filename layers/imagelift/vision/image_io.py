"""Safe photo decoding: the header is read and checked before any pixel is decoded.

Accepted: JPEG, PNG and WebP. Everything else, and anything broken, raises :class:`ImageDecodeError` with a
``code`` a caller can store and count:

- ``empty``: no bytes at all;
- ``unsupported_format``: a real file of another kind (GIF, HEIC/AVIF, PDF, TIFF, BMP, SVG or other text, ...);
- ``too_large``: more bytes than allowed, or a header announcing more pixels than allowed (decompression bombs
  are refused before their pixels exist);
- ``truncated``: the file stops before its end marker (an interrupted upload);
- ``corrupt``: the header or the compressed data cannot be read.

The decoded picture is always 8-bit BGR, upright (EXIF orientation applied), transparent areas composited on
white (how shops show cut-out product shots), 16-bit reduced to 8-bit, grey and CMYK converted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

from imagelift.errors import PermanentError

ERROR_CODES = ("empty", "corrupt", "truncated", "unsupported_format", "too_large")


class ImageDecodeError(PermanentError, ValueError):
    """A photo that cannot be classified; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown image error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_record(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class ImageHeader:
    format: str  # "jpeg" | "png" | "webp"
    width: int  # as stored, before EXIF orientation
    height: int
    orientation: int = 1  # EXIF orientation tag, 1..8


@dataclass(frozen=True)
class DecodedImage:
    bgr: np.ndarray  # uint8 (h, w, 3), upright
    format: str
    width: int  # full-resolution upright size (what the photo is), even when decoded reduced
    height: int
    scale: float  # decoded pixels per original pixel (1, 1/2, 1/4 or 1/8)


# Signatures of formats we refuse, so the message can say what the file is.
_FOREIGN_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"%PDF", "PDF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"8BPS", "PSD"),
    (0, b"PK\x03\x04", "ZIP"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
)
_ISO_BMFF_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def sniff_format(data: bytes) -> str:
    """'jpeg', 'png' or 'webp', from the magic bytes; raises ``empty`` or ``unsupported_format`` otherwise."""
    if len(data) == 0:
        raise ImageDecodeError("empty", "the file is empty (0 bytes)")
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for offset, signature, name in _FOREIGN_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            raise ImageDecodeError("unsupported_format", f"{name} files are not accepted (JPEG, PNG or WebP only)")
    if data[:4] == b"RIFF":
        kind = data[8:12].decode("latin-1").strip() or "RIFF"
        raise ImageDecodeError("unsupported_format", f"RIFF {kind!r} files are not accepted (JPEG, PNG or WebP only)")
    if data[4:8] == b"ftyp":
        brand = _ISO_BMFF_BRANDS.get(data[8:12], f"ISO media ({data[8:12].decode('latin-1')!r})")
        raise ImageDecodeError("unsupported_format", f"{brand} files are not accepted (JPEG, PNG or WebP only)")
    if (
        b"\xff\xd8\xff".startswith(data)
        or b"\x89PNG\r\n\x1a\n".startswith(data)
        or (len(data) < 12 and b"RIFF".startswith(data[:4]))
    ):
        raise ImageDecodeError("truncated", f"only {len(data)} bytes: the file stops inside its signature")
    head = data[:512]
    if _looks_like_text(head):
        kind = "SVG" if b"<svg" in head.lower() else "text"
        raise ImageDecodeError("unsupported_format", f"{kind} content, not a photo (JPEG, PNG or WebP only)")
    raise ImageDecodeError("unsupported_format", f"unknown file type (starts with {data[:8].hex()})")


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 512-byte boundary is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return len(text) > 0 and printable >= 0.95 * len(text)


def read_header(data: bytes) -> ImageHeader:
    """Format, stored size and EXIF orientation, parsed without decoding pixels."""
    fmt = sniff_format(data)
    if fmt == "jpeg":
        return _jpeg_header(data)
    if fmt == "png":
        return _png_header(data)
    return _webp_header(data)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}


def _jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    size: tuple[int, int] | None = None
    orientation = 1
    n = len(data)
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise ImageDecodeError("truncated", "the JPEG stops inside its header")
        if data[pos - 1] != 0xFF:
            raise ImageDecodeError("corrupt", f"JPEG header broken at byte {pos} (expected a marker)")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xD9:
            raise ImageDecodeError("corrupt", "the JPEG ends before any image data")
        if pos + 2 > n:
            raise ImageDecodeError("truncated", "the JPEG stops inside its header")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ImageDecodeError("corrupt", f"JPEG segment 0xFF{marker:02X} has an invalid length {length}")
        segment = data[pos + 2 : pos + length]
        if pos + length > n:
            raise ImageDecodeError("truncated", "the JPEG stops inside its header")
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:])
        elif marker in _SOF_MARKERS:
            if len(segment) < 5:
                raise ImageDecodeError("corrupt", "the JPEG frame header is too short")
            height, width = struct.unpack(">HH", segment[1:5])
            size = (width, height)
        elif marker == 0xDA:  # start of scan: the header is over
            if size is None:
                raise ImageDecodeError("corrupt", "the JPEG has image data but no frame header (no size)")
            # Entropy-coded data escapes 0xFF as 0xFF00, so an end-of-image marker after the first scan is the end.
            if data.find(b"\xff\xd9", pos + length) < 0:
                raise ImageDecodeError("truncated", "the JPEG has no end-of-image marker: the file was cut short")
            return ImageHeader("jpeg", size[0], size[1], orientation)
        pos += length


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 33:
        raise ImageDecodeError("truncated", "the PNG stops inside its header")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise ImageDecodeError("corrupt", "the PNG does not start with a valid IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    orientation = 1
    # eXIf (orientation) must come before the image data; walk the chunk list up to IDAT.
    pos = 8
    while pos + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[pos : pos + 8])
        if chunk_type == b"eXIf":
            orientation = _exif_orientation(data[pos + 8 : pos + 8 + length])
        if chunk_type in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    # IEND closes every PNG; only a few bytes (or a little trailing junk) may follow it.
    if data.rfind(b"IEND", max(0, len(data) - 1024)) < 0:
        raise ImageDecodeError("truncated", "the PNG has no IEND chunk: the file was cut short")
    return ImageHeader("png", width, height, orientation)


def _webp_header(data: bytes) -> ImageHeader:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if len(data) < 8 + riff_size:
        raise ImageDecodeError(
            "truncated", f"the WebP announces {8 + riff_size} bytes but has {len(data)}: the file was cut short"
        )
    if len(data) < 30:
        raise ImageDecodeError("corrupt", "the WebP is too short to hold a frame header")
    chunk = data[12:16]
    body = data[20:]
    orientation = 1
    if chunk == b"VP8 ":
        if body[3:6] != b"\x9d\x01\x2a":
            raise ImageDecodeError("corrupt", "the WebP (VP8) frame has no start code")
        width, height = struct.unpack("<HH", body[6:10])
        width, height = width & 0x3FFF, height & 0x3FFF
    elif chunk == b"VP8L":
        if body[0] != 0x2F:
            raise ImageDecodeError("corrupt", "the WebP (VP8L) frame has no signature")
        (bits,) = struct.unpack("<I", body[1:5])
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8X":
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        if body[0] & 0x08:  # EXIF flag: find the EXIF chunk
            pos = 12
            while pos + 8 <= len(data):
                name, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
                if name == b"EXIF":
                    payload = data[pos + 8 : pos + 8 + length]
                    orientation = _exif_orientation(payload[6:] if payload.startswith(b"Exif\x00\x00") else payload)
                    break
                pos += 8 + length + (length & 1)
    else:
        raise ImageDecodeError("corrupt", f"the WebP holds an unknown chunk {chunk!r}")
    return ImageHeader("webp", width, height, orientation)


def _exif_orientation(tiff: bytes) -> int:
    """Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    endian = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd_offset,) = struct.unpack(endian + "I", tiff[4:8])
        (count,) = struct.unpack(endian + "H", tiff[ifd_offset : ifd_offset + 2])
        for i in range(count):
            entry = tiff[ifd_offset + 2 + 12 * i : ifd_offset + 14 + 12 * i]
            tag, _type, _n = struct.unpack(endian + "HHI", entry[:8])
            if tag == 0x0112:
                (value,) = struct.unpack(endian + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def check_limits(header: ImageHeader, data_len: int, *, max_bytes: int, max_pixels: int) -> None:
    if data_len > max_bytes:
        raise ImageDecodeError("too_large", f"{data_len} bytes is over the {max_bytes}-byte limit")
    if header.width <= 0 or header.height <= 0:
        raise ImageDecodeError("corrupt", f"the header gives an impossible size {header.width}x{header.height}")
    pixels = header.width * header.height
    if pixels > max_pixels:
        raise ImageDecodeError(
            "too_large",
            f"{header.width}x{header.height} = {pixels} pixels is over the {max_pixels}-pixel limit "
            "(checked from the header, nothing decoded)",
        )


def _reduction_for(header: ImageHeader, target_long_side: int | None) -> int:
    if header.format != "jpeg" or not target_long_side:
        return 1
    long_side = max(header.width, header.height)
    for factor in (8, 4, 2):
        if long_side / factor >= target_long_side:
            return factor
    return 1


_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
_REDUCED_FLAGS[8] = cv2.IMREAD_REDUCED_COLOR_8


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 40 * 1024 * 1024,
    max_pixels: int = 50_000_000,
    target_long_side: int | None = None,
) -> DecodedImage:
    """Decode ``data`` to upright 8-bit BGR after checking its header against the limits.

    With ``target_long_side``, a JPEG is decoded at the smallest of 1/8, 1/4, 1/2 scale whose long side is still
    at least that large: libjpeg then skips most of the work, and nothing downstream needs more pixels.
    """
    if len(data) > max_bytes:  # before even parsing
        raise ImageDecodeError("too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    header = read_header(data)
    check_limits(header, len(data), max_bytes=max_bytes, max_pixels=max_pixels)
    factor = _reduction_for(header, target_long_side)
    buffer = np.frombuffer(data, dtype=np.uint8)
    if header.format == "jpeg":
        # libjpeg converts grey and CMYK/YCCK to BGR itself.
        image = cv2.imdecode(buffer, _REDUCED_FLAGS[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.size == 0:
        raise ImageDecodeError("corrupt", f"the {header.format.upper()} data cannot be decoded")
    image = _to_bgr8(image)
    image = _apply_orientation(image, header.orientation)
    upright_w, upright_h = (header.height, header.width) if header.orientation >= 5 else (header.width, header.height)
    return DecodedImage(image, header.format, upright_w, upright_h, 1.0 / factor)


def _to_bgr8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 2:  # grey + alpha
        grey, alpha = image[:, :, 0], image[:, :, 1]
        image = np.dstack([grey, grey, grey, alpha])
        channels = 4
    if channels == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        white = np.float32(255.0)
        return (image[:, :, :3].astype(np.float32) * alpha + white * (1.0 - alpha) + 0.5).astype(np.uint8)
    return image


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:  # transpose
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # transverse
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image
