"""People (COCO class 0) with one or more YOLO nets, including people who fill the frame.

yolov3-tiny was trained on COCO, where people are mostly whole and smaller than the frame; on a close-up of
legs and feet (the "worn" look) it often finds nothing at 416 x 416. Shrinking the same photo into a grey canvas
restores the context it was trained on (DESIGN.md: 0.94 to 0.99 on portraits it missed). So, per pass:

1. ``full``: the whole photo, letterboxed to ``input_size``;
2. ``padded`` (only when pass 1 found no person): the photo shrunk to ``padded_scale`` of a ``padded_input_size``
   canvas, centred on YOLO's own letterbox grey; boxes are mapped back to photo pixels.

Each pass runs every net (e.g. yolov3-tiny and yolov4-tiny) and takes each net's best person score; ``combine``
(``max``, ``mean`` or ``min`` over the nets) gives the pass's score, which must reach that pass's threshold. With
``min``, a net that scores too far under the threshold for the pass to find a person or to ask for review settles
it, and the nets after it do not run (``settle_margin``): most product shots pay for one net. The
boxes reported are those of the net that scored highest. Every score is kept (:class:`PersonSearch`), so a photo
called a product still says how near it came. bench/tune_vision.py chooses rule, passes and thresholds by
cross-validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

PERSON_CLASS_ID = 0
LETTERBOX_GREY = 114  # darknet / ultralytics letterbox value (0.447 after /255)
PASSES = ("full", "padded")
NEAR_MISS_FLOOR = 0.01
"""Scores below this are not worth reporting as near misses (and detections below it are not decoded)."""

COMBINE_RULES: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "mean": lambda scores: sum(scores) / len(scores),
    "min": min,
}


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
    net: str = ""
    """Which net's box this is (the one that scored highest in the deciding pass)."""

    def scaled(self, factor: float) -> Person:
        return Person(tuple(v * factor for v in self.box), self.confidence, self.source, self.net)  # type: ignore[arg-type]

    def to_record(self) -> dict:
        record = {
            "box": [round(float(v), 1) for v in self.box],
            "confidence": round(float(self.confidence), 4),
            "pass": self.source,
        }
        if self.net:
            record["net"] = self.net
        return record


@dataclass(frozen=True)
class PersonSearch:
    """What the person stage found, and how near it came when it found nothing."""

    persons: list[Person]
    net: str | None = None
    """The net whose boxes are reported (highest score in the deciding pass); None when no person."""
    pass_name: str | None = None
    """``full`` or ``padded``: the pass whose combined score reached its threshold; None when no person."""
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Best person score of each net in each pass that ran: ``{net: {pass: score}}`` (0 when none above the floor)."""
    combined: dict[str, float] = field(default_factory=dict)
    """Each pass's score after ``combine``: what was compared with the pass's threshold."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """The threshold of each pass that ran."""

    @property
    def found(self) -> bool:
        return bool(self.persons)

    def nearest_margin(self) -> float | None:
        """Smallest |combined score - threshold| over the passes that ran (how close the decision was)."""
        gaps = [abs(self.combined[name] - self.thresholds[name]) for name in self.combined if name in self.thresholds]
        return min(gaps) if gaps else None

    def scaled(self, factor: float) -> PersonSearch:
        return PersonSearch(
            [p.scaled(factor) for p in self.persons],
            self.net,
            self.pass_name,
            self.scores,
            self.combined,
            self.thresholds,
        )

    def scores_record(self) -> dict[str, dict[str, float]]:
        return {net: {name: round(float(v), 4) for name, v in passes.items()} for net, passes in self.scores.items()}


class PersonFinder:
    def __init__(
        self,
        detector: Detector | Mapping[str, Detector],
        *,
        min_confidence: float = 0.5,
        padded_min_confidence: float | None = None,
        combine: str = "max",
        input_size: int = 416,
        padded_pass: bool = True,
        padded_input_size: int = 416,
        padded_scale: float = 0.5,
        iou_threshold: float = 0.45,
        settle_margin: float | None = None,
    ) -> None:
        if not 0.05 <= padded_scale <= 1.0:
            raise ValueError(f"padded_scale must be in [0.05, 1], got {padded_scale}")
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_RULES)}, got {combine!r}")
        self.nets: dict[str, Detector] = dict(detector) if isinstance(detector, Mapping) else {"yolo": detector}
        if not self.nets:
            raise ValueError("PersonFinder needs at least one detector")
        self.min_confidence = min_confidence
        self.padded_min_confidence = min_confidence if padded_min_confidence is None else padded_min_confidence
        self.combine = combine
        self.input_size = input_size
        self.padded_pass = padded_pass
        self.padded_input_size = padded_input_size
        self.padded_scale = padded_scale
        self.iou_threshold = iou_threshold
        self.settle_margin = settle_margin
        """With ``min``: a net scoring below the pass's threshold by more than this settles the pass, and the nets
        after it are not run. The minimum can then reach neither the threshold nor (with the review margin here)
        the band that asks for review, so the decision and the review flag are those of running every net; only
        the skipped nets' near misses are missing from ``scores``. None runs every net."""

    @property
    def detector(self) -> Detector:
        """The first (primary) net."""
        return next(iter(self.nets.values()))

    @property
    def primary(self) -> str:
        """The name of the first (primary) net."""
        return next(iter(self.nets))

    def first_look(self, image_bgr: np.ndarray) -> list[Person]:
        """The primary net's persons on the whole photo, as :meth:`search`'s first pass finds them (same input size
        and floor); hand them to ``search`` and the net does not run twice. Empty without a whole-photo pass."""
        if not self.input_size:
            return []
        floor = min(self.min_confidence, NEAR_MISS_FLOOR)
        return self._detect(self.detector, image_bgr, self.input_size, floor, self.primary)

    def search(self, image_bgr: np.ndarray, first_look: list[Person] | None = None) -> PersonSearch:
        """Run the passes in order until one finds a person; every pass that ran leaves its scores.

        ``first_look``: what :meth:`first_look` returned for this image, used instead of running the primary net
        again in the whole-photo pass."""
        scores: dict[str, dict[str, float]] = {net: {} for net in self.nets}
        combined: dict[str, float] = {}
        thresholds: dict[str, float] = {}
        for name in self._passes():
            threshold = self.min_confidence if name == "full" else self.padded_min_confidence
            settle_below = (
                threshold - self.settle_margin if self.combine == "min" and self.settle_margin is not None else None
            )
            known = {self.primary: first_look} if name == "full" and first_look is not None else {}
            per_net = self._run_pass(name, image_bgr, min(threshold, NEAR_MISS_FLOOR), settle_below, known)
            best = {net: max((p.confidence for p in persons), default=0.0) for net, persons in per_net.items()}
            for net, value in best.items():
                scores[net][name] = value
            combined[name] = COMBINE_RULES[self.combine](list(best.values()))
            thresholds[name] = threshold
            if combined[name] >= threshold:
                top = max(best, key=lambda net: best[net])
                # Every rule keeps the top net's own best at or above the combined score, so it has a box to report.
                persons = [p for p in per_net[top] if p.confidence >= threshold]
                return PersonSearch(persons, top, name, scores, combined, thresholds)
        return PersonSearch([], None, None, scores, combined, thresholds)

    def find(self, image_bgr: np.ndarray) -> list[Person]:
        return self.search(image_bgr).persons

    def _passes(self) -> list[str]:
        return [name for name, on in (("full", bool(self.input_size)), ("padded", self.padded_pass)) if on]

    def _run_pass(
        self,
        name: str,
        image_bgr: np.ndarray,
        floor: float,
        settle_below: float | None = None,
        known: Mapping[str, list[Person]] | None = None,
    ) -> dict[str, list[Person]]:
        """Each net's persons in one pass (``known``: nets already run on this pass's input); with
        ``settle_below``, the nets after one whose best is under it are skipped."""
        if name == "full":
            image, size, to_photo = image_bgr, self.input_size, None
        else:
            image, scale, (offset_x, offset_y) = padded_canvas(image_bgr, self.padded_input_size, self.padded_scale)
            size = self.padded_input_size

            def to_photo(p: Person) -> Person:
                x, y, w, h = p.box
                box = ((x - offset_x) / scale, (y - offset_y) / scale, w / scale, h / scale)
                return Person(box, p.confidence, "padded", p.net)

        found: dict[str, list[Person]] = {}
        for net, detector in self.nets.items():
            persons = known[net] if known and net in known else self._detect(detector, image, size, floor, net)
            found[net] = [to_photo(p) for p in persons] if to_photo else persons
            if settle_below is not None and max((p.confidence for p in persons), default=0.0) < settle_below:
                break
        return found

    def _detect(self, detector: Detector, image: np.ndarray, size: int, floor: float, net: str) -> list[Person]:
        detections = detector.detect(
            image, input_size=size, conf_threshold=floor, iou_threshold=self.iou_threshold, class_ids={PERSON_CLASS_ID}
        )
        return [Person(tuple(map(float, d.box)), float(d.confidence), "full", net) for d in detections]  # type: ignore[arg-type]


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
