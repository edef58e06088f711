"""Safe photo decoding: the file's structure is read and checked before any pixel is decoded.

Accepted: JPEG (baseline and progressive, Huffman-coded), PNG (any bit depth, with or without alpha), WebP
(lossy or lossless, one frame), HEIC and AVIF (one still image, any bit depth, with or without alpha:
imagelift.vision.heif_io reads their structure, pillow-heif and Pillow decode them). Everything else, and anything broken, raises :class:`ImageDecodeError` with a
``code`` a caller can store and count:

- ``empty``: no bytes at all;
- ``unsupported_format``: a real file of another kind (GIF, PDF, TIFF, BMP, SVG or other text, ..., animated
  WebP, HEIF/AVIF image sequences, arithmetic-coded JPEG);
- ``too_large``: more bytes than allowed, a header announcing more pixels than allowed, a decode that would need
  more memory than allowed (width x height x channels x bytes per sample), a progressive JPEG with more scans than
  allowed (decompression and scan bombs are refused before their pixels exist), or a decode that ran out of memory;
- ``truncated``: the file stops before its end marker (an interrupted upload);
- ``corrupt``: the header or the compressed data cannot be read, the header announces a size its data is too
  small to hold, or the decoder (libjpeg, libpng) warned about corrupt or missing data (:class:`DecodeLimits`
  ``accept_corrupt`` keeps such pictures instead).

Bounded time: what a decode costs grows with pixels x scans, and both are capped from the structure before the
decoder starts (``max_pixels``, ``max_jpeg_scans``), so the worst accepted file decodes in a few seconds
(``bench/hostile_bench.py`` measures it). The decoder itself cannot be interrupted once started; those two caps are
where the time budget is enforced. Bounded memory: the decoder's output is budgeted in bytes
(``max_decode_bytes``), JPEGs are decoded reduced (libjpeg's 1/2, 1/4, 1/8 scaling), and 16-bit, grey and alpha
pictures are converted to 8-bit BGR strip by strip, shrunk on the way when a smaller picture is asked for.

The decoded picture is always 8-bit BGR, upright (EXIF orientation applied), transparent areas composited on
white (how shops show cut-out product shots), 16-bit reduced to 8-bit, grey and CMYK converted.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from imagelift.errors import PermanentError

if TYPE_CHECKING:
    from imagelift.config import VisionConfig

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
    format: str  # "jpeg" | "png" | "webp" | "heic" | "avif"
    width: int  # as stored, before EXIF orientation
    height: int
    orientation: int = 1  # EXIF orientation tag, 1..8
    channels: int = 3  # what the decoder hands over: 1 (grey), 3 (BGR) or 4 (BGRA)
    bytes_per_sample: int = 1  # 2 for 16-bit PNG
    scans: int = 1  # JPEG scans up to the end-of-image marker
    progressive: bool = False
    min_data_bytes: int = 0  # fewest compressed bytes that can hold a picture of this size (0: no floor)
    data_bytes: int = 0  # compressed bytes found (JPEG: entropy-coded data; PNG: from the first IDAT on)

    @property
    def decode_bytes(self) -> int:
        """Bytes of the picture the decoder allocates at full size."""
        return self.width * self.height * self.channels * self.bytes_per_sample


@dataclass(frozen=True)
class DecodeLimits:
    """What a photo may cost to decode; :meth:`from_config` takes them from :class:`imagelift.config.VisionConfig`."""

    max_bytes: int
    max_pixels: int
    max_decode_bytes: int
    max_jpeg_scans: int
    max_jpeg_scan_pixels: int
    accept_corrupt: bool

    @classmethod
    def from_config(cls, config: VisionConfig) -> DecodeLimits:
        return cls(
            max_bytes=config.max_bytes,
            max_pixels=config.max_pixels,
            max_decode_bytes=config.max_decode_bytes,
            max_jpeg_scans=config.max_jpeg_scans,
            max_jpeg_scan_pixels=config.max_jpeg_scan_pixels,
            accept_corrupt=config.accept_corrupt,
        )

    @classmethod
    def default(cls) -> DecodeLimits:
        """The production limits (VisionConfig's defaults, environment not read)."""
        from imagelift.config import VisionConfig

        return cls.from_config(VisionConfig())


@dataclass(frozen=True)
class DecodedImage:
    bgr: np.ndarray  # uint8 (h, w, 3), upright
    format: str
    width: int  # full-resolution upright size (what the photo is), even when decoded reduced
    height: int
    scale: float  # decoded pixels per original pixel (1/n: reduced while decoding)


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
ACCEPTED = "JPEG, PNG, WebP, HEIC or AVIF only"


def sniff_format(data: bytes) -> str:
    """'jpeg', 'png', 'webp', 'heic' or 'avif' ('heif' when only the primary item's type can tell which of the
    two), from the magic bytes; raises ``empty`` or ``unsupported_format`` otherwise."""
    if len(data) == 0:
        raise ImageDecodeError("empty", "the file is empty (0 bytes)")
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    from imagelift.vision.heif_io import heif_format

    heif = heif_format(data)
    if heif is not None:
        return heif
    for offset, signature, name in _FOREIGN_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            raise ImageDecodeError("unsupported_format", f"{name} files are not accepted ({ACCEPTED})")
    if data[:4] == b"RIFF":
        kind = data[8:12].decode("latin-1").strip() or "RIFF"
        raise ImageDecodeError("unsupported_format", f"RIFF {kind!r} files are not accepted ({ACCEPTED})")
    if (
        b"\xff\xd8\xff".startswith(data)
        or b"\x89PNG\r\n\x1a\n".startswith(data)
        or (len(data) < 12 and b"RIFF".startswith(data[:4]))
    ):
        raise ImageDecodeError("truncated", f"only {len(data)} bytes: the file stops inside its signature")
    head = data[:512]
    if _looks_like_text(head):
        kind = "SVG" if b"<svg" in head.lower() else "text"
        raise ImageDecodeError("unsupported_format", f"{kind} content, not a photo ({ACCEPTED})")
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
    """Format, stored size, EXIF orientation and the structure the limits look at, parsed without decoding pixels.

    A JPEG is walked marker by marker to its end-of-image marker (scan count, entropy-coded bytes); a PNG's chunks
    are read up to its image data and its IEND chunk is looked for; a WebP's frame header is read. Bytes after a
    valid end (IEND, EOI, the RIFF size) are ignored.
    """
    fmt = sniff_format(data)
    if fmt == "jpeg":
        return _jpeg_header(data)
    if fmt == "png":
        return _png_header(data)
    if fmt == "webp":
        return _webp_header(data)
    return _heif_header(data, fmt)


def _heif_header(data: bytes, declared: str) -> ImageHeader:
    from imagelift.vision.heif_io import heif_structure

    structure = heif_structure(data, declared)
    # Like lossless WebP, HEVC and AV1 can hold a huge flat picture in a few bytes: the pixel and memory budgets
    # bound them, from the size the primary item declares (libheif refuses a picture that decodes to another size).
    return ImageHeader(
        structure.format,
        structure.width,
        structure.height,
        structure.orientation,
        channels=4 if structure.alpha else 3,
        bytes_per_sample=2 if structure.bit_depth > 8 else 1,
    )


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
_ARITHMETIC_SOF = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}
# What may follow a scan: another scan, the tables and restart interval it uses, application data, comments,
# a DNL, the end of the image.
_BETWEEN_SCANS = {0xC4, 0xCC, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)}
# Inside entropy-coded data 0xFF is escaped as 0xFF00 and restart markers (0xFFD0-D7) belong to the scan; any other
# 0xFF xx (after optional 0xFF fill bytes) is the next marker.
_MARKER_AFTER_SCAN = re.compile(rb"\xff+([\x01-\xcf\xd8-\xfe])")


def _jpeg_header(data: bytes) -> ImageHeader:
    pos = 2
    n = len(data)
    frame: tuple[int, int, int, list[tuple[int, int]]] | None = None  # marker, width, height, sampling per component
    orientation = 1
    scans = 0
    entropy_bytes = 0
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise _cut_short(data, pos, scans, "the JPEG stops inside its header")
        if data[pos - 1] != 0xFF:
            raise ImageDecodeError("corrupt", f"JPEG header broken at byte {pos} (expected a marker)")
        marker = data[pos]
        pos += 1
        if scans and marker not in _BETWEEN_SCANS:
            raise ImageDecodeError("corrupt", f"the JPEG's image data holds an unexpected marker 0xFF{marker:02X}")
        if marker in _STANDALONE_MARKERS:
            continue
        if marker == 0xD9:
            if scans == 0:
                raise ImageDecodeError("corrupt", "the JPEG ends before any image data")
            break
        if pos + 2 > n:
            raise _cut_short(data, pos, scans, "the JPEG stops inside its header")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise ImageDecodeError("corrupt", f"JPEG segment 0xFF{marker:02X} has an invalid length {length}")
        if pos + length > n:
            raise _cut_short(data, pos, scans, "the JPEG stops inside a segment")
        segment = data[pos + 2 : pos + length]
        pos += length
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and scans == 0:
            orientation = _exif_orientation(segment[6:])
        elif marker in _SOF_MARKERS:
            if frame is not None:
                raise ImageDecodeError("corrupt", "the JPEG has a second frame header")
            frame = _jpeg_frame(marker, segment)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows up to the next marker
            if frame is None:
                raise ImageDecodeError("corrupt", "the JPEG has image data but no frame header (no size)")
            scans += 1
            found = _MARKER_AFTER_SCAN.search(data, pos)
            if found is None:
                raise ImageDecodeError("truncated", "the JPEG has no end-of-image marker: the file was cut short")
            entropy_bytes += found.start() - pos
            pos = found.start()
    assert frame is not None  # a scan was seen, and a scan needs a frame
    marker, width, height, sampling = frame
    if marker in _ARITHMETIC_SOF:
        raise ImageDecodeError(
            "unsupported_format", "arithmetic-coded JPEG (no camera or browser makes or shows these; JPEG, PNG or WebP)"
        )
    # Huffman coding spends at least one bit on every 8x8 block of every component (its DC code): fewer
    # entropy-coded bits than blocks means the header's size is a lie or the data is missing.
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    blocks = sum(
        math.ceil(math.ceil(width * h / h_max) / 8) * math.ceil(math.ceil(height * v / v_max) / 8) for h, v in sampling
    )
    return ImageHeader(
        "jpeg",
        width,
        height,
        orientation,
        channels=3,  # libjpeg hands over BGR for grey, YCbCr and CMYK alike
        bytes_per_sample=1,
        scans=scans,
        progressive=marker in _PROGRESSIVE_SOF,
        min_data_bytes=math.ceil(blocks / 8),
        data_bytes=entropy_bytes,
    )


def _cut_short(data: bytes, pos: int, scans: int, message: str) -> ImageDecodeError:
    """A JPEG whose structure runs past its end: cut short, unless an end-of-image marker follows (then the bytes
    in between are damaged, not missing)."""
    if scans and data.rfind(b"\xff\xd9", pos) >= 0:
        return ImageDecodeError("corrupt", f"{message}, yet an end-of-image marker follows: damaged data")
    return ImageDecodeError("truncated", f"{message}: the file was cut short")


def _jpeg_frame(marker: int, segment: bytes) -> tuple[int, int, int, list[tuple[int, int]]]:
    if len(segment) < 6:
        raise ImageDecodeError("corrupt", "the JPEG frame header is too short")
    height, width, count = struct.unpack(">HHB", segment[1:6])
    if count == 0 or len(segment) < 6 + 3 * count:
        raise ImageDecodeError("corrupt", f"the JPEG frame header lists {count} components it does not hold")
    sampling = []
    for i in range(count):
        factors = segment[6 + 3 * i + 1]
        h, v = factors >> 4, factors & 0x0F
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise ImageDecodeError("corrupt", f"the JPEG frame header has invalid sampling factors {h}x{v}")
        sampling.append((h, v))
    return marker, width, height, sampling


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}  # colour type -> channels OpenCV decodes (grey+alpha comes as BGRA)
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel as stored
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk is always these 12 bytes
# deflate's best case is a 258-byte match in 2 bits: no zlib stream holds more than 1032 bytes per byte.
_DEFLATE_MAX_RATIO = 1032


def _png_header(data: bytes) -> ImageHeader:
    if len(data) < 33:
        raise ImageDecodeError("truncated", "the PNG stops inside its header")
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise ImageDecodeError("corrupt", "the PNG does not start with a valid IHDR chunk")
    width, height, depth, colour_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour_type not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise ImageDecodeError("corrupt", f"the PNG has an invalid colour type {colour_type} / bit depth {depth}")
    samples = _PNG_SAMPLES[colour_type]
    alpha = colour_type in (4, 6)
    orientation = 1
    # eXIf (orientation) and tRNS (transparency) come before the image data; walk the chunk list up to IDAT.
    pos = 8
    idat = -1
    while pos + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[pos : pos + 8])
        if chunk_type == b"eXIf":
            orientation = _exif_orientation(data[pos + 8 : pos + 8 + length])
        elif chunk_type == b"tRNS":
            alpha = True
        elif chunk_type == b"IDAT":
            idat = pos
            break
        elif chunk_type == b"IEND":
            break
        pos += 12 + length
    if idat < 0:
        if pos + 8 > len(data):
            raise ImageDecodeError("truncated", "the PNG stops before its image data")
        raise ImageDecodeError("corrupt", "the PNG has no image data (IDAT)")
    # IEND closes every PNG; whatever follows it is ignored.
    if data.find(_PNG_IEND, idat) < 0:
        raise ImageDecodeError("truncated", "the PNG has no IEND chunk: the file was cut short")
    row_bytes = math.ceil(width * samples * depth / 8)
    raw_bytes = height * (1 + row_bytes) * (2 if interlace else 1)  # Adam7 adds at most one filter byte per pass row
    # What the decode costs: libpng inflates and unfilters every stored sample (a palette or grey PNG is expanded
    # to BGR, a transparent one to BGRA, at its bit depth).
    return ImageHeader(
        "png",
        width,
        height,
        orientation,
        channels=4 if alpha else max(3, samples),
        bytes_per_sample=2 if depth == 16 else 1,
        min_data_bytes=raw_bytes // (_DEFLATE_MAX_RATIO * (2 if interlace else 1)),
        data_bytes=len(data) - idat,
    )


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
    alpha = False
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
        alpha = bool(bits >> 28 & 1)
    elif chunk == b"VP8X":
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        alpha = bool(body[0] & 0x10)
        if body[0] & 0x02:
            raise ImageDecodeError("unsupported_format", "animated WebP files are not accepted (one photo per file)")
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
    # Lossless WebP can hold a huge flat picture in a few bytes, legitimately: only the memory budget bounds it.
    return ImageHeader("webp", width, height, orientation, channels=4 if alpha else 3, bytes_per_sample=1)


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


def check_limits(header: ImageHeader, data_len: int, limits: DecodeLimits) -> None:
    """Refuse, from the structure alone, what the limits do not allow or what cannot be the picture it claims."""
    if data_len > limits.max_bytes:
        raise ImageDecodeError("too_large", f"{data_len} bytes is over the {limits.max_bytes}-byte limit")
    if header.width <= 0 or header.height <= 0:
        raise ImageDecodeError("corrupt", f"the header gives an impossible size {header.width}x{header.height}")
    size = f"{header.width}x{header.height}"
    pixels = header.width * header.height
    if pixels > limits.max_pixels:
        raise ImageDecodeError(
            "too_large",
            f"{size} = {pixels} pixels is over the {limits.max_pixels}-pixel limit (checked from the header, nothing decoded)",
        )
    if header.decode_bytes > limits.max_decode_bytes:
        raise ImageDecodeError(
            "too_large",
            f"{size} x {header.channels} channels x {8 * header.bytes_per_sample} bits needs {header.decode_bytes} bytes "
            f"to decode, over the {limits.max_decode_bytes}-byte budget (checked from the header, nothing decoded)",
        )
    if header.scans > limits.max_jpeg_scans:
        raise ImageDecodeError(
            "too_large",
            f"the JPEG has {header.scans} scans, over the limit of {limits.max_jpeg_scans} "
            "(each scan is another pass over every pixel; cameras write at most about 10)",
        )
    if header.scans > 1 and header.scans * pixels > limits.max_jpeg_scan_pixels:
        raise ImageDecodeError(
            "too_large",
            f"the JPEG has {header.scans} scans of {size}: {header.scans * pixels} scan-pixels to decode, over the "
            f"{limits.max_jpeg_scan_pixels} budget (decode time grows with scans x pixels)",
        )
    if header.data_bytes < header.min_data_bytes:
        raise ImageDecodeError(
            "corrupt",
            f"the header announces {size}, which needs at least {header.min_data_bytes} bytes of compressed data; "
            f"the file holds {header.data_bytes}",
        )


def _reduction_for(header: ImageHeader, target_long_side: int | None) -> int:
    """How many times smaller than stored the picture may be decoded: JPEGs by libjpeg's scaling (2, 4, 8), the
    others by any whole factor while converting to 8-bit BGR; the short side always keeps at least one pixel."""
    if not target_long_side:
        return 1
    long_side, short_side = max(header.width, header.height), min(header.width, header.height)
    if header.format == "jpeg":
        for factor in (8, 4, 2):
            if long_side / factor >= target_long_side and short_side >= factor:
                return factor
        return 1
    return max(1, min(long_side // target_long_side, short_side))


def reduction_factor(image_format: str, width: int, height: int, target_long_side: int | None) -> int:
    """How many times smaller than ``width`` x ``height`` :func:`decode_image` decodes a picture of this format for
    ``target_long_side``."""
    return _reduction_for(ImageHeader(image_format, width, height), target_long_side)


_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
_REDUCED_FLAGS[8] = cv2.IMREAD_REDUCED_COLOR_8


def decode_image(
    data: bytes,
    *,
    limits: DecodeLimits | None = None,
    target_long_side: int | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> DecodedImage:
    """Decode ``data`` to upright 8-bit BGR after checking its structure against ``limits`` (default
    :meth:`DecodeLimits.default`; ``max_bytes`` / ``max_pixels`` override those two).

    With ``target_long_side``, the picture is decoded reduced to the smallest size whose long side is still at least
    that large (a JPEG by libjpeg at 1/2, 1/4 or 1/8, which then skips most of the work; PNG and WebP while being
    converted): nothing downstream needs more pixels.
    """
    limits = limits or DecodeLimits.default()
    if max_bytes is not None or max_pixels is not None:
        limits = DecodeLimits(
            max_bytes=limits.max_bytes if max_bytes is None else max_bytes,
            max_pixels=limits.max_pixels if max_pixels is None else max_pixels,
            max_decode_bytes=limits.max_decode_bytes,
            max_jpeg_scans=limits.max_jpeg_scans,
            max_jpeg_scan_pixels=limits.max_jpeg_scan_pixels,
            accept_corrupt=limits.accept_corrupt,
        )
    if len(data) > limits.max_bytes:  # before even parsing
        raise ImageDecodeError("too_large", f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    header = read_header(data)
    check_limits(header, len(data), limits)
    factor = _reduction_for(header, target_long_side)
    if header.format in ("heic", "avif"):
        return _decode_heif(data, header, factor)
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        with _decoder_warnings() as warnings:
            if header.format == "jpeg":
                # libjpeg converts grey and CMYK/YCCK to BGR itself.
                image = cv2.imdecode(buffer, _REDUCED_FLAGS[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
                factor_left = 1
            elif header.channels == 4:  # transparency: the alpha channel is needed to composite on white
                image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
                factor_left = factor
            else:  # the decoder itself hands over 8-bit BGR (libpng strips 16-bit samples: half the memory)
                image = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
                factor_left = factor
        if image is None or image.size == 0:
            detail = f" ({warnings[0]})" if warnings else ""
            raise ImageDecodeError("corrupt", f"the {header.format.upper()} data cannot be decoded{detail}")
        if warnings and not limits.accept_corrupt:
            raise ImageDecodeError("corrupt", f"the {header.format.upper()} decoder reports: {'; '.join(warnings[:3])}")
        image = _to_bgr8(image, factor_left)
        image = _apply_orientation(image, header.orientation)
    except MemoryError as exc:
        raise ImageDecodeError("too_large", f"out of memory decoding {header.width}x{header.height}") from exc
    except cv2.error as exc:
        if exc.code == cv2.Error.StsNoMem:
            raise ImageDecodeError("too_large", f"out of memory decoding {header.width}x{header.height}") from exc
        raise ImageDecodeError("corrupt", f"the {header.format.upper()} data cannot be decoded ({exc.err})") from exc
    upright_w, upright_h = (header.height, header.width) if header.orientation >= 5 else (header.width, header.height)
    return DecodedImage(image, header.format, upright_w, upright_h, 1.0 / factor)


def _decode_heif(data: bytes, header: ImageHeader, factor: int) -> DecodedImage:
    from imagelift.vision.heif_io import HeifStructure, decode_heif

    structure = HeifStructure(header.format, header.width, header.height, header.orientation, header.channels == 4, 8)
    try:
        pixels, oriented = decode_heif(data, structure)
        if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
            raise ImageDecodeError(
                "corrupt", f"the {header.format.upper()} decoder gave pixels of shape {pixels.shape}"
            )
        declared = (header.height, header.width)
        if oriented and header.orientation >= 5:
            declared = declared[::-1]
        # a clean-aperture box (clap) may crop the declared size (odd sizes are coded one pixel larger); never more
        if pixels.shape[0] > declared[0] or pixels.shape[1] > declared[1]:
            raise ImageDecodeError(
                "corrupt",
                f"the {header.format.upper()} header declares {header.width}x{header.height}, the data decodes to "
                f"{pixels.shape[1]}x{pixels.shape[0]}",
            )
        stored_h, stored_w = pixels.shape[:2]
        image = _rgb_to_bgr8(pixels, factor)
        del pixels
        if not oriented:
            image = _apply_orientation(image, header.orientation)
            if header.orientation >= 5:
                stored_h, stored_w = stored_w, stored_h
    except MemoryError as exc:
        raise ImageDecodeError("too_large", f"out of memory decoding {header.width}x{header.height}") from exc
    return DecodedImage(image, header.format, stored_w, stored_h, 1.0 / factor)


def _rgb_to_bgr8(pixels: np.ndarray, factor: int) -> np.ndarray:
    """RGB(A) uint8 -> 8-bit BGR ``factor`` times smaller, strip by strip: no second full-size copy."""
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    height, width = pixels.shape[0] // factor, pixels.shape[1] // factor
    out = np.empty((height, width, 3), np.uint8)
    step = max(1, _STRIP_ROWS // factor)
    for top in range(0, height, step):
        rows = min(step, height - top)
        strip = cv2.cvtColor(pixels[top * factor : (top + rows) * factor, : width * factor], code)
        out[top : top + rows] = strip if factor == 1 and strip.shape[2] == 3 else _strip_to_bgr8(strip, factor)
    return out


# What libjpeg and libpng print (to the process's stderr) when they patch over broken data instead of failing:
# the picture comes out grey or smeared below the damage. Other warnings (an unknown JFIF revision, a few padding
# bytes before a marker, an sRGB profile libpng dislikes) leave the picture intact.
_CORRUPT_DATA_WARNINGS = re.compile(
    r"Corrupt JPEG data: (premature end|bad Huffman|bad arithmetic|found marker)"
    r"|Premature end of JPEG file|Inconsistent progression sequence|Invalid SOS parameters"
    r"|libpng error: |libpng warning: .*(image data|compressed data|CRC|[Tt]runcat|invalid|bad)",
)
_STDERR_LOCK = threading.Lock()


@contextmanager
def _decoder_warnings() -> Iterator[list[str]]:
    """Collect the native decoders' corrupt-data warnings, which they write straight to file descriptor 2.

    Descriptor 2 is the process's, so decodes that collect take turns; anything else written there meanwhile is
    passed on to the real stderr afterwards.
    """
    found: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield found
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            others = []
            for line in text.splitlines():
                (found if _CORRUPT_DATA_WARNINGS.search(line) else others).append(line.strip())
            if others:
                sys.stderr.write("\n".join(others) + "\n")


_STRIP_ROWS = 256  # rows converted at a time: a few MB of temporaries whatever the picture's size


def _to_bgr8(image: np.ndarray, factor: int = 1) -> np.ndarray:
    """8-bit BGR, ``factor`` times smaller (box average), converted strip by strip: no full-size temporary."""
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if image.dtype == np.uint8 and channels == 3 and factor == 1:
        return image
    height, width = image.shape[0] // factor, image.shape[1] // factor
    out = np.empty((height, width, 3), np.uint8)
    step = max(1, _STRIP_ROWS // factor)  # output rows per strip
    for top in range(0, height, step):
        rows = min(step, height - top)
        strip = image[top * factor : (top + rows) * factor, : width * factor]
        out[top : top + rows] = _strip_to_bgr8(strip, factor)
    return out


def _strip_to_bgr8(strip: np.ndarray, factor: int) -> np.ndarray:
    if strip.dtype == np.uint16:
        strip = cv2.convertScaleAbs(strip, alpha=1 / 257)  # 65535 -> 255, rounded
    elif strip.dtype != np.uint8:  # not produced by the accepted formats; kept total
        strip = np.clip(strip, 0, 255).astype(np.uint8)
    channels = strip.shape[2]
    if channels == 2:  # grey + alpha
        strip = np.dstack([cv2.cvtColor(strip[:, :, 0], cv2.COLOR_GRAY2BGR), strip[:, :, 1]])
        channels = 4
    if channels == 1:
        strip = cv2.cvtColor(strip, cv2.COLOR_GRAY2BGR)
    elif channels == 4:
        # Premultiplied (colour x alpha) pixels average correctly when shrunk; on white, each pixel is then
        # colour x alpha + 255 - alpha.
        strip = cv2.cvtColor(strip, cv2.COLOR_RGBA2mRGBA)
    if factor > 1:
        rows, cols = strip.shape[0] // factor, strip.shape[1] // factor
        strip = cv2.resize(strip, (cols, rows), interpolation=cv2.INTER_AREA)
    if channels == 4:
        transparency = cv2.bitwise_not(strip[:, :, 3])
        strip = cv2.add(strip[:, :, :3], cv2.merge([transparency, transparency, transparency]))
    return strip


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
