"""The hand stage in the cascade (VisionConfig.hand_stage) on real photos: a hand photo the person stage misses
becomes worn, a studio product HandTrack alone would call a hand stays a product, and the record says why."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.nets import DEFAULT_MODEL_IDS

from imagelift.config import VisionConfig
from imagelift.vision.annotate import HAND_COLOUR, annotate, annotate_recorded
from imagelift.vision.cascade import Cascade
from imagelift.vision.hands import HAND_CLASSES

HAND_PHOTO = "cat2_legs/cat2_legs_hand_reaching_shoe_shelf.jpg"
# Boots on a plain background: HandTrack scores a fist there above the hand threshold, no YOLO net sees a person.
STUDIO_PRODUCT = "cat3_product/cat3_product_brown_boots_flatlay.jpg"


@pytest.fixture(scope="module")
def hand_models_dir(models_dir: Path) -> Path:
    if not (models_dir / VisionConfig.hand_model).is_file():
        pytest.skip(f"{models_dir / VisionConfig.hand_model} not built: run `imagelift models build`")
    return models_dir


@pytest.fixture(scope="module")
def with_stage(hand_models_dir: Path) -> Cascade:
    return Cascade.load(VisionConfig.from_env({}, models_dir=hand_models_dir, threads=1, hand_stage=True))


@pytest.fixture(scope="module")
def without_stage(models_dir: Path) -> Cascade:
    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1, hand_stage=False))


def test_hand_photo_missed_by_the_person_stage_becomes_worn(with_stage, without_stage, photos_dir) -> None:
    before = without_stage.classify_path(photos_dir / HAND_PHOTO)
    assert (before.category, before.decided_by) == (3, "none")
    assert "hand_vote" not in before.to_record()

    result = with_stage.classify_path(photos_dir / HAND_PHOTO)
    record = json.loads(json.dumps(result.to_record()))
    assert (record["category"], record["category_name"], record["decided_by"]) == (2, "worn", "handtrack")
    vote = record["hand_vote"]
    assert vote["fired"] is True
    assert vote["stretched"] >= with_stage.config.hand_min_confidence
    assert vote["padded"] >= with_stage.config.hand_min_confidence
    assert with_stage.config.hand_person_min_confidence <= vote["person"] < with_stage.config.person_min_confidence
    assert record["persons"] == [] and record["faces"] == []
    assert record["hands"], "the hand boxes that decided are recorded"
    for hand in record["hands"]:
        x, y, w, h = hand["box"]
        assert hand["label"] in ("hand", "fist", "pinch", "point")
        assert x >= 0 and y >= 0 and x + w <= record["width"] + 1 and y + h <= record["height"] + 1
    assert "hands" in record["timings_ms"]
    assert set(record["models"]) == DEFAULT_MODEL_IDS
    assert record["thresholds"]["hand_stage"] is True


def test_studio_product_that_handtrack_alone_calls_a_hand_stays_a_product(with_stage, photos_dir) -> None:
    result = with_stage.classify_path(photos_dir / STUDIO_PRODUCT)
    assert (result.category, result.decided_by) == (3, "none")
    vote = result.hand_vote
    assert vote is not None and vote["fired"] is False
    assert vote["person"] < with_stage.config.hand_person_min_confidence
    # The person vote failed first, so HandTrack did not run; on its own it would have fired.
    assert vote["stretched"] is None and vote["padded"] is None and "hands" in result.timings_ms
    image = cv2.cvtColor(cv2.imread(str(photos_dir / STUDIO_PRODUCT)), cv2.COLOR_BGR2RGB)
    scores, _ = with_stage.hands.detector.raw(image)
    assert scores[:, list(HAND_CLASSES)].max() >= with_stage.config.hand_min_confidence
    assert result.hands == []


def test_photos_with_a_face_or_a_person_never_run_the_hand_stage(with_stage, labelled_photos) -> None:
    for path, label in labelled_photos:
        if label == 3:
            continue
        result = with_stage.classify_path(path)
        if result.decided_by in ("mtcnn", "yolo"):
            assert result.hand_vote is None and "hands" not in result.timings_ms, path.name


def test_the_stage_is_on_by_default(models_dir) -> None:
    cascade = Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1))
    assert cascade.hands is not None and "handtrack" in cascade.models


def test_missing_hand_model_is_named_with_the_build_command(models_dir, tmp_path) -> None:
    for name in ("mtcnn", "yolo", "body"):
        (tmp_path / name).symlink_to(models_dir / name, target_is_directory=True)
    config = VisionConfig.from_env({}, models_dir=tmp_path, threads=1, hand_stage=True)
    with pytest.raises(FileNotFoundError, match=r"hands/handtrack\.onnx.*`imagelift models build`"):
        Cascade.load(config)
    Cascade.load(VisionConfig.from_env({}, models_dir=tmp_path, threads=1, hand_stage=False))  # off: no hand model


def _hand_coloured(image: np.ndarray) -> float:
    """Share of pixels drawn in the hand colour (the photo's own pixels seldom are that exact magenta)."""
    return float((np.abs(image.astype(int) - np.array(HAND_COLOUR)).max(axis=2) < 8).mean())


def test_hand_boxes_are_drawn_live_and_from_the_record(with_stage, photos_dir) -> None:
    photo = cv2.imread(str(photos_dir / HAND_PHOTO))
    result = with_stage.classify_path(photos_dir / HAND_PHOTO)
    assert result.decided_by == "handtrack"
    live = annotate(photo, result)
    record = result.to_record()
    small = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    stored = annotate_recorded(small, width=record["width"], height=record["height"], hands=record["hands"])
    assert _hand_coloured(photo) < 0.0005
    assert _hand_coloured(live) > 0.002 and _hand_coloured(stored) > 0.002
    x, y, _, h = (round(v / 2) for v in record["hands"][0]["box"])
    edge = stored[max(0, y) : y + h, max(0, x)]  # the box's left edge, at half size
    assert _hand_coloured(edge[:, None]) > 0.5
