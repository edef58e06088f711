"""A second look for small faces: MTCNN again on the head region of each person box, upscaled.

The first face pass runs on the photo capped at ``face_max_side``, where a 25-40 px face of a 600-1000 px photo
falls under MTCNN's smallest window. Enlarging the whole photo instead brings false faces on fabric; a person box
confines the search to where a head can be, so a product photo without a person never takes this path.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imagelift.vision.mtcnn import MTCNN, Face, FaceDetection
from imagelift.vision.person import Person


@dataclass(frozen=True)
class HeadCrop:
    """The head region of one person box, in the pixels of the image it was cut from."""

    x0: int
    y0: int
    x1: int
    y1: int
    upscale: float

    def to_image(self, face: Face) -> Face:
        """``face`` found in the upscaled crop, moved into the pixels of the source image."""
        moved = face.scaled(1.0 / self.upscale)
        x, y, w, h = moved.box
        return Face(
            (x + self.x0, y + self.y0, w, h),
            moved.confidence,
            {k: (px + self.x0, py + self.y0) for k, (px, py) in moved.keypoints.items()},
        )


def head_crops(
    persons: list[Person], width: int, height: int, *, head_fraction: float, upscale: float, max_side: int
) -> list[HeadCrop]:
    """The top ``head_fraction`` of each person box (widened to at least as wide as tall so a turned head fits),
    clipped to the image, with the enlargement ``upscale`` reduced when the crop would exceed ``max_side``."""
    crops = []
    for person in persons:
        x, y, w, h = person.box
        crop_h = max(1.0, h * head_fraction)
        crop_w = max(w, crop_h)
        cx = x + w / 2
        x0, x1 = max(0, int(cx - crop_w / 2)), min(width, int(np.ceil(cx + crop_w / 2)))
        y0, y1 = max(0, int(y)), min(height, int(np.ceil(y + crop_h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        scale = min(upscale, max_side / max(x1 - x0, y1 - y0))
        crops.append(HeadCrop(x0, y0, x1, y1, max(scale, 1e-6)))
    return crops


def crop_input(crop: HeadCrop, image_bgr: np.ndarray, finer_bgr: np.ndarray | None = None) -> np.ndarray:
    """The MTCNN input of ``crop``: its region enlarged by ``crop.upscale`` (in the pixels of ``image_bgr``).

    With ``finer_bgr`` (the same photo decoded larger), the region is cut from that decode instead and resized to the
    same size: the same geometry, with real pixels where the enlargement would otherwise interpolate."""
    w_out = max(1, round((crop.x1 - crop.x0) * crop.upscale))
    h_out = max(1, round((crop.y1 - crop.y0) * crop.upscale))
    if finer_bgr is None:
        region = image_bgr[crop.y0 : crop.y1, crop.x0 : crop.x1]
    else:
        to_finer = finer_bgr.shape[1] / image_bgr.shape[1]
        fh, fw = finer_bgr.shape[:2]
        x0, y0 = int(crop.x0 * to_finer), int(crop.y0 * to_finer)
        x1, y1 = min(fw, int(np.ceil(crop.x1 * to_finer))), min(fh, int(np.ceil(crop.y1 * to_finer)))
        region = finer_bgr[y0:y1, x0:x1]
    interpolation = cv2.INTER_CUBIC if w_out > region.shape[1] else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(region, (w_out, h_out), interpolation=interpolation))


def finer_long_side(crops: list[HeadCrop], image_bgr: np.ndarray) -> int:
    """The long side a finer decode needs so that no crop is enlarged from it: the largest upscale applied."""
    return int(np.ceil(max(image_bgr.shape[:2]) * max((c.upscale for c in crops), default=1.0)))


def look_again(
    mtcnn: MTCNN,
    image_bgr: np.ndarray,
    crops: list[HeadCrop],
    min_confidence: float,
    finer_bgr: np.ndarray | None = None,
) -> FaceDetection:
    """Faces scoring at least ``min_confidence`` in any head crop, in the pixels of ``image_bgr``, best first.

    ``finer_bgr``: the same photo decoded larger, to cut the crops from (see :func:`crop_input`)."""
    inputs = [crop_input(crop, image_bgr, finer_bgr) for crop in crops]
    faces: list[Face] = []
    best_rejected = 0.0
    for crop, region in zip(crops, inputs, strict=True):
        detection = mtcnn.detect_bgr(region)
        best_rejected = max(best_rejected, detection.best_rejected)
        for face in detection.faces:
            if face.confidence >= min_confidence:
                faces.append(crop.to_image(face))
            else:
                best_rejected = max(best_rejected, face.confidence)
    faces.sort(key=lambda f: f.confidence, reverse=True)
    return FaceDetection(faces, best_rejected)
