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
    rule = chosen["modes"]["capped"]["in_sample"]
    assert rule["candidate"] == {
        "family": "hand_and_person",
        "hand_input": "min",
        "classes": "all",
        "min_area": 0.0,
        "person": "max",
    }
    assert tuple(rule["thresholds"]) == (VisionConfig.hand_min_confidence, VisionConfig.hand_person_min_confidence)
    assert VisionConfig.hand_stage is False


def test_stage_settings_come_from_the_environment() -> None:
    config = VisionConfig.from_env({"IMAGELIFT_HAND_STAGE": "true", "IMAGELIFT_HAND_MIN_CONFIDENCE": "0.5"})
    assert config.hand_stage is True and config.hand_min_confidence == 0.5
