"""imagelift.vision.body: MoveNet's single-pose decoding on made-up grids, and both converted nets on real photos.

The real-photo tests need ``imagelift models build --extra body``; they read ``models/`` or, when set,
IMAGELIFT_BODY_MODELS_DIR (a models folder built elsewhere), and are skipped when neither holds the body nets.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from imagelift.vision.body import ANKLES, HIPS, KNEES, PersonCenters, PoseEstimator, decode_single_pose

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT.parent / "shared" / "data" / "images"
FULL_BODY = "cat1_model/cat1_model_man_full_body_brown_shoes.jpg"
FEET_AT_FENCE = "cat2_legs/cat2_legs_feet_white_sneakers_fence.jpg"
STUDIO_PRODUCT = "cat3_product/cat3_product_vans_blue_white_bg.jpg"


def test_each_keypoint_is_the_peak_nearest_its_regressed_position() -> None:
    grid, count = 48, 17
    heatmaps = np.zeros((grid, grid, count), np.float32)
    centers = np.zeros((grid, grid, 1), np.float32)
    regress = np.zeros((grid, grid, 2 * count), np.float32)
    offsets = np.zeros((grid, grid, 2 * count), np.float32)
    centers[20, 30, 0] = 0.9
    centers[2, 2, 0] = 0.95  # a stronger centre far from the middle loses to the weighting
    for k in range(count):
        y, x = 20 + k % 5, 30 - k % 7
        regress[20, 30, 2 * k : 2 * k + 2] = (y - 20 + 0.3, x - 30 - 0.2)  # the regression is near, not exact
        heatmaps[y, x, k] = 0.6
        heatmaps[(y + 24) % grid, (x + 20) % grid, k] = 0.9  # a stronger peak elsewhere loses too
        offsets[y, x, 2 * k : 2 * k + 2] = (0.25, -0.5)
    keypoints = decode_single_pose(heatmaps, centers, regress, offsets)
    assert keypoints.shape == (count, 3)
    for k in range(count):
        y, x = 20 + k % 5, 30 - k % 7
        np.testing.assert_allclose(keypoints[k], [(y + 0.25) / grid, (x - 0.5) / grid, 0.6], atol=1e-6)


def _body_models() -> Path:
    folder = Path(os.environ.get("IMAGELIFT_BODY_MODELS_DIR") or ROOT / "models") / "body"
    if not (folder / "movenet-lightning.onnx").is_file() or not (folder / "centernet.onnx").is_file():
        pytest.skip(f"body nets not built in {folder}: run `imagelift models build --extra body`")
    if not PHOTOS.is_dir():
        pytest.skip(f"labelled photos not found at {PHOTOS}")
    return folder


def _rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_keypoints_of_a_full_body_photo_run_down_the_legs() -> None:
    pose = PoseEstimator(_body_models() / "movenet-lightning.onnx")
    keypoints = pose.keypoints(_rgb(FULL_BODY))
    hips, knees, ankles = (keypoints[list(part)] for part in (HIPS, KNEES, ANKLES))
    assert min(hips[:, 2].min(), knees[:, 2].min(), ankles[:, 2].min()) > 0.5
    assert hips[:, 0].max() < knees[:, 0].min() and knees[:, 0].max() < ankles[:, 0].min()
    assert ankles[:, 0].min() > 0.8  # the shoes are at the bottom of the photo
    # The 852 x 1280 photo is padded to a square: everything lies within its own columns (0.17 .. 0.83).
    assert ((keypoints[:, 1] > 0.17) & (keypoints[:, 1] < 0.83)).all()


def test_centernet_sees_a_person_in_feet_close_up_and_none_in_a_studio_product() -> None:
    centers = PersonCenters(_body_models() / "centernet.onnx")
    assert centers.best_person(_rgb(FULL_BODY)) > 0.5
    assert centers.best_person(_rgb(FEET_AT_FENCE)) > 0.4
    assert centers.best_person(_rgb(STUDIO_PRODUCT)) < 0.15
