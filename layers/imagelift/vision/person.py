"""People (COCO class 0) with YOLOv3, including people who fill the frame.

yolov3-tiny was trained on COCO, where people are mostly whole and smaller than the frame; on a close-up of
legs and feet (the "worn" look) it often finds nothing at 416 x 416. Shrinking the same photo into a grey canvas
restores the context it was trained on (DESIGN.md: 0.94 to 0.99 on portraits it missed). So:

1. the whole photo, letterboxed to ``yolo_input_size``;
2. only when pass 1 found no person: the photo shrunk to ``padded_scale`` of a ``padded_input_size`` canvas,
   centred on YOLO's own letterbox grey, and detected again; boxes are mapped back to photo pixels.

The benchmark (bench/vision_bench.py) measures what each pass buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

PERSON_CLASS_ID = 0
LETTERBOX_GREY = 114  # darknet / ultralytics letterbox value (0.447 after /255)


class Detector(Protocol):
    def detect(
        self,
        image_bgr: np.ndarray,
        input_size: int = 416,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        class_ids: set[int] | None = None,
    ) -> list: ...


@dataclass(frozen=True)
class Person:
    box: tuple[float, float, float, float]  # x, y, w, h in photo pixels
    confidence: float
    source: str  # "full" or "padded": which pass found it

    def scaled(self, factor: float) -> Person:
        return Person(tuple(v * factor for v in self.box), self.confidence, self.source)  # type: ignore[arg-type]

    def to_record(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "confidence": round(float(self.confidence), 4),
            "pass": self.source,
        }


class PersonFinder:
    def __init__(
        self,
        detector: Detector,
        *,
        min_confidence: float = 0.5,
        input_size: int = 416,
        padded_pass: bool = True,
        padded_input_size: int = 416,
        padded_scale: float = 0.5,
        iou_threshold: float = 0.45,
    ) -> None:
        if not 0.05 <= padded_scale <= 1.0:
            raise ValueError(f"padded_scale must be in [0.05, 1], got {padded_scale}")
        self.detector = detector
        self.min_confidence = min_confidence
        self.input_size = input_size
        self.padded_pass = padded_pass
        self.padded_input_size = padded_input_size
        self.padded_scale = padded_scale
        self.iou_threshold = iou_threshold

    def find(self, image_bgr: np.ndarray) -> list[Person]:
        persons = self.full_pass(image_bgr) if self.input_size else []
        if persons or not self.padded_pass:
            return persons
        return self.padded(image_bgr)

    def full_pass(self, image_bgr: np.ndarray) -> list[Person]:
        detections = self.detector.detect(
            image_bgr,
            input_size=self.input_size,
            conf_threshold=self.min_confidence,
            iou_threshold=self.iou_threshold,
            class_ids={PERSON_CLASS_ID},
        )
        return [Person(tuple(map(float, d.box)), float(d.confidence), "full") for d in detections]  # type: ignore[arg-type]

    def padded(self, image_bgr: np.ndarray) -> list[Person]:
        canvas, scale, (offset_x, offset_y) = padded_canvas(image_bgr, self.padded_input_size, self.padded_scale)
        detections = self.detector.detect(
            canvas,
            input_size=self.padded_input_size,
            conf_threshold=self.min_confidence,
            iou_threshold=self.iou_threshold,
            class_ids={PERSON_CLASS_ID},
        )
        persons = []
        for d in detections:
            x, y, w, h = d.box
            persons.append(
                Person(
                    ((x - offset_x) / scale, (y - offset_y) / scale, w / scale, h / scale),
                    float(d.confidence),
                    "padded",
                )
            )
        return persons


def padded_canvas(
    image_bgr: np.ndarray, canvas_size: int, fraction: float
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The photo shrunk so its long side is ``fraction`` of a square grey canvas, centred; (canvas, scale, offset)."""
    h, w = image_bgr.shape[:2]
    scale = fraction * canvas_size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
    canvas = np.full((canvas_size, canvas_size, 3), LETTERBOX_GREY, dtype=np.uint8)
    offset_x, offset_y = (canvas_size - new_w) // 2, (canvas_size - new_h) // 2
    canvas[offset_y : offset_y + new_h, offset_x : offset_x + new_w] = small
    return canvas, new_w / w, (offset_x, offset_y)
