"""The second look ships as bench/second_look_tuning.py decided by nested cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagelift.config import VisionConfig

TUNING = Path(__file__).resolve().parents[2] / "bench" / "results" / "second_look_tuning.json"


def _tuning() -> dict:
    if not TUNING.is_file():
        pytest.skip(f"{TUNING} not written yet: run bench/second_look_tuning.py")
    return json.loads(TUNING.read_text())


def test_second_look_default_is_the_cross_validated_decision() -> None:
    look = _tuning()["second_look"]
    defaults = VisionConfig.from_env({})
    assert defaults.face_second_look is look["decision"]["switch_on"]
    if look["decision"]["switch_on"]:
        chosen = look["chosen_on_all_photos"]
        assert defaults.face_second_look_head_fraction == pytest.approx(chosen["head_fraction"])
        assert defaults.face_second_look_upscale == pytest.approx(chosen["upscale"])
        assert defaults.face_second_look_min_confidence == pytest.approx(chosen["min_score"])


def test_the_decision_follows_its_rule() -> None:
    """On only when both CV schemes find more model copies, keep product copies called model at or under 1% and
    call no more worn copies model than the cascade without it."""
    result = _tuning()
    base = result["shipped_without_second_look"]
    look = result["second_look"]
    helps = all(
        look[scheme]["figures"]["model_recall"]["k"] > base["model_recall"]["k"]
        and look[scheme]["figures"]["product_called_model"]["share"] <= 0.01
        and look[scheme]["figures"]["worn_called_model"]["k"] <= base["worn_called_model"]["k"]
        for scheme in ("cv_photos", "cv_sources")
    )
    assert look["decision"]["switch_on"] is (helps and look["chosen_on_all_photos"]["on"])


def test_face_stage_cap_and_smallest_face_follow_the_cross_validated_decision() -> None:
    pyramids = _tuning().get("face_stage_pyramids")
    if pyramids is None:
        pytest.skip("the tuning was run without the face-stage pyramids")
    kept = pyramids["chosen_on_all_photos"] if pyramids["decision"]["change_defaults"] else pyramids["shipped"]
    defaults = VisionConfig.from_env({})
    assert (defaults.face_max_side, defaults.face_min_size) == (kept["face_max_side"], kept["face_min_size"])
