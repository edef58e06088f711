"""What a seller sees: each listing's current category, with the photo that gives it, its scores and status.

A listing's current photo is its main photo, as the weekly report takes it (imagelift.influence.listing_photo): of
the photos (keys) of the listing that are live, the one of lowest gallery position in its file name (``main.jpg``,
then ``01-...``, ``2_...``; imagelift.records.keys.photo_position), unnumbered photos after numbered ones, the newest
upload among equals. The other live photos are its gallery (``photos`` lists them all, main first). A key's live version is its newest upload
that is classified and not deleted: a delete marker ends every upload before it, a version deleted for good
(``deleted``, with its category kept) is not live, a failed upload is no photo (the report leaves it out too) but
is counted in ``failed``. The category shown is the one that counts: a person's correction when there is one
(``corrected``), else the classifier's (``classifier_category`` always shows the latter).

Reads are one indexed Query per product or listing (CategoriesTable.of_product / of_listing); the export of every
listing is the one Scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from imagelift.records.categories import CATEGORY_NAMES
from imagelift.records.category_record import STATUS_CLASSIFIED, STATUS_DELETED, STATUS_FAILED, CategoryRecord
from imagelift.records.keys import gallery_rank

EXPORT_COLUMNS = (
    "product_id",
    "listing_id",
    "category",
    "category_name",
    "corrected",
    "classifier_category",
    "review",
    "status",
    "key",
    "version",
    "face_score",
    "person_score",
    "decided_by",
    "uploaded_at",
    "classified_at",
    "live_photos",
    "failed",
    "photo_position",
    "gallery_categories",
)


@dataclass(frozen=True)
class GalleryPhoto:
    """One live photo of a listing."""

    role: str
    """``main`` (the photo that gives the listing its category) or ``gallery``."""
    key: str
    position: int | None
    category: int | None
    category_name: str | None
    corrected: bool
    review: bool
    uploaded_at: str


@dataclass(frozen=True)
class ListingCategory:
    """One listing's current category and the photo it comes from (None fields: the listing has no live photo)."""

    product_id: str
    listing_id: str
    category: int | None
    category_name: str | None
    corrected: bool
    classifier_category: int | None
    review: bool
    """The classifier's score lay near its threshold and no person has corrected it yet."""
    status: str
    """``classified``; ``deleted`` when every photo is gone; ``failed`` when the listing's only uploads failed."""
    key: str | None
    version: str | None
    """The record's sort key (the S3 version of the photo)."""
    face_score: float | None
    """The best face confidence MTCNN reported (a counted face's, else the best near miss)."""
    person_score: float | None
    """The best person confidence YOLO reported (a counted person's, else the best near miss over nets and passes)."""
    decided_by: str | None
    uploaded_at: str | None
    classified_at: str | None
    live_photos: int
    failed: int
    """Uploads of the listing whose classification failed (left out, as the report leaves them out)."""
    photo_position: int | None = None
    """The main photo's gallery position from its file name (0 ``main.*``, 1-99 numbered, None unnumbered)."""
    photos: tuple[GalleryPhoto, ...] = ()
    """Every live photo of the listing, the main one first, then the gallery in position order."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def gallery_categories(self) -> str:
        """The categories of the live photos, main first (``1,3,3``): a model photo deeper in the gallery shows."""
        return ",".join("" if photo.category is None else str(photo.category) for photo in self.photos)

    def csv_row(self) -> dict[str, Any]:
        row = {**self.to_dict(), "gallery_categories": self.gallery_categories}
        return {name: "" if row[name] is None else row[name] for name in EXPORT_COLUMNS}


def face_score(record: CategoryRecord) -> float | None:
    scores = [float(face["confidence"]) for face in record.faces or () if face.get("confidence") is not None]
    if scores:
        return max(scores)
    if record.face_gate and not record.face_gate.get("open", True):
        return None  # no face was looked for: the person gate kept MTCNN from running
    return None if record.best_face_score is None else float(record.best_face_score)


def person_score(record: CategoryRecord) -> float | None:
    scores = [float(person["confidence"]) for person in record.persons or () if person.get("confidence") is not None]
    if not scores:
        scores = [float(s) for passes in (record.person_scores or {}).values() for s in passes.values()]
    return max(scores) if scores else None


def _order(record: CategoryRecord) -> tuple[str, str]:
    return (record.event_time, record.sequencer)


def gallery_order(record: CategoryRecord) -> tuple[int, str, str]:
    """Greatest for the listing's main photo: the front of the gallery first, then the newest upload."""
    return (-gallery_rank(record.position), record.event_time, record.sequencer)


def gallery_photo(record: CategoryRecord, role: str) -> GalleryPhoto:
    category = record.current_category
    return GalleryPhoto(
        role=role,
        key=record.key,
        position=record.position,
        category=category,
        category_name=CATEGORY_NAMES.get(category) if category is not None else None,
        corrected=record.correction is not None,
        review=bool(record.review) and record.correction is None,
        uploaded_at=record.event_time,
    )


def live_photos(records: Iterable[CategoryRecord]) -> tuple[list[CategoryRecord], int]:
    """(the live version of each photo of one listing, the number of failed uploads among ``records``)."""
    by_key: dict[str, list[CategoryRecord]] = defaultdict(list)
    for record in records:
        by_key[record.key].append(record)
    live, failed = [], 0
    for versions in by_key.values():
        failed += sum(record.status == STATUS_FAILED for record in versions)
        markers = [r for r in versions if r.status == STATUS_DELETED and r.category is None]
        cutoff = max(map(_order, markers)) if markers else None
        uploads = [r for r in versions if r.status == STATUS_CLASSIFIED and (cutoff is None or _order(r) > cutoff)]
        if uploads:
            live.append(max(uploads, key=_order))
    return live, failed


def current_categories(records: Iterable[CategoryRecord]) -> list[ListingCategory]:
    """One :class:`ListingCategory` per listing among ``records`` (unmatched keys skipped), sorted by ids."""
    by_listing: dict[tuple[str, str], list[CategoryRecord]] = defaultdict(list)
    for record in records:
        if record.product_id is not None and record.listing_id is not None:
            by_listing[(record.product_id, record.listing_id)].append(record)
    return [listing_category(p, listing, by_listing[(p, listing)]) for p, listing in sorted(by_listing)]


def listing_category(product_id: str, listing_id: str, records: list[CategoryRecord]) -> ListingCategory:
    live, failed = live_photos(records)
    if not live:
        status = STATUS_FAILED if failed and all(r.status == STATUS_FAILED for r in records) else STATUS_DELETED
        return ListingCategory(
            product_id=product_id,
            listing_id=listing_id,
            category=None,
            category_name=None,
            corrected=False,
            classifier_category=None,
            review=False,
            status=status,
            key=None,
            version=None,
            face_score=None,
            person_score=None,
            decided_by=None,
            uploaded_at=None,
            classified_at=None,
            live_photos=0,
            failed=failed,
        )
    ordered = sorted(live, key=gallery_order, reverse=True)
    photo = ordered[0]
    category = photo.current_category
    corrected = photo.correction is not None
    return ListingCategory(
        product_id=product_id,
        listing_id=listing_id,
        category=category,
        category_name=CATEGORY_NAMES.get(category) if category is not None else None,
        corrected=corrected,
        classifier_category=photo.category,
        review=bool(photo.review) and not corrected,
        status=photo.status,
        key=photo.key,
        version=photo.sk,
        face_score=face_score(photo),
        person_score=person_score(photo),
        decided_by=photo.decided_by,
        uploaded_at=photo.event_time,
        classified_at=photo.classified_at,
        live_photos=len(live),
        failed=failed,
        photo_position=photo.position,
        photos=tuple(gallery_photo(r, "main" if r is photo else "gallery") for r in ordered),
    )


class CategoriesService:
    """The seller's reads of the ImageCategories table (``records``: imagelift.adapters.categories_table)."""

    def __init__(self, records: Any, scan: Any = None) -> None:
        self.records = records
        self.scan = scan
        """Callable returning every item of the table (imagelift.adapters.category_records), for the export."""

    def of_product(self, product_id: str) -> list[ListingCategory]:
        return current_categories(self.records.of_product(product_id))

    def of_listing(self, listing_id: str, product_id: str | None = None) -> list[ListingCategory]:
        if product_id is not None:
            return current_categories(self.records.of_product(product_id, listing_id))
        return current_categories(self.records.of_listing(listing_id))

    def every_listing(self) -> list[ListingCategory]:
        return current_categories(self._every_record())

    def _every_record(self) -> Iterator[CategoryRecord]:
        for item in self.scan():
            yield CategoryRecord.from_item(item)
