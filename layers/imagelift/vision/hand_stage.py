"""The hand stage: a worn look (category 2) from a hand HandTrack sees and a weak person vote of the YOLO nets.

It runs only where the cascade found no face and no person. The photo is given to HandTrack twice, stretched to
the net's input (as ``HandDetector`` does) and padded to a square with grey first; the hand score of each input is
the best score of the four hand classes over all anchors. The stage fires when both inputs' hand scores reach
``hand_min_confidence`` AND the best person score any net gave in any pass (the person stage's near miss) reaches
``hand_person_min_confidence``. The rule and both thresholds were chosen by nested cross-validation over photos and
over sources (bench/hands_fusion.py, bench/results/hands_fusion.md). The person vote is checked first because it is
free (the person stage already computed it): HandTrack runs only on photos it could still make worn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagelift.vision.hands import HAND_CLASSES, Hand, HandDetector
from imagelift.vision.person import LETTERBOX_GREY


@dataclass(frozen=True)
class HandVote:
    stretched: float | None
    """Best hand score with the photo stretched to the net's input; None when the person vote already failed."""
    padded: float | None
    """Best hand score with the photo padded to a square first; None when an earlier vote already failed."""
    person: float
    """Best person score of any net in any pass (below the person threshold, or the stage would not run)."""
    fired: bool
    hands: list[Hand]
    """Hand boxes of the stretched input (pixels of the image given), best first; empty unless the stage fired."""

    def to_record(self) -> dict:
        return {
            "stretched": None if self.stretched is None else round(float(self.stretched), 4),
            "padded": None if self.padded is None else round(float(self.padded), 4),
            "person": round(float(self.person), 4),
            "fired": self.fired,
        }


def pad_to_square(image_rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo centred on a square canvas of YOLO's letterbox grey, at its own scale; (canvas, (x, y) offset)."""
    h, w = image_rgb.shape[:2]
    side = max(h, w)
    canvas = np.full((side, side, 3), LETTERBOX_GREY, np.uint8)
    y, x = (side - h) // 2, (side - w) // 2
    canvas[y : y + h, x : x + w] = image_rgb
    return canvas, (x, y)


def best_person_score(person_scores: dict[str, dict[str, float]] | None) -> float:
    """The highest score in a person search's ``scores_record()`` (net -> pass -> best score); 0 when empty."""
    return max((float(v) for passes in (person_scores or {}).values() for v in passes.values()), default=0.0)


class HandStage:
    def __init__(self, detector: HandDetector, *, min_confidence: float, person_min_confidence: float) -> None:
        for name, value in (("min_confidence", min_confidence), ("person_min_confidence", person_min_confidence)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"hand stage {name} must be within 0..1, got {value}")
        self.detector = detector
        self.min_confidence = min_confidence
        self.person_min_confidence = person_min_confidence

    def _best(self, image_rgb: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        scores, boxes = self.detector.raw(image_rgb)
        return float(scores[:, list(HAND_CLASSES)].max()), scores, boxes

    def vote(self, image_rgb: np.ndarray, person_scores: dict[str, dict[str, float]] | None) -> HandVote:
        """The stage's vote on an RGB uint8 photo, given the person search's ``scores_record()``."""
        person = best_person_score(person_scores)
        if person < self.person_min_confidence:
            return HandVote(None, None, person, False, [])
        stretched, scores, boxes = self._best(image_rgb)
        if stretched < self.min_confidence:
            return HandVote(stretched, None, person, False, [])
        padded, _, _ = self._best(pad_to_square(image_rgb)[0])
        if padded < self.min_confidence:
            return HandVote(stretched, padded, person, False, [])
        h, w = image_rgb.shape[:2]
        hands = self.detector.hands_from(scores, boxes, width=w, height=h, min_score=self.min_confidence, limit=5)
        return HandVote(stretched, padded, person, True, hands)
