"""HEIC and AVIF: real photos encoded here (pillow-heif's x265, Pillow's libavif) decode like their JPEG, upright
for every orientation, transparency on white, high bit depth budgeted, and hostile files refused from their
structure with a reason (nothing decoded)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from imagelift.vision.image_io import DecodeLimits, ImageDecodeError, decode_image, read_header
from infra.localstack.hostile import avif as encode_avif
from infra.localstack.hostile import forged_ispe
from infra.localstack.hostile import heic as encode_heic

ENCODERS = {"heic": encode_heic, "avif": encode_avif}


@pytest.fixture(scope="module")
def photo(photos_dir) -> np.ndarray:
    """A real model photo (BGR), at its own size."""
    path = sorted(photos_dir.glob("cat1_model/*.jpg"))[0]
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def encoded(photo) -> dict[str, bytes]:
    """The photo as HEIC and as AVIF (x265 takes a second or two for it: made once)."""
    return {fmt: encode(photo, 85) for fmt, encode in ENCODERS.items()}


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_a_real_photo_decodes_like_its_jpeg(photo, encoded, fmt):
    data = encoded[fmt]
    header = read_header(data)
    # HEVC codes an odd size one pixel larger and crops it back (clap): the declared size may be that one
    assert header.format == fmt and header.width - photo.shape[1] in (0, 1) and header.height == photo.shape[0]
    decoded = decode_image(data)
    assert (decoded.format, decoded.width, decoded.height, decoded.scale) == (fmt, photo.shape[1], photo.shape[0], 1.0)
    assert decoded.bgr.shape == photo.shape and decoded.bgr.dtype == np.uint8
    assert np.abs(decoded.bgr.astype(int) - photo.astype(int)).mean() < 4  # lossy, but the same picture
    reduced = decode_image(data, target_long_side=300)
    assert reduced.scale == 0.5 and max(reduced.bgr.shape[:2]) >= 300
    assert (reduced.width, reduced.height) == (photo.shape[1], photo.shape[0])


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_every_orientation_comes_out_upright(photo, fmt, orientation):
    small = Image.fromarray(cv2.resize(photo, (96, 64))[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    if fmt == "heic":
        import pillow_heif

        pillow_heif.from_pillow(small).save(out, quality=95, exif=exif.tobytes())
    else:
        small.save(out, format="AVIF", quality=95, exif=exif.tobytes())
    # the writers turn EXIF orientation into HEIF's irot / imir; upright is what exif_transpose makes of the original
    tagged = io.BytesIO()
    small.save(tagged, format="PNG", exif=exif.tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tagged)))[:, :, ::-1].astype(int)
    assert read_header(out.getvalue()).orientation == orientation
    decoded = decode_image(out.getvalue())
    assert decoded.bgr.shape == upright.shape and (decoded.width, decoded.height) == upright.shape[1::-1]
    assert np.abs(decoded.bgr.astype(int) - upright).mean() < 6


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_transparency_is_composited_on_white(fmt):
    import pillow_heif

    picture = np.zeros((64, 96, 4), np.uint8)
    picture[..., 0] = 200  # red where opaque
    picture[16:48, 24:72, 3] = 255
    image = Image.fromarray(picture, "RGBA")
    out = io.BytesIO()
    if fmt == "heic":
        pillow_heif.from_pillow(image).save(out, quality=95)
    else:
        image.save(out, format="AVIF", quality=95)
    assert read_header(out.getvalue()).channels == 4
    decoded = decode_image(out.getvalue()).bgr
    assert decoded[0, 0].tolist() == [255, 255, 255]
    assert abs(int(decoded[32, 48, 2]) - 200) < 8 and decoded[32, 48, :2].max() < 8


def test_a_10_bit_heic_is_budgeted_at_two_bytes_a_sample_and_decodes_to_8_bits():
    import pillow_heif

    ramp = (np.indices((64, 96)).sum(0) * 400).astype(np.uint16)
    rgb16 = np.dstack([ramp, ramp // 2, ramp // 3])
    out = io.BytesIO()
    pillow_heif.from_bytes(mode="RGB;16", size=(96, 64), data=rgb16.tobytes()).save(out, quality=90)
    header = read_header(out.getvalue())
    assert (header.bytes_per_sample, header.decode_bytes) == (2, 96 * 64 * 3 * 2)
    assert decode_image(out.getvalue()).bgr.dtype == np.uint8


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_a_huge_declared_size_is_refused_from_the_header(photo, fmt):
    forged = forged_ispe(ENCODERS[fmt](cv2.resize(photo, (160, 120)), 50), 100_000, 100_000)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(forged)
    assert caught.value.code == "too_large" and "checked from the header, nothing decoded" in caught.value.message
    limits = DecodeLimits.default()
    just_over = forged_ispe(ENCODERS[fmt](cv2.resize(photo, (160, 120)), 50), 7072, 7072)
    with pytest.raises(ImageDecodeError, match="pixel limit"):
        decode_image(just_over, limits=limits)


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_a_small_declared_size_hiding_a_bigger_frame_is_refused(encoded, fmt):
    forged = forged_ispe(encoded[fmt], 64, 64)
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(forged)
    assert caught.value.code == "corrupt"
    if fmt == "avif":  # read from the AV1 sequence header, before libavif decodes anything
        assert "AV1 frames are up to" in caught.value.message


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_cut_uploads_are_truncated(encoded, fmt):
    data = encoded[fmt]
    for end in (len(data) * 2 // 3, 200, 40):
        with pytest.raises(ImageDecodeError) as caught:
            decode_image(data[:end])
        assert caught.value.code == "truncated", (end, caught.value)


def test_a_tiled_heic_as_an_iphone_writes_it_is_read_whole(photo, monkeypatch):
    import pillow_heif

    monkeypatch.setattr(pillow_heif.options, "GRID_TILE_SIZE", 256)  # a grid of 256 px tiles (the iPhone: 512)
    data = encode_heic(photo, 85)
    assert data.count(b"infe") > 4 and b"grid" in data  # one grid item and its tiles
    header = read_header(data)
    assert (header.width, header.height) == (photo.shape[1], photo.shape[0])  # the grid's size, not a tile's
    decoded = decode_image(data)
    assert decoded.bgr.shape == photo.shape
    assert np.abs(decoded.bgr.astype(int) - photo.astype(int)).mean() < 4
