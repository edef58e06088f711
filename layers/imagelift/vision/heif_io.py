"""HEIC and AVIF photos: the HEIF structure (ISO base media file boxes) read before any pixel is decoded, then the
decode by pillow-heif (libheif + libde265, HEVC) or Pillow's AVIF plugin (libavif).

What the limits need comes from the boxes of the ``meta`` box: the primary item (``pitm``), its type (``iinf``:
``hvc1``, ``av01`` or a ``grid`` of tiles, which is how an iPhone stores a photo), its size (``ispe``: the size
the decoder produces, a grid's the whole picture), its bit depth (``pixi``), whether an alpha plane is attached
(``auxC``) and its orientation (``irot`` / ``imir``: HEIF keeps orientation in these, not in EXIF). A file with a
box running past its end was cut short; image sequences (``msf1``, ``hevc``, ``avis``) are refused like animated
WebP. Both decoders convert to 8 bits; high-bit-depth files are budgeted at 2 bytes per sample, what the decoders
hold while converting.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from imagelift.vision.image_io import ImageDecodeError

HEIF_FORMATS = ("heic", "avif")
_STILL_BRANDS = {b"heic": "heic", b"heix": "heic", b"heim": "heic", b"heis": "heic", b"avif": "avif"}
_SEQUENCE_BRANDS = {b"msf1": "HEIF", b"hevc": "HEIC", b"hevx": "HEIC", b"avis": "AVIF"}
_GENERIC_BRANDS = {b"mif1", b"miaf", b"MiHE", b"MiHA", b"MiHB", b"MA1A", b"MA1B"}
_ITEM_FORMATS = {b"hvc1": "heic", b"av01": "avif"}
_ALPHA_AUX_TYPES = (b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")

# HEIF orientation -> the EXIF orientation (1-8) that means the same: (irot anticlockwise quarter turns, imir axis
# or None), irot applied before imir (the order HEIF writers list them in). imir axis 0 mirrors top <-> bottom,
# axis 1 left <-> right (libheif's heif_transform_mirror_direction_vertical / _horizontal).
_EXIF_ORIENTATION = {
    (0, None): 1,
    (0, 1): 2,
    (2, None): 3,
    (0, 0): 4,
    (1, 0): 5,
    (3, None): 6,
    (1, 1): 7,
    (1, None): 8,
    (2, 1): 4,
    (2, 0): 2,
    (3, 1): 5,
    (3, 0): 7,
}


def heif_format(data: bytes) -> str | None:
    """``heic`` or ``avif`` for a HEIF still image, None when ``data`` is no ISO media file; raises
    ``unsupported_format`` for an image sequence or another kind of ISO media (MP4, ...)."""
    if data[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack(">I", data[0:4])
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, min(max(size, 16), len(data)) - 3, 4)}
    if major in _SEQUENCE_BRANDS:
        raise ImageDecodeError(
            "unsupported_format", f"{_SEQUENCE_BRANDS[major]} image sequences are not accepted (one photo per file)"
        )
    if major in _STILL_BRANDS:
        return _STILL_BRANDS[major]
    for brand, name in _STILL_BRANDS.items():
        if brand in compatible and (major in _GENERIC_BRANDS or major in _STILL_BRANDS):
            return name
    if major in _GENERIC_BRANDS:
        return "heif"  # the item type decides (heif_structure)
    label = major.decode("latin-1")
    raise ImageDecodeError(
        "unsupported_format", f"ISO media ({label!r}) files are not accepted (JPEG, PNG, WebP, HEIC or AVIF only)"
    )


@dataclass(frozen=True)
class HeifStructure:
    format: str  # "heic" | "avif"
    width: int  # as stored (the ispe of the primary item), before irot / imir
    height: int
    orientation: int  # the EXIF orientation that irot / imir amount to
    alpha: bool
    bit_depth: int


def _boxes(data: bytes, start: int, end: int, where: str):
    """(type, payload start, payload end) of each box in ``data[start:end]``; a box past ``end`` is cut short."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ImageDecodeError("truncated", f"the {where} stops inside a box header: the file was cut short")
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:  # to the end of the enclosing box
            size = end - pos
        if size < header:
            raise ImageDecodeError("corrupt", f"the {where} has a {kind!r} box of impossible size {size}")
        if pos + size > end:
            raise ImageDecodeError(
                "truncated", f"the {where}'s {kind!r} box needs {pos + size} bytes, the file has {end}: cut short"
            )
        yield kind, pos + header, pos + size
        pos += size
    if pos < end and start == 0:  # inside a box, a few bytes left over are padding
        raise ImageDecodeError("truncated", f"the {where} stops inside a box header: the file was cut short")


def heif_structure(data: bytes, declared: str) -> HeifStructure:
    """The primary image's size, orientation, alpha and bit depth, read from the boxes alone."""
    where = declared.upper()
    top = {kind: (start, end) for kind, start, end in _boxes(data, 0, len(data), where)}
    if b"meta" not in top:
        raise ImageDecodeError("corrupt", f"the {where} file has no meta box (no image items)")
    start, end = top[b"meta"]
    meta = {kind: (s, e) for kind, s, e in _boxes(data, start + 4, end, where)}  # FullBox: version and flags first
    try:
        primary = _primary_item(data, meta)
        types = _item_types(data, meta)
        properties, associations = _properties(data, meta)
    except (struct.error, IndexError) as exc:
        raise ImageDecodeError("corrupt", f"the {where} file's item boxes cannot be read ({exc})") from exc
    item_type = types.get(primary)
    if item_type == b"grid":  # the tiles' type says which codec
        item_type = next((t for t in types.values() if t in _ITEM_FORMATS), item_type)
    if item_type not in _ITEM_FORMATS:
        shown = "none" if item_type is None else item_type.decode("latin-1")
        raise ImageDecodeError("unsupported_format", f"the HEIF primary image is coded as {shown!r}, not HEVC or AV1")
    fmt = _ITEM_FORMATS[item_type]
    own = [properties[index - 1] for index in associations.get(primary, []) if 0 < index <= len(properties)]
    sizes = [payload for kind, payload in own if kind == b"ispe"]
    if not sizes or len(sizes[0]) < 12:
        raise ImageDecodeError("corrupt", f"the {fmt.upper()} primary image has no size (ispe) property")
    width, height = struct.unpack(">II", sizes[0][4:12])
    if fmt == "avif":
        _check_av1_frames(data, meta, types, properties, associations)
    rotation, mirror = 0, None
    for kind, payload in own:
        if kind == b"irot" and payload:
            rotation = payload[0] & 0x03
        elif kind == b"imir" and payload:
            mirror = payload[0] & 0x01
    bit_depth = 8
    for kind, payload in properties:
        if kind == b"pixi" and len(payload) > 5:  # FullBox header, channel count, bits of each channel
            bits = payload[5 : 5 + payload[4]]
            bit_depth = max(bit_depth, *bits) if bits else bit_depth
    alpha = any(kind == b"auxC" and payload[4:].startswith(_ALPHA_AUX_TYPES) for kind, payload in properties)
    return HeifStructure(fmt, width, height, _EXIF_ORIENTATION[(rotation, mirror)], alpha, bit_depth)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self.data[self.pos >> 3]  # IndexError past the end: a sequence header cut short
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def uvlc(self) -> int:
        zeros = 0
        while not self.read(1):
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.read(zeros) + (1 << zeros) - 1


def _av1_frame_size(obus: bytes) -> tuple[int, int] | None:
    """(max frame width, max frame height) from the sequence header OBU among ``obus`` (AV1 spec 5.5), or None."""
    pos = 0
    try:
        while pos < len(obus):
            header = obus[pos]
            kind, extension, has_size = (header >> 3) & 0x0F, (header >> 2) & 1, (header >> 1) & 1
            pos += 1 + extension
            size = len(obus) - pos
            if has_size:
                size, shift = 0, 0
                while True:  # leb128
                    byte = obus[pos]
                    pos += 1
                    size |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80 or shift >= 56:
                        break
            if kind == 1:  # OBU_SEQUENCE_HEADER
                return _av1_sequence_header_size(_Bits(obus[pos : pos + size]))
            pos += size
    except IndexError:
        raise ImageDecodeError("corrupt", "the AVIF's AV1 sequence header is cut short") from None
    return None


def _av1_sequence_header_size(bits: _Bits) -> tuple[int, int]:
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    if bits.read(1):  # reduced_still_picture_header
        bits.read(5)  # seq_level_idx
    else:
        decoder_model_info = False
        buffer_delay_length = 0
        if bits.read(1):  # timing_info_present_flag
            bits.read(32)
            bits.read(32)
            if bits.read(1):  # equal_picture_interval
                bits.uvlc()
            decoder_model_info = bool(bits.read(1))
            if decoder_model_info:
                buffer_delay_length = bits.read(5) + 1
                bits.read(32)
                bits.read(5)
                bits.read(5)
        initial_display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)  # operating_point_idc
            if bits.read(5) > 7:  # seq_level_idx
                bits.read(1)  # seq_tier
            if decoder_model_info and bits.read(1):
                bits.read(buffer_delay_length)
                bits.read(buffer_delay_length)
                bits.read(1)
            if initial_display_delay and bits.read(1):
                bits.read(4)
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1


_OBU_PROBE_BYTES = 4096  # the sequence header opens an AV1 item's data


def _check_av1_frames(data: bytes, meta: dict, types: dict, properties: list, associations: dict) -> None:
    """libavif decodes each AV1 frame whole, whatever ``ispe`` says, and crops it to ``ispe`` afterwards: a frame
    larger than its declared size (a forged small ``ispe``) would cost what the limits never saw. Each AV1 item's
    frame size (its sequence header's maximum, from ``av1C`` or the item's data) must fit its ``ispe``."""
    try:
        extents = _item_extents(data, meta)
    except (struct.error, IndexError) as exc:
        raise ImageDecodeError("corrupt", f"the AVIF item locations (iloc) cannot be read ({exc})") from exc
    for item_id, item_type in types.items():
        if item_type != b"av01":
            continue
        own = [properties[i - 1] for i in associations.get(item_id, []) if 0 < i <= len(properties)]
        sizes = [payload for kind, payload in own if kind == b"ispe" and len(payload) >= 12]
        if not sizes:
            raise ImageDecodeError("corrupt", f"AVIF item {item_id} has no size (ispe) property")
        declared = struct.unpack(">II", sizes[0][4:12])
        configs = [payload[4:] for kind, payload in own if kind == b"av1C"]
        coded = _av1_frame_size(configs[0]) if configs else None
        if coded is None and item_id in extents:
            offset, length = extents[item_id]
            coded = _av1_frame_size(data[offset : offset + min(length, _OBU_PROBE_BYTES)])
        if coded is None:
            raise ImageDecodeError("corrupt", f"AVIF item {item_id} has no AV1 sequence header (no frame size)")
        if coded[0] > declared[0] or coded[1] > declared[1]:
            raise ImageDecodeError(
                "corrupt",
                f"the AVIF declares {declared[0]}x{declared[1]} (ispe) but its AV1 frames are up to "
                f"{coded[0]}x{coded[1]}: refused before decoding",
            )


def _item_extents(data: bytes, meta: dict) -> dict[int, tuple[int, int]]:
    """Item id -> (file offset, length) of its first extent, for items stored in the file (construction method 0)."""
    if b"iloc" not in meta:
        return {}
    start, _ = meta[b"iloc"]
    version = data[start]
    pos = start + 4
    offset_size, length_size = data[pos] >> 4, data[pos] & 0x0F
    base_size, index_size = data[pos + 1] >> 4, (data[pos + 1] & 0x0F) if version in (1, 2) else 0
    pos += 2

    def number(size: int) -> int:
        nonlocal pos
        value = int.from_bytes(data[pos : pos + size], "big") if size else 0
        if pos + size > len(data):
            raise IndexError("iloc runs past the end of the file")
        pos += size
        return value

    extents = {}
    for _ in range(number(2 if version < 2 else 4)):
        item_id = number(2 if version < 2 else 4)
        method = number(2) & 0x0F if version in (1, 2) else 0
        number(2)  # data_reference_index
        base = number(base_size)
        first = None
        for index in range(number(2)):
            number(index_size)
            offset, length = number(offset_size), number(length_size)
            if index == 0:
                first = (base + offset, length if length else len(data) - base - offset)
        if method == 0 and first is not None:
            extents[item_id] = first
    return extents


def _primary_item(data: bytes, meta: dict) -> int:
    if b"pitm" not in meta:
        raise ImageDecodeError("corrupt", "the HEIF file names no primary image (pitm)")
    start, _ = meta[b"pitm"]
    version = data[start]
    return struct.unpack(">I" if version else ">H", data[start + 4 : start + (8 if version else 6)])[0]


def _item_types(data: bytes, meta: dict) -> dict[int, bytes]:
    if b"iinf" not in meta:
        raise ImageDecodeError("corrupt", "the HEIF file has no item list (iinf)")
    start, end = meta[b"iinf"]
    version = data[start]
    first = start + (8 if version else 6)
    types = {}
    for kind, s, _e in _boxes(data, first, end, "HEIF"):
        if kind != b"infe":
            continue
        infe_version = data[s]
        if infe_version >= 2:
            wide = infe_version >= 3
            item_id = struct.unpack(">I" if wide else ">H", data[s + 4 : s + (8 if wide else 6)])[0]
            offset = s + (8 if wide else 6) + 2  # item_protection_index
            types[item_id] = data[offset : offset + 4]
    return types


def _properties(data: bytes, meta: dict) -> tuple[list[tuple[bytes, bytes]], dict[int, list[int]]]:
    """The property boxes of ``ipco`` (1-based in ``ipma``) and each item's property indexes."""
    if b"iprp" not in meta:
        raise ImageDecodeError("corrupt", "the HEIF file has no item properties (iprp)")
    start, end = meta[b"iprp"]
    properties: list[tuple[bytes, bytes]] = []
    associations: dict[int, list[int]] = {}
    for kind, s, e in _boxes(data, start, end, "HEIF"):
        if kind == b"ipco":
            properties = [(k, data[ps:pe]) for k, ps, pe in _boxes(data, s, e, "HEIF")]
        elif kind == b"ipma":
            version, flags = data[s], int.from_bytes(data[s + 1 : s + 4], "big")
            (count,) = struct.unpack(">I", data[s + 4 : s + 8])
            pos = s + 8
            for _ in range(count):
                if version < 1:
                    (item_id,) = struct.unpack(">H", data[pos : pos + 2])
                    pos += 2
                else:
                    (item_id,) = struct.unpack(">I", data[pos : pos + 4])
                    pos += 4
                n = data[pos]
                pos += 1
                indexes = []
                for _ in range(n):
                    if flags & 1:
                        (value,) = struct.unpack(">H", data[pos : pos + 2])
                        indexes.append(value & 0x7FFF)
                        pos += 2
                    else:
                        indexes.append(data[pos] & 0x7F)
                        pos += 1
                associations[item_id] = indexes
    return properties, associations


def decode_heif(data: bytes, structure: HeifStructure) -> tuple[np.ndarray, bool]:
    """(RGB or RGBA uint8 pixels, whether irot / imir are already applied); errors as :class:`ImageDecodeError`."""
    try:
        if structure.format == "heic":
            import pillow_heif

            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            return np.asarray(heif), True  # libheif applies irot / imir itself
        from PIL import Image

        with Image.open(io.BytesIO(data), formats=["AVIF"]) as picture:
            picture.load()
            if picture.mode not in ("RGB", "RGBA"):
                picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
            pixels = np.asarray(picture)  # a copy: closing the picture frees Pillow's own
        return pixels, False  # Pillow reports irot / imir as EXIF orientation, pixels as stored
    except MemoryError:
        raise
    except Exception as exc:  # the decoders raise ValueError, RuntimeError, OSError, SyntaxError...
        raise ImageDecodeError(
            "corrupt", f"the {structure.format.upper()} data cannot be decoded ({type(exc).__name__}: {exc})"
        ) from exc
