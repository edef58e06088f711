"""The pose stage: a face too small for MTCNN, seen as a head by MoveNet on a person box.

It runs only where the person stage found a person and neither face pass found a face: a full-body player in a
sports photo, whose 10-25 px face MTCNN cannot see, would otherwise be called worn. MoveNet Lightning looks at a
square crop around each person box (best first, at most ``max_boxes``); the box's head score is the mean of the
nose and eye keypoint scores, 0 when one of them lies outside the photo (a legs close-up cut at the top edge gets
a head MoveNet imagines in the grey beyond it), lowered by ``away_penalty`` when the eyes sit as on a person turned
away from the camera (MoveNet reads that from the whole body; a back view otherwise scores like a face). The stage fires when a box's head score reaches
``min_score``: the photo is category 1. Score, penalty and threshold were chosen by nested cross-validation over photos and
over sources under a budget of worn photos called model (bench/pose_face.py, bench/results/pose_face.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagelift.vision.body import HEAD_SCORES, PoseEstimator, crop_origin, head_score, person_crop
from imagelift.vision.person import Person


@dataclass(frozen=True)
class PoseFaceVote:
    score: float
    """Best head score over the person boxes looked at (0 when none could be cut)."""
    threshold: float
    box: tuple[float, float, float, float] | None
    """The person box (x, y, w, h, pixels of the image given) of the best head score."""
    boxes: int
    """How many person boxes MoveNet looked at."""

    @property
    def fired(self) -> bool:
        return self.box is not None and self.score >= self.threshold

    def scaled(self, factor: float) -> PoseFaceVote:
        box = None if self.box is None else tuple(v * factor for v in self.box)
        return PoseFaceVote(self.score, self.threshold, box, self.boxes)  # type: ignore[arg-type]

    def to_record(self) -> dict:
        return {
            "score": round(float(self.score), 4),
            "threshold": self.threshold,
            "fired": self.fired,
            "box": None if self.box is None else [round(float(v), 1) for v in self.box],
            "boxes": self.boxes,
        }


class PoseFaceStage:
    def __init__(
        self,
        pose: PoseEstimator,
        *,
        min_score: float,
        score: str = "face",
        max_boxes: int = 3,
        crop_margin: float = 0.15,
        away_penalty: float = 0.0,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"pose stage min_score must be within 0..1, got {min_score}")
        if score not in HEAD_SCORES:
            raise ValueError(f"pose stage score must be one of {', '.join(HEAD_SCORES)}, got {score!r}")
        if max_boxes < 1:
            raise ValueError(f"pose stage max_boxes must be at least 1, got {max_boxes}")
        if not 0.0 <= away_penalty <= 1.0:
            raise ValueError(f"pose stage away_penalty must be within 0..1, got {away_penalty}")
        self.pose = pose
        self.min_score = min_score
        self.score = score
        self.max_boxes = max_boxes
        self.crop_margin = crop_margin
        self.away_penalty = away_penalty

    def head_score(self, image_rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        """The head score of one person box (pixels of ``image_rgb``)."""
        h, w = image_rgb.shape[:2]
        x0, y0, side = crop_origin(box, self.crop_margin)
        keypoints = self.pose.keypoints_of(self.pose.resize(person_crop(image_rgb, box, self.crop_margin)))
        return head_score(keypoints, (x0 / w, y0 / h, side / w, side / h), self.score, self.away_penalty)

    def vote(self, image_rgb: np.ndarray, persons: list[Person]) -> PoseFaceVote:
        """The stage's vote on an RGB uint8 photo, given the person boxes found in its pixels. Every box looked at
        is scored (the record carries the best even when it falls short)."""
        best, best_box = 0.0, None
        looked = sorted(persons, key=lambda p: -p.confidence)[: self.max_boxes]
        for person in looked:
            score = self.head_score(image_rgb, person.box)
            if best_box is None or score > best:
                best, best_box = score, person.box
        return PoseFaceVote(best, self.min_score, best_box, len(looked))
