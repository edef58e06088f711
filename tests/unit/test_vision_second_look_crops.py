"""Head crops of the second look: the MTCNN input from the capped decode or from a finer decode of the same photo."""

from __future__ import annotations

import numpy as np

from imagelift.vision.person import Person
from imagelift.vision.second_look import crop_input, finer_long_side, head_crops


def _photo(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_crop_from_a_finer_decode_has_the_same_size_and_real_pixels() -> None:
    finer = _photo(400, 300)
    capped = finer[::2, ::2].copy()  # the same photo at half size
    crops = head_crops([Person((50, 20, 60, 100), 0.9, "full")], 200, 150, head_fraction=0.3, upscale=2.0, max_side=640)
    (crop,) = crops
    from_capped, from_finer = crop_input(crop, capped), crop_input(crop, capped, finer)
    assert from_capped.shape == from_finer.shape == ((crop.y1 - crop.y0) * 2, (crop.x1 - crop.x0) * 2, 3)
    # Enlarged 2x from a half-size decode, the finer decode's own pixels are used unchanged.
    assert np.array_equal(from_finer, finer[crop.y0 * 2 : crop.y1 * 2, crop.x0 * 2 : crop.x1 * 2])
    assert not np.array_equal(from_capped, from_finer)


def test_the_finer_decode_is_only_as_large_as_the_largest_enlargement() -> None:
    capped = _photo(200, 150)
    persons = [Person((50, 20, 60, 100), 0.9, "full"), Person((10, 10, 190, 140), 0.8, "full")]
    crops = head_crops(persons, 200, 150, head_fraction=0.5, upscale=3.0, max_side=400)
    # The wide box's crop (190 px) is held to 400 px, so its upscale drops under 3; the other keeps 3.
    assert max(c.upscale for c in crops) == 3.0 and min(c.upscale for c in crops) < 3.0
    assert finer_long_side(crops, capped) == 600
    assert finer_long_side([], capped) == 200
