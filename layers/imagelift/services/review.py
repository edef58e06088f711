"""The photos worth a human look: live, classified records marked ``review`` (a score near its threshold) that no
person has corrected yet, and a contact sheet of them with the detector's boxes, to decide quickly.

The sheet is ``index.html`` plus one annotated thumbnail per photo in the same folder; under each, the
``imagelift correct`` command for every other category, ready to copy.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagelift.records.categories import CATEGORIES, CATEGORY_NAMES
from imagelift.records.category_record import CategoryRecord
from imagelift.services.categories import face_score, live_photos, person_score

THUMBNAIL_LONG_SIDE = 360
"""Pixels on the long side of a contact sheet's thumbnail: enough to judge a face or a foot, small on disk."""


def pending_review(records: Iterable[CategoryRecord]) -> list[CategoryRecord]:
    """The live versions among ``records`` marked ``review`` and not corrected, sorted by product, listing, key."""
    live, _ = live_photos(records)
    pending = [record for record in live if record.review and record.correction is None]
    return sorted(pending, key=lambda r: (r.product_id or "", r.listing_id or "", r.key))


def review_row(record: CategoryRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "bucket": record.bucket,
        "version": record.sk,
        "product_id": record.product_id,
        "listing_id": record.listing_id,
        "category": record.category,
        "category_name": record.category_name,
        "decided_by": record.decided_by,
        "face_score": face_score(record),
        "person_score": person_score(record),
        "thresholds": {
            name: value
            for name, value in (record.thresholds or {}).items()
            if name in ("face_min_confidence", "person_min_confidence", "person_padded_min_confidence")
        },
    }


def _thumbnail(data: bytes, record: CategoryRecord) -> bytes:
    import cv2

    from imagelift.vision.annotate import annotate_recorded
    from imagelift.vision.image_io import decode_image

    decoded = decode_image(data, target_long_side=THUMBNAIL_LONG_SIDE)
    image = decoded.bgr
    scale = THUMBNAIL_LONG_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    image = annotate_recorded(
        image,
        width=record.width or decoded.width,
        height=record.height or decoded.height,
        faces=record.faces,
        persons=record.persons,
        hands=record.hands,
    )
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("the thumbnail could not be encoded")
    return encoded.tobytes()


def write_contact_sheet(records: list[CategoryRecord], photos: Any, out_dir: Path, *, max_bytes: int) -> Path:
    """``out_dir/index.html`` and a thumbnail per record (``photos``: imagelift.adapters.s3.PhotoStore).

    A photo that cannot be read or decoded gets a card with the reason instead of a picture.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cards = []
    for number, record in enumerate(records, start=1):
        row = review_row(record)
        try:
            data = photos.read(
                record.bucket, record.key, max_bytes=max_bytes, version_id=record.version_id, etag=record.etag
            )
            name = f"{number:04d}.jpg"
            (out_dir / name).write_bytes(_thumbnail(data, record))
            picture = f'<img src="{name}" alt="{html.escape(record.key)}">'
        except Exception as exc:  # one unreadable photo must not cost the reviewer the whole sheet
            picture = f'<p class="error">cannot show: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>'
        scores = ", ".join(
            f"{label} {value:.2f}"
            for label, value in (("face", row["face_score"]), ("person", row["person_score"]))
            if value is not None
        )
        location = html.escape(f"s3://{record.bucket}/{record.key}")
        commands = "<br>".join(
            html.escape(f"imagelift correct s3://{record.bucket}/{record.key} --category {c.name}") for c in CATEGORIES
        )
        said = CATEGORY_NAMES.get(record.category, "?") if record.category is not None else "?"
        cards.append(
            f"<figure>{picture}<figcaption><b>{html.escape(said)}</b> by {html.escape(record.decided_by or '?')}"
            f" ({html.escape(scores)})<br><small>{location}</small><pre>{commands}</pre></figcaption></figure>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>imagelift: photos to review</title><style>"
        "body{font-family:sans-serif;margin:1em}figure{display:inline-block;vertical-align:top;width:380px;"
        "margin:.5em;padding:.5em;border:1px solid #ccc}img{max-width:100%}pre{font-size:10px;white-space:pre-wrap}"
        ".error{color:#a00}</style></head><body>"
        f"<h1>{len(records)} photo(s) to review</h1>"
        "<p>Orange boxes: faces (MTCNN); green: persons (YOLO). The classifier's category is in bold; a score "
        "lies near its threshold. Copy the command of the right category.</p>" + "".join(cards) + "</body></html>"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def corrections_confusion(records: Iterable[CategoryRecord]) -> dict[str, Any]:
    """The classifier against people: the confusion matrix ``imagelift evaluate`` prints, with each corrected
    record's ``correction.category`` as the truth and its ``classifier_category`` as the prediction.

    The photos are the ones people chose to look at (mostly those marked review), not a sample of the catalogue:
    the figures say where the classifier goes wrong, not how often it does over all photos.
    """
    from imagelift.vision.evaluation import LabelledFile, summarise

    records = list(records)
    pairs = []
    for record in records:
        correction = record.correction or {}
        truth = correction.get("category")
        predicted = correction.get("classifier_category", record.category)
        if truth is None or predicted is None:
            continue
        pairs.append(
            (
                LabelledFile(path=Path(f"s3://{record.bucket}/{record.key}"), label=int(truth)),
                {**record.to_item(), "category": int(predicted)},
            )
        )
    summary = summarise(pairs)
    summary["by"] = dict(sorted(Counter(str((r.correction or {}).get("by", "")) for r in records).items()))
    return summary
