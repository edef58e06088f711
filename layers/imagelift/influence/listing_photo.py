"""Which of a listing's live photos gives the listing-week its category.

A listing has a main photo (the one search results show) and a gallery. The image keys say which is which
(imagelift.records.keys.photo_position: ``main.jpg``, ``01-front.jpg``, ``<ASIN>.MAIN.jpg``, ...): the live photo of
lowest position is the main one, an unnumbered photo ranks after the numbered ones, and among photos of the same rank
the newest upload counts. Two rules (``ReportConfig.listing_category``):

- ``main``: the listing-week takes the main photo's category. Re-uploading a gallery photo changes nothing a
  shopper sees in search results, and nothing here.
- ``any_model``: a listing with a model photo anywhere in its live gallery counts as ``model``; otherwise the main
  photo's category. For a question like "does showing the shoe on a person anywhere sell more".
"""

from __future__ import annotations

from collections.abc import Iterable

from imagelift.records.categories import MODEL
from imagelift.records.keys import gallery_rank

MAIN_PHOTO = "main"
ANY_MODEL_PHOTO = "any_model"
RULES = (MAIN_PHOTO, ANY_MODEL_PHOTO)

_DESCRIPTIONS = {
    MAIN_PHOTO: (
        "each listing-week takes the category of the listing's main photo live at the week's midpoint "
        "(Thursday 12:00 UTC): of its live photos the lowest position in the file name (main.*, then 01-..., "
        "2_..., Amazon's .MAIN / .PTnn), unnumbered photos after numbered ones, the newest upload among equals; "
        "failed and deleted records are ignored"
    ),
    ANY_MODEL_PHOTO: (
        "each listing-week is model when any live photo of the listing's gallery at the week's midpoint "
        "(Thursday 12:00 UTC) is a model photo, else the category of its main photo (the lowest position in the "
        "file name: main.*, then 01-..., 2_..., Amazon's .MAIN / .PTnn; unnumbered after numbered, the newest "
        "upload among equals); failed and deleted records are ignored"
    ),
}


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"listing category rule {rule!r} is not one of {', '.join(RULES)}")
    return rule


def describe(rule: str) -> str:
    """The week assignment in words, for the report's method section."""
    return _DESCRIPTIONS[check_rule(rule)]


def photo_order(position: int | None, uploaded: object, sequencer: str) -> tuple[int, object, str]:
    """Greatest for the main photo: front of the gallery first, then the newest upload (time, then S3 sequencer)."""
    return (-gallery_rank(position), uploaded, sequencer)


def listing_category(live: Iterable[tuple[tuple[int, object, str], int]], rule: str) -> int:
    """The category of a listing from its live photos, each ``(photo_order(...), category)``; at least one."""
    photos = list(live)
    _, main_category = max(photos)
    if rule == ANY_MODEL_PHOTO and any(category == MODEL.id for _, category in photos):
        return MODEL.id
    return main_category
