"""The second look for small faces (MTCNN on upscaled head crops of person boxes), on real photos and real models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imagelift.config import VisionConfig
from imagelift.records.categories import MODEL, WORN
from imagelift.vision.cascade import Cascade

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SMALL_FACE = DATA / "pool" / "cat1_model" / "cat1_model_model_green_studio_man_small_face_sneakers.jpg"
FEET = DATA / "images" / "cat2_legs" / "cat2_legs_feet_orange_sneakers.jpg"


@pytest.fixture(scope="module")
def cascades(models_dir: Path) -> tuple[Cascade, Cascade]:
    """The shipped face passes without the pose stage (which would make the small-face photo a model shot by its
    head alone: tests/integration/test_pose_stage.py), and the same with the second look on."""
    shipped = VisionConfig.from_env({}, models_dir=models_dir, threads=1, pose_face=False)
    return Cascade.load(shipped), Cascade.load(dataclasses.replace(shipped, face_second_look=True))


def _photo(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"labelled photo not found at {path} (../shared/data beside the repo)")
    return path


def test_shipped_cascade_takes_no_second_look(cascades) -> None:
    """Off by default (bench/results/second_look_tuning.json): without a face the person stage decides."""
    shipped, _ = cascades
    assert shipped.config.face_second_look is False
    result = shipped.classify_path(_photo(SMALL_FACE))
    assert result.category == WORN.id and result.face_pass is None
    assert "second_look" not in result.timings_ms
    assert result.to_record()["thresholds"]["face_second_look"] is False


def test_second_look_finds_the_small_face_the_first_pass_misses(cascades) -> None:
    shipped, with_second_look = cascades
    first = shipped.classify_path(_photo(SMALL_FACE))
    assert first.category == WORN.id and first.face_pass is None
    second = with_second_look.classify_path(SMALL_FACE)
    assert second.category == MODEL.id
    assert second.face_pass == "second_look" and second.decided_by == "mtcnn"
    assert second.faces and "second_look" in second.timings_ms
    record = second.to_record()
    assert record["face_pass"] == "second_look" and record["thresholds"]["face_second_look"] is True
    # the person that led to the crop stays on the record
    assert record["person_net"] is not None


def test_second_look_leaves_feet_without_a_face_worn(cascades) -> None:
    _, with_second_look = cascades
    result = with_second_look.classify_path(_photo(FEET))
    assert "second_look" in result.timings_ms, "the person stage found someone, so the second look ran"
    assert result.category == WORN.id and result.face_pass is None


def test_first_pass_faces_say_so(cascades, labelled_photos) -> None:
    shipped, _ = cascades
    results = [shipped.classify_path(path) for path, label in labelled_photos if label == MODEL.id]
    found = [r for r in results if r.category == MODEL.id]
    assert found
    assert all(r.face_pass == "first" and r.to_record()["face_pass"] == "first" for r in found)
    assert all(r.face_pass is None for r in results if r.category != MODEL.id)
