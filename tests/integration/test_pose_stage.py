"""The pose stage in the cascade (VisionConfig.pose_face) on real photos: a full-body model whose face is too
small for MTCNN becomes a model shot, a legs close-up stays worn, and the record says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagelift.config import VisionConfig
from imagelift.vision.cascade import Cascade

SMALL_FACE_MODEL = "cat1_model/cat1_model_model_green_studio_man_small_face_sneakers.jpg"  # in ../shared/data/pool
STUDIO_PRODUCT = "cat3_product/cat3_product_vans_blue_white_bg.jpg"
LEGS_CLOSE_UP = "cat2_legs/cat2_legs_jeans_leg_tan_boot.jpg"  # in ../shared/data/images, the person cut at the top


@pytest.fixture(scope="module")
def pool_dir(photos_dir: Path) -> Path:
    pool = photos_dir.parent / "pool"
    if not (pool / SMALL_FACE_MODEL).is_file():
        pytest.skip(f"{pool / SMALL_FACE_MODEL} not found")
    return pool


@pytest.fixture(scope="module")
def with_stage(models_dir: Path) -> Cascade:
    if not (models_dir / VisionConfig.pose_model).is_file():
        pytest.skip(f"{models_dir / VisionConfig.pose_model} not built: run `imagelift models build`")
    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1, pose_face=True))


@pytest.fixture(scope="module")
def without_stage(models_dir: Path) -> Cascade:
    return Cascade.load(VisionConfig.from_env({}, models_dir=models_dir, threads=1, pose_face=False))


def test_full_body_model_with_a_face_too_small_for_mtcnn_becomes_a_model_shot(with_stage, without_stage, pool_dir):
    before = without_stage.classify_path(pool_dir / SMALL_FACE_MODEL)
    assert (before.category, before.decided_by, before.faces) == (2, "yolo", [])
    assert "pose_face" not in before.to_record() and "movenet-lightning" not in before.models

    record = json.loads(json.dumps(with_stage.classify_path(pool_dir / SMALL_FACE_MODEL).to_record()))
    assert (record["category"], record["category_name"], record["decided_by"]) == (1, "model", "movenet")
    vote = record["pose_face"]
    assert vote["fired"] is True and vote["score"] >= with_stage.config.pose_face_min_score == vote["threshold"]
    assert 1 <= vote["boxes"] <= with_stage.config.pose_face_max_boxes
    x, y, w, h = vote["box"]
    assert vote["box"] in [p["box"] for p in record["persons"]], "the box scored is one of the person boxes"
    assert x >= -1 and y >= -1 and x + w <= record["width"] + 1 and y + h <= record["height"] + 1
    assert record["faces"] == [] and "pose_face" in record["timings_ms"]
    assert record["models"]["movenet-lightning"] and record["thresholds"]["pose_face"] is True


def test_legs_close_up_cut_at_the_top_stays_worn(with_stage, photos_dir):
    result = with_stage.classify_path(photos_dir / LEGS_CLOSE_UP)
    assert (result.category, result.decided_by) == (2, "yolo")
    assert result.pose_face is not None and not result.pose_face.fired
    assert result.pose_face.score < with_stage.config.pose_face_min_score - with_stage.config.pose_face_review_margin


def test_photo_without_a_person_never_reaches_the_stage(with_stage, photos_dir):
    result = with_stage.classify_path(photos_dir / STUDIO_PRODUCT)
    assert (result.category, result.persons) == (3, [])
    assert result.pose_face is None and "pose_face" not in result.timings_ms
    assert "pose_face" not in result.to_record()
