"""The hand stage's pieces without models: the person near miss it reads, the padded input, its thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagelift.config import VisionConfig
from imagelift.vision.hand_stage import HandStage, best_person_score, pad_to_square

ROOT = Path(__file__).resolve().parents[2]


def test_best_person_score_is_the_highest_of_any_net_in_any_pass() -> None:
    assert best_person_score({"yolov3-tiny": {"full": 0.12, "padded": 0.2}, "yolov4-tiny": {"full": 0.31}}) == 0.31
    assert best_person_score({"yolov3-tiny": {"full": 0.05}, "yolov4-tiny": {}}) == 0.05  # a net that settled early
    assert best_person_score(None) == 0.0 and best_person_score({}) == 0.0


def test_pad_to_square_centres_the_photo_on_grey() -> None:
    image = np.zeros((40, 100, 3), np.uint8)
    canvas, offset = pad_to_square(image)
    assert canvas.shape == (100, 100, 3)
    assert offset == (0, 30)
    assert (canvas[30:70] == 0).all()
    assert (canvas[:30] == 114).all() and (canvas[70:] == 114).all()


@pytest.mark.parametrize("name", ["min_confidence", "person_min_confidence"])
def test_thresholds_outside_0_1_are_refused(name) -> None:
    values = {"min_confidence": 0.4, "person_min_confidence": 0.1, name: 1.5}
    with pytest.raises(ValueError, match=name):
        HandStage(object(), **values)  # type: ignore[arg-type]


def test_defaults_are_what_nested_cv_chose_on_all_photos() -> None:
    chosen = json.loads((ROOT / "bench" / "results" / "hands_fusion.json").read_text(encoding="utf-8"))
    rule = chosen["modes"]["capped_any"]["in_sample"]
    assert rule["candidate"] == {
        "family": "hand_and_person",
        "hand_input": "min",
        "classes": "all",
        "min_area": 0.0,
        "person": "max",
    }
    assert tuple(rule["thresholds"]) == (VisionConfig.hand_min_confidence, VisionConfig.hand_person_min_confidence)
    assert VisionConfig.hand_stage is True


def test_stage_settings_come_from_the_environment() -> None:
    config = VisionConfig.from_env({"IMAGELIFT_HAND_STAGE": "false", "IMAGELIFT_HAND_MIN_CONFIDENCE": "0.5"})
    assert config.hand_stage is False and config.hand_min_confidence == 0.5


class ScriptedDetector:
    """Gives each input the next hand score of a script (a square input is the padded one) and records the calls."""

    def __init__(self, stretched: float, padded: float) -> None:
        self.scores = {"stretched": stretched, "padded": padded}
        self.calls: list[str] = []

    def raw(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kind = "padded" if image_rgb.shape[0] == image_rgb.shape[1] else "stretched"
        self.calls.append(kind)
        scores = np.zeros((3, 7), np.float32)
        scores[1, 1] = self.scores[kind]  # a fist on the second anchor
        boxes = np.array([[0, 0, 0.1, 0.1], [0.2, 0.3, 0.6, 0.7], [0.5, 0.5, 0.6, 0.6]], np.float32)
        return scores, boxes

    def hands_from(self, scores, boxes, *, width, height, min_score, limit):
        return [("hand", float(scores.max()), width, height)]


@pytest.mark.parametrize(
    ("person", "stretched", "padded", "calls", "fired"),
    [
        (0.05, 0.9, 0.9, [], False),  # the person vote fails: HandTrack never runs
        (0.2, 0.3, 0.9, ["stretched"], False),  # the stretched input fails: no padded run
        (0.2, 0.9, 0.3, ["stretched", "padded"], False),
        (0.2, 0.9, 0.8, ["stretched", "padded"], True),
    ],
)
def test_votes_run_cheapest_first_and_all_must_pass(person, stretched, padded, calls, fired) -> None:
    detector = ScriptedDetector(stretched, padded)
    stage = HandStage(detector, min_confidence=0.43, person_min_confidence=0.11)  # type: ignore[arg-type]
    vote = stage.vote(np.zeros((40, 60, 3), np.uint8), {"yolov3-tiny": {"full": person}, "yolov4-tiny": {}})
    assert detector.calls == calls
    assert vote.fired is fired and vote.person == person
    record = vote.to_record()
    assert record["stretched"] == (round(stretched, 4) if calls else None)
    assert record["padded"] == (round(padded, 4) if len(calls) == 2 else None)
    assert vote.hands == ([("hand", pytest.approx(stretched), 60, 40)] if fired else [])
