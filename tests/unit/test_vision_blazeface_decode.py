"""The BlazeFace decode (anchors, boxes, tiles, weighted NMS) against values worked out by hand from MediaPipe's
SsdAnchorsCalculator and TfLiteTensorsToDetectionsCalculator conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagelift.vision.blazeface import (
    SPECS,
    BlazeFace,
    anchor_centres,
    decode_boxes,
    sigmoid_scores,
    tile_grid,
    tile_inputs,
    weighted_nms,
)


def test_full_range_anchors_are_one_per_cell_of_a_48_grid_row_major() -> None:
    anchors = anchor_centres(SPECS["full_range"])
    assert anchors.shape == (2304, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48])  # x moves first
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48])


def test_back_anchors_are_two_per_cell_at_stride_16_then_six_at_stride_32() -> None:
    anchors = anchor_centres(SPECS["back"])
    assert anchors.shape == (16 * 16 * 2 + 8 * 8 * 6, 2) == (896, 2)
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_boxes_are_offsets_in_input_pixels_from_the_anchor() -> None:
    raw = np.zeros((1, 16), np.float32)
    raw[0, :4] = [19.2, 0.0, 38.4, 19.2]  # centre 0.1 right of the anchor, 0.2 wide, 0.1 high (of 192)
    raw[0, 4:6] = [-9.6, -9.6]  # first keypoint 0.05 left and up
    points = decode_boxes(raw, np.array([[0.5, 0.5]], np.float32), 192)
    np.testing.assert_allclose(points[0, 0], [0.5, 0.45], atol=1e-6)
    np.testing.assert_allclose(points[0, 1], [0.7, 0.55], atol=1e-6)
    np.testing.assert_allclose(points[0, 2], [0.45, 0.45], atol=1e-6)
    np.testing.assert_allclose(points[0, 3], [0.5, 0.5], atol=1e-6)


def test_scores_clip_the_logits_so_the_sigmoid_never_overflows() -> None:
    scores = sigmoid_scores(np.array([-1000.0, 0.0, 1000.0], np.float32))
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, [0.0, 0.5, 1.0], atol=1e-6)


def test_level_one_is_the_whole_photo_letterboxed() -> None:
    assert tile_grid(640, 400, 1) == [(0.0, -120.0, 640.0)]


@pytest.mark.parametrize(("width", "height", "level"), [(640, 427, 2), (640, 427, 3), (320, 240, 3), (800, 800, 2)])
def test_tiles_of_a_level_cover_the_photo_and_share_one_side(width: int, height: int, level: int) -> None:
    tiles = tile_grid(width, height, level)
    sides = {side for _, _, side in tiles}
    assert sides == {max(width, height) / level * 1.25}
    covered = np.zeros((height, width), bool)
    for x0, y0, side in tiles:
        covered[max(0, round(y0)) : round(y0 + side), max(0, round(x0)) : round(x0 + side)] = True
    assert covered.all()
    # neighbours overlap by a quarter of a tile, so a face on one border is whole on the next tile
    xs = sorted({x0 for x0, _, _ in tiles})
    if len(xs) > 1:
        assert xs[1] - xs[0] <= 0.75 * next(iter(sides)) + 1e-6


def test_tile_inputs_place_the_tile_and_black_out_what_lies_outside_the_photo() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255  # a white square in the middle
    whole = tile_inputs(image, tile_grid(200, 100, 1), 100)[0]  # scale 0.5, letterboxed 25 px top and bottom
    assert whole.shape == (100, 100, 3) and whole.dtype == np.float32
    assert whole[:20].max() == -1.0 and whole[80:].max() == -1.0  # padding is black: -1
    np.testing.assert_allclose(whole[50, 50], [1.0, 1.0, 1.0], atol=0.02)
    assert whole[50, 20].max() == -1.0
    zoomed = tile_inputs(image, [(80.0, 30.0, 40.0)], 80)[0]  # scale 2: the square spans 20..60
    np.testing.assert_allclose(zoomed[40, 40], [1.0, 1.0, 1.0], atol=0.02)
    assert zoomed[5, 5].max() == -1.0


def test_weighted_nms_merges_overlaps_by_score_and_keeps_the_best_score() -> None:
    def box(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
        points = np.zeros((8, 2), np.float32)
        points[0], points[1] = (x1, y1), (x2, y2)
        return points

    boxes = np.stack([box(0, 0, 10, 10), box(1, 0, 11, 10), box(50, 50, 60, 60)])
    kept = weighted_nms(boxes, np.array([0.6, 0.9, 0.7], np.float32))
    assert [round(score, 3) for _, score in kept] == [0.9, 0.7]
    np.testing.assert_allclose(kept[0][0][0], [(0.6 * 0 + 0.9 * 1) / 1.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(kept[1][0][1], [60, 60])


def test_an_unknown_net_kind_is_refused_before_any_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown BlazeFace kind"):
        BlazeFace(tmp_path / "missing.onnx", "front")
