"""The pose stage's pieces without models: the crop around a person box, the head score, the vote and its
defaults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagelift.config import VisionConfig
from imagelift.vision.body import HEAD_SCORES, crop_origin, facing_away, head_score, person_crop
from imagelift.vision.person import Person
from imagelift.vision.pose_face import PoseFaceStage, PoseFaceVote

ROOT = Path(__file__).resolve().parents[2]


def _keypoints(head_yx: tuple[float, float], scores: tuple[float, ...]) -> np.ndarray:
    """17 keypoints: nose, eyes and ears at ``head_yx`` (fractions of the crop) with ``scores``, the body at 0.9."""
    points = np.full((17, 3), 0.5, np.float32)
    points[:, 2] = 0.9
    points[:5, 0], points[:5, 1] = head_yx
    points[: len(scores), 2] = scores
    return points


def test_crop_is_a_square_around_the_box_with_grey_beyond_the_photo() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :, 0] = 200
    box = (10.0, 0.0, 20.0, 50.0)  # tall box at the top-left corner
    x0, y0, side = crop_origin(box, 0.1)
    assert side == 60 and (x0, y0) == (-10, -5)
    crop = person_crop(image, box, 0.1)
    assert crop.shape == (60, 60, 3)
    assert (crop[:5] == 114).all()  # above the photo
    assert (crop[:, :10] == 114).all()  # left of the photo
    assert (crop[5:, 10:, 0] == 200).all()


def test_head_score_reads_its_keypoints_and_is_zero_when_the_head_is_outside_the_photo() -> None:
    points = _keypoints((0.2, 0.5), (0.6, 0.3, 0.9, 0.1, 0.1))
    inside = (0.0, 0.0, 1.0, 1.0)
    assert head_score(points, inside, "face") == pytest.approx(0.6)
    assert head_score(points, inside, "face_min") == pytest.approx(0.3)
    assert head_score(points, inside, "head") == pytest.approx(0.4)
    # the crop starts 30% of the photo above its top edge: a head at 20% of the crop lies above the photo
    assert head_score(points, (0.0, -0.3, 1.0, 1.0), "face") == 0.0
    assert set(HEAD_SCORES) == {"face", "face_min", "head"}


def test_away_penalty_lowers_a_head_whose_eyes_sit_as_on_a_person_turned_away() -> None:
    facing = _keypoints((0.2, 0.5), (0.6, 0.6, 0.6))
    facing[1, 1], facing[2, 1] = 0.55, 0.45  # the person's left eye on the picture's right: facing the camera
    away = facing.copy()
    away[1, 1], away[2, 1] = 0.45, 0.55
    inside = (0.0, 0.0, 1.0, 1.0)
    assert not facing_away(facing) and facing_away(away)
    assert head_score(facing, inside, "face", away_penalty=0.15) == pytest.approx(0.6)
    assert head_score(away, inside, "face", away_penalty=0.15) == pytest.approx(0.45)
    assert head_score(away, inside, "face") == pytest.approx(0.6)
    assert head_score(away, inside, "face", away_penalty=1.0) == 0.0  # never below 0
    # a head outside the photo stays 0 whichever way it faces
    assert head_score(away, (0.0, -0.3, 1.0, 1.0), "face", away_penalty=0.15) == 0.0


class ScriptedPose:
    """MoveNet stand-in: the head score of each call comes from a script, the head placed mid-crop."""

    size = 192

    def __init__(self, scores: list[float]) -> None:
        self.scores = list(scores)
        self.inputs: list[tuple[int, ...]] = []

    def resize(self, square: np.ndarray) -> np.ndarray:
        self.inputs.append(square.shape)
        return square

    def keypoints_of(self, prepared: np.ndarray) -> np.ndarray:
        score = self.scores.pop(0)
        return _keypoints((0.5, 0.5), (score, score, score))


def _person(confidence: float, x: float = 20.0) -> Person:
    return Person((x, 10.0, 30.0, 60.0), confidence, "full", "yolov4-tiny")


def test_vote_looks_at_the_most_confident_boxes_and_keeps_the_best_head() -> None:
    pose = ScriptedPose([0.2, 0.55])
    stage = PoseFaceStage(pose, min_score=0.47, max_boxes=2)  # type: ignore[arg-type]
    persons = [_person(0.3, x=100.0), _person(0.9), _person(0.6, x=60.0)]
    vote = stage.vote(np.zeros((120, 200, 3), np.uint8), persons)
    assert len(pose.inputs) == 2 and vote.boxes == 2
    assert vote.score == pytest.approx(0.55) and vote.fired
    assert vote.box == (60.0, 10.0, 30.0, 60.0)  # the 0.6 person, second looked at, has the best head
    record = vote.scaled(2.0).to_record()
    assert record == {"score": 0.55, "threshold": 0.47, "fired": True, "box": [120.0, 20.0, 60.0, 120.0], "boxes": 2}


def test_vote_below_the_threshold_or_without_persons_does_not_fire() -> None:
    stage = PoseFaceStage(ScriptedPose([0.46]), min_score=0.47)  # type: ignore[arg-type]
    assert not stage.vote(np.zeros((120, 200, 3), np.uint8), [_person(0.9)]).fired
    empty = stage.vote(np.zeros((120, 200, 3), np.uint8), [])
    assert not empty.fired and empty.box is None and empty.to_record()["box"] is None
    assert not PoseFaceVote(0.9, 0.47, None, 0).fired


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"min_score": 1.2}, "min_score"),
        ({"score": "ears"}, "score"),
        ({"max_boxes": 0}, "max_boxes"),
        ({"away_penalty": -0.1}, "away_penalty"),
    ],
)
def test_bad_settings_are_refused(values, match) -> None:
    with pytest.raises(ValueError, match=match):
        PoseFaceStage(ScriptedPose([]), **{"min_score": 0.47, **values})  # type: ignore[arg-type]


def test_defaults_are_what_nested_cv_chose_on_all_photos() -> None:
    result = json.loads((ROOT / "bench" / "results" / "pose_face.json").read_text(encoding="utf-8"))
    chosen = result["modes"]["budget"]["in_sample"]
    assert (chosen["score"], chosen["away_penalty"], chosen["threshold"]) == (
        VisionConfig.pose_face_score,
        VisionConfig.pose_face_away_penalty,
        VisionConfig.pose_face_min_score,
    )
    assert VisionConfig.pose_face is True
    assert result["modes"]["budget"]["review_margin"] == VisionConfig.pose_face_review_margin
    cv = result["modes"]["budget"]["cv"]
    # what the config's docstring and the README quote
    assert (
        round(100 * cv["photos"]["test"]["model"], 1) == 92.9 and round(100 * cv["sources"]["test"]["model"], 1) == 83.9
    )


def test_stage_settings_come_from_the_environment() -> None:
    config = VisionConfig.from_env({"IMAGELIFT_POSE_FACE": "0", "IMAGELIFT_POSE_FACE_MIN_SCORE": "0.5"})
    assert config.pose_face is False and config.pose_face_min_score == 0.5
