"""Copies of photos with what the cascade saw drawn on them: face boxes and landmarks, person and hand boxes, the
verdict."""

from __future__ import annotations

import cv2
import numpy as np

from imagelift.vision.cascade import Classification

FACE_COLOUR = (255, 155, 0)  # BGR orange-blue (0, 155, 255 in RGB), as the first figures drew faces
PERSON_COLOUR = (0, 200, 0)
HAND_COLOUR = (200, 0, 200)
LABEL_COLOUR = (255, 255, 255)


def annotate(image_bgr: np.ndarray, result: Classification) -> np.ndarray:
    """A copy of ``image_bgr`` (the photo at full size) with boxes, landmarks and the category drawn on it."""
    out = image_bgr.copy()
    scale_x = out.shape[1] / max(1, result.width)
    scale_y = out.shape[0] / max(1, result.height)
    thickness = max(2, round(max(out.shape[:2]) / 400))
    scale = (scale_x, scale_y)
    for face in result.faces:
        for px, py in face.keypoints.values():
            cv2.circle(out, (round(px * scale_x), round(py * scale_y)), thickness, FACE_COLOUR, -1)
        _box(out, face.box, scale, FACE_COLOUR, thickness, f"face {face.confidence:.2f}")
    for person in result.persons:
        text = f"person {person.confidence:.2f} ({person.source})"
        _box(out, person.box, scale, PERSON_COLOUR, thickness, text)
    for hand in result.hands:
        _box(out, hand.box, scale, HAND_COLOUR, thickness, f"{hand.label} {hand.confidence:.2f}")
    _label(out, f"{result.category} {result.category_name} ({result.decided_by})", (0, 0), (40, 40, 40), thickness)
    return out


def _box(
    image: np.ndarray,
    box: tuple[float, float, float, float] | list[float],
    scale: tuple[float, float],
    colour: tuple[int, int, int],
    thickness: int,
    text: str,
) -> None:
    """An ``[x, y, w, h]`` box (photo pixels, times ``scale`` to the image's) drawn with its label at the corner."""
    x, y, w, h = (float(v) for v in box)
    p1 = (round(x * scale[0]), round(y * scale[1]))
    p2 = (round((x + w) * scale[0]), round((y + h) * scale[1]))
    cv2.rectangle(image, p1, p2, colour, thickness)
    _label(image, text, p1, colour, thickness)


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], thickness: int) -> None:
    scale = thickness / 3
    (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thickness // 2))
    x = min(max(0, origin[0]), max(0, image.shape[1] - tw - 4))
    y = max(th + baseline + 4, origin[1])
    cv2.rectangle(image, (x, y - th - baseline - 4), (x + tw + 4, y), colour, -1)
    cv2.putText(
        image, text, (x + 2, y - baseline - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, LABEL_COLOUR, max(1, thickness // 2)
    )


def annotate_recorded(
    image_bgr: np.ndarray,
    *,
    width: int,
    height: int,
    faces: list[dict] | None = None,
    persons: list[dict] | None = None,
    hands: list[dict] | None = None,
    caption: str = "",
) -> np.ndarray:
    """A copy of ``image_bgr`` (the photo at any size) with the boxes of an ImageCategories record drawn on it.

    ``faces``, ``persons`` and ``hands`` are the record's (``box`` [x, y, w, h] in the ``width`` x ``height`` photo,
    ``confidence``), so a stored decision can be shown without running the cascade again.
    """
    out = image_bgr.copy()
    scale_x = out.shape[1] / max(1, width)
    scale_y = out.shape[0] / max(1, height)
    thickness = max(2, round(max(out.shape[:2]) / 400))
    drawn = (
        ("face", FACE_COLOUR, faces or ()),
        ("person", PERSON_COLOUR, persons or ()),
        ("hand", HAND_COLOUR, hands or ()),
    )
    for kind, colour, boxes in drawn:
        for found in boxes:
            text = f"{kind} {float(found.get('confidence', 0)):.2f}"
            _box(out, found["box"], (scale_x, scale_y), colour, thickness, text)
    if caption:
        _label(out, caption, (0, 0), (40, 40, 40), thickness)
    return out
