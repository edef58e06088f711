"""YOLO post-processing in imagelift.vision.yolo: letterbox geometry, head decoding, NMS, candidate selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imagelift.vision.yolo import LETTERBOX_GREY, decode_heads, iou_xywh, letterbox, nms, select


def test_letterbox_keeps_aspect_and_centres_on_grey():
    image = np.full((200, 400, 3), 10, np.uint8)
    boxed = letterbox(image, 416)
    assert boxed.image.shape == (416, 416, 3)
    assert boxed.scale == pytest.approx(416 / 400)
    assert (boxed.pad_x, boxed.pad_y) == (0, 104)
    assert (boxed.image[:104] == LETTERBOX_GREY).all() and (boxed.image[-104:] == LETTERBOX_GREY).all()
    assert (boxed.image[104:312] == 10).all()


def test_letterbox_boxes_map_back_to_original_pixels():
    image = np.zeros((300, 451, 3), np.uint8)
    boxed = letterbox(image, 320)
    original = np.array([[10.0, 20.0, 100.0, 50.0], [400.0, 250.0, 51.0, 50.0]])
    on_input = np.column_stack(
        [
            original[:, 0] * boxed.scale + boxed.pad_x,
            original[:, 1] * boxed.scale + boxed.pad_y,
            original[:, 2:] * boxed.scale,
        ]
    )
    np.testing.assert_allclose(boxed.to_original(on_input, 451, 300), original, atol=1e-9)
    # Boxes reaching into the border are clipped to the image.
    clipped = boxed.to_original(np.array([[-50.0, -50.0, 500.0, 500.0]]), 451, 300)
    np.testing.assert_allclose(clipped, [[0, 0, 451, 300]])


def test_decode_follows_darknet_formulas():
    anchors = [[10, 14], [23, 27], [37, 58]]
    classes = 2
    head = np.full((1, 2 * (5 + classes), 2, 3), -20.0, np.float32)  # two anchors, 2x3 grid, all near zero
    # anchor slot 1 (mask entry 2 -> anchor [37, 58]) at row 1, col 2
    base = 1 * (5 + classes)
    head[0, base + 0, 1, 2] = 0.0  # sigmoid 0.5
    head[0, base + 1, 1, 2] = 1.0
    head[0, base + 2, 1, 2] = math.log(2.0)
    head[0, base + 3, 1, 2] = 0.0
    head[0, base + 4, 1, 2] = 3.0  # objectness
    head[0, base + 6, 1, 2] = 2.0  # class 1
    rows = decode_heads([head], (64, 96), anchors, [[0, 2]])
    assert rows.shape == (2 * 3 * 2, 5 + classes)
    row = rows[(1 * 3 + 2) * 2 + 1]  # Darknet order: row, col, anchor
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    np.testing.assert_allclose(
        row,
        [(2 + 0.5) / 3 * 96, (1 + sig(1.0)) / 2 * 64, 2 * 37, 58, sig(3.0), sig(3.0) * sig(-20.0), sig(3.0) * sig(2.0)],
        rtol=1e-5,
        atol=1e-7,
    )
    assert np.argmax(rows[:, 4]) == (1 * 3 + 2) * 2 + 1


def test_nms_suppresses_overlaps_and_keeps_order():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10.5]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.8])
    assert nms(boxes, scores, 0.45) == [1, 2]
    assert nms(boxes, scores, 0.99) == [1, 3, 0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0)) == []


def test_iou_of_identical_disjoint_and_degenerate_boxes():
    ious = iou_xywh(
        np.array([0, 0, 10, 10.0]), np.array([[0, 0, 10, 10], [20, 20, 5, 5], [5, 0, 10, 10], [0, 0, 0, 0]], float)
    )
    np.testing.assert_allclose(ious, [1.0, 0.0, 50 / 150, 0.0])


def test_select_is_multi_label_with_per_class_nms_and_filter():
    # cx, cy, w, h, objectness, class scores (already objectness x class)
    rows = np.array(
        [
            [50, 50, 20, 20, 0.9, 0.8, 0.6],
            [51, 51, 20, 20, 0.9, 0.7, 0.1],  # overlaps row 0: suppressed for class 0
            [150, 150, 20, 20, 0.9, 0.3, 0.0],
            [250, 250, 20, 20, 0.9, 0.2, 0.0],  # below threshold
        ]
    )
    kept = select(rows, 0.25, 0.45)
    assert [(round(s, 2), c) for _, s, c in kept] == [(0.8, 0), (0.6, 1), (0.3, 0)]
    np.testing.assert_allclose(kept[0][0], [40, 40, 20, 20])
    assert [c for _, _, c in select(rows, 0.25, 0.45, class_ids={1})] == [1]
    assert select(rows, 0.95, 0.45) == []
