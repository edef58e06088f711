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
    for face in result.faces:
        x, y, w, h = face.box
        p1 = (round(x * scale_x), round(y * scale_y))
        p2 = (round((x + w) * scale_x), round((y + h) * scale_y))
        cv2.rectangle(out, p1, p2, FACE_COLOUR, thickness)
        for px, py in face.keypoints.values():
            cv2.circle(out, (round(px * scale_x), round(py * scale_y)), thickness, FACE_COLOUR, -1)
        _label(out, f"face {face.confidence:.2f}", p1, FACE_COLOUR, thickness)
    for person in result.persons:
        x, y, w, h = person.box
        p1 = (round(x * scale_x), round(y * scale_y))
        p2 = (round((x + w) * scale_x), round((y + h) * scale_y))
        cv2.rectangle(out, p1, p2, PERSON_COLOUR, thickness)
        _label(out, f"person {person.confidence:.2f} ({person.source})", p1, PERSON_COLOUR, thickness)
    for hand in result.hands:
        x, y, w, h = hand.box
        p1 = (round(x * scale_x), round(y * scale_y))
        p2 = (round((x + w) * scale_x), round((y + h) * scale_y))
        cv2.rectangle(out, p1, p2, HAND_COLOUR, thickness)
        _label(out, f"{hand.label} {hand.confidence:.2f}", p1, HAND_COLOUR, thickness)
    _label(out, f"{result.category} {result.category_name} ({result.decided_by})", (0, 0), (40, 40, 40), thickness)
    return out


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
            x, y, w, h = (float(v) for v in found["box"])
            p1 = (round(x * scale_x), round(y * scale_y))
            p2 = (round((x + w) * scale_x), round((y + h) * scale_y))
            cv2.rectangle(out, p1, p2, colour, thickness)
            _label(out, f"{kind} {float(found.get('confidence', 0)):.2f}", p1, colour, thickness)
    if caption:
        _label(out, caption, (0, 0), (40, 40, 40), thickness)
    return out
