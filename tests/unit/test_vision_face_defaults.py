"""The face-stage defaults in config.py are the values bench/face_tuning.py chose by nested cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagelift.config import VisionConfig

TUNING = Path(__file__).resolve().parents[2] / "bench" / "results" / "face_tuning.json"


def test_shipped_face_defaults_are_the_cross_validated_choice() -> None:
    if not TUNING.is_file():
        pytest.skip(f"{TUNING} not written yet: run bench/face_tuning.py")
    chosen = json.loads(TUNING.read_text())["chosen_on_all_photos"]
    defaults = VisionConfig.from_env({})
    assert defaults.face_max_side == chosen["face_max_side"]
    assert defaults.face_min_size == chosen["face_min_size"]
    assert defaults.face_scale_factor == pytest.approx(chosen["face_scale_factor"])
    assert defaults.face_min_confidence == pytest.approx(chosen["face_min_confidence"])
    # The cascade applies no box rule: the tuning must not have chosen one.
    assert (chosen["min_face_side_px"], chosen["landmark_rule"], chosen["min_box_aspect"]) == (0, "none", 0.0)
    # The O-Net threshold changes no decision only while it is at most the acceptance score.
    assert defaults.face_onet_threshold <= defaults.face_min_confidence
    review = json.loads(TUNING.read_text())["face_review"]
    assert defaults.face_review_margin == pytest.approx(review["margin_on_all_photos"])
