"""YOLOv3-family detection on ONNX Runtime: letterbox, decode the raw heads, per-class NMS, original coordinates.

The model is what ``imagelift models build`` writes (``infra.models.darknet``): input ``images`` ``[N, 3, H, W]``
RGB 0..1, one raw head tensor per ``[yolo]`` layer, and the anchors, masks, class names and ``scale_x_y`` in the
ONNX metadata. Decoding follows Darknet's ``yolo_layer.c``: centre ``(col + sigmoid(tx)) / grid``, size
``anchor * exp(tw) / input``, score ``sigmoid(objectness) * sigmoid(class)``; every class whose score passes the
threshold gives a candidate (as Darknet does), and NMS runs per class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LETTERBOX_GREY = 128
"""Fill of the letterbox border (Darknet fills with 0.5; 128/255 is the nearest 8-bit grey)."""
INPUT_MULTIPLE = 32


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    """x, y (top left), width, height in pixels of the original image."""
    confidence: float
    """objectness x class probability."""
    class_id: int
    class_name: str

    def to_record(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "confidence": round(float(self.confidence), 4),
            "class_id": self.class_id,
            "class_name": self.class_name,
        }


@dataclass(frozen=True)
class Letterbox:
    image: np.ndarray
    """The padded image, ``size`` x ``size``, same channel order as the input."""
    scale: float
    """Resize factor applied to the original image."""
    pad_x: int
    pad_y: int

    def to_original(self, boxes_xywh: np.ndarray, width: int, height: int) -> np.ndarray:
        """Map ``[N, 4]`` (x, y, w, h) boxes on the letterboxed image back to the original, clipped to it."""
        x1 = np.clip((boxes_xywh[:, 0] - self.pad_x) / self.scale, 0, width)
        y1 = np.clip((boxes_xywh[:, 1] - self.pad_y) / self.scale, 0, height)
        x2 = np.clip((boxes_xywh[:, 0] + boxes_xywh[:, 2] - self.pad_x) / self.scale, 0, width)
        y2 = np.clip((boxes_xywh[:, 1] + boxes_xywh[:, 3] - self.pad_y) / self.scale, 0, height)
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


def _check_size(size: int) -> int:
    if not isinstance(size, int | np.integer) or size < INPUT_MULTIPLE or size % INPUT_MULTIPLE:
        raise ValueError(f"input size must be a positive multiple of {INPUT_MULTIPLE}, got {size!r}")
    return int(size)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ValueError("image is empty or not a numpy array")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")


def letterbox(image: np.ndarray, size: int = 416, fill: int = LETTERBOX_GREY) -> Letterbox:
    """Fit ``image`` into a ``size`` x ``size`` square keeping its aspect ratio, centred on a grey border."""
    size = _check_size(size)
    height, width = image.shape[:2]
    scale = min(size / width, size / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = (
        cv2.resize(image, (new_w, new_h), interpolation=interpolation) if (new_w, new_h) != (width, height) else image
    )
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, *image.shape[2:]), fill, dtype=image.dtype)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return Letterbox(canvas, scale, pad_x, pad_y)


def to_blob(image_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 to the model input: ``[1, 3, H, W]`` float32 RGB in 0..1."""
    rgb = image_bgr[:, :, ::-1].astype(np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free for large |x|


def decode_heads(
    heads: list[np.ndarray],
    input_hw: tuple[int, int],
    anchors: list[list[float]],
    masks: list[list[int]],
    scale_x_y: list[float] | None = None,
) -> np.ndarray:
    """Raw heads of one image to rows ``[cx, cy, w, h, objectness, class scores...]`` in input pixels.

    Class scores are objectness x sigmoid(class), as in Darknet's ``get_yolo_detections``.
    """
    input_h, input_w = input_hw
    rows = []
    for index, (head, mask) in enumerate(zip(heads, masks, strict=True)):
        head = head[0] if head.ndim == 4 else head
        n_anchors = len(mask)
        channels, grid_h, grid_w = head.shape
        if channels % n_anchors:
            raise ValueError(f"head {index} has {channels} channels, not divisible by {n_anchors} anchors")
        head = head.reshape(n_anchors, channels // n_anchors, grid_h, grid_w).astype(np.float32)
        sxy = 1.0 if scale_x_y is None else float(scale_x_y[index])
        cols = np.arange(grid_w, dtype=np.float32)[None, None, :]
        rows_idx = np.arange(grid_h, dtype=np.float32)[None, :, None]
        anchor = np.asarray([anchors[m] for m in mask], dtype=np.float32)
        cx = (cols + _sigmoid(head[:, 0]) * sxy - (sxy - 1) / 2) / grid_w * input_w
        cy = (rows_idx + _sigmoid(head[:, 1]) * sxy - (sxy - 1) / 2) / grid_h * input_h
        w = np.exp(head[:, 2]) * anchor[:, 0, None, None]
        h = np.exp(head[:, 3]) * anchor[:, 1, None, None]
        objectness = _sigmoid(head[:, 4])
        scores = objectness[:, None] * _sigmoid(head[:, 5:])
        decoded = np.concatenate([np.stack([cx, cy, w, h, objectness], axis=1), scores], axis=1)
        rows.append(decoded.transpose(2, 3, 0, 1).reshape(-1, decoded.shape[1]))  # Darknet order: row, col, anchor
    return np.concatenate(rows, axis=0)


def iou_xywh(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x, y, w, h) box against ``[N, 4]`` boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, limit: int | None = None) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best first, at most ``limit``. Ties keep the lower index."""
    boxes_xywh = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size and (limit is None or len(keep) < limit):
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou_xywh(boxes_xywh[best], boxes_xywh[rest]) <= iou_threshold]
    return keep


def select(
    rows: np.ndarray, conf_threshold: float, iou_threshold: float, class_ids: set[int] | None = None
) -> list[tuple[np.ndarray, float, int]]:
    """Decoded rows (centre boxes + per-class scores) to ``(xywh box, score, class)``, thresholded and NMS'd per class."""
    scores = rows[:, 5:]
    cand_rows, cand_classes = np.nonzero(scores > conf_threshold)
    if class_ids is not None:
        wanted = np.isin(cand_classes, np.fromiter(class_ids, dtype=np.int64, count=len(class_ids)))
        cand_rows, cand_classes = cand_rows[wanted], cand_classes[wanted]
    if cand_rows.size == 0:
        return []
    centre = rows[cand_rows, :4].astype(np.float64)
    boxes = np.stack([centre[:, 0] - centre[:, 2] / 2, centre[:, 1] - centre[:, 3] / 2, centre[:, 2], centre[:, 3]], 1)
    cand_scores = scores[cand_rows, cand_classes].astype(np.float64)
    kept: list[tuple[np.ndarray, float, int]] = []
    for class_id in np.unique(cand_classes):
        idx = np.flatnonzero(cand_classes == class_id)
        for i in nms(boxes[idx], cand_scores[idx], iou_threshold):
            kept.append((boxes[idx[i]], float(cand_scores[idx[i]]), int(class_id)))
    kept.sort(key=lambda item: -item[1])
    return kept


class YoloDetector:
    """One ONNX Runtime session per model, loaded once; ``detect`` is safe to call repeatedly."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        from imagelift.vision.sessions import open_session, session_options

        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"YOLO model not found at {model_path} (run `imagelift models build`)")
        # From the prepared copy when the models directory has one for this host (imagelift.vision.sessions).
        self.session = open_session(model_path, session_options(threads))
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.anchors: list[list[float]] = json.loads(meta["anchors"])
            self.masks: list[list[int]] = json.loads(meta["masks"])
            self.names: list[str] = json.loads(meta["names"])
            self.output_names: list[str] = json.loads(meta["outputs"])
            self.scale_x_y: list[float] = json.loads(meta.get("scale_x_y", "null")) or [1.0] * len(self.masks)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{model_path} has no YOLO metadata ({exc}); build it with `imagelift models build`"
            ) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.model_path = model_path

    def heads(self, blob: np.ndarray) -> list[np.ndarray]:
        """Raw head tensors for an input blob ``[N, 3, H, W]``."""
        return self.session.run(self.output_names, {self.input_name: blob})

    def detect(
        self,
        image_bgr: np.ndarray,
        input_size: int = 416,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        class_ids: set[int] | None = None,
    ) -> list[Detection]:
        """Objects in ``image_bgr`` (uint8 BGR, or grey / BGRA) with boxes in its own pixel coordinates, best first."""
        image = _as_bgr(image_bgr)
        boxed = letterbox(image, input_size)
        rows = decode_heads(
            self.heads(to_blob(boxed.image)), (input_size, input_size), self.anchors, self.masks, self.scale_x_y
        )
        kept = select(rows, conf_threshold, iou_threshold, class_ids)
        if not kept:
            return []
        height, width = image.shape[:2]
        boxes = boxed.to_original(np.stack([box for box, _, _ in kept]), width, height)
        return [
            Detection(tuple(float(v) for v in box), score, class_id, self._name(class_id))
            for box, (_, score, class_id) in zip(boxes, kept, strict=True)
        ]

    def _name(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else str(class_id)
