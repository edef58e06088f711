"""The person-stage defaults in config.py are the values bench/tune_vision.py chose by cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagelift.config import VisionConfig

TUNING = Path(__file__).resolve().parents[2] / "bench" / "results" / "vision_tuning.json"


def test_shipped_person_defaults_are_the_cross_validated_choice() -> None:
    if not TUNING.is_file():
        pytest.skip(f"{TUNING} not written yet: run bench/tune_vision.py")
    chosen = json.loads(TUNING.read_text())["chosen"]
    defaults = VisionConfig.from_env({})
    for name, value in chosen.items():
        if name == "strategy":
            continue
        if name == "padded_input_size" and not chosen["padded_pass"]:
            continue
        expected = pytest.approx(value) if isinstance(value, float) else value
        assert getattr(defaults, name) == expected, name
