"""A person's correction of a photo's category, stored beside the classifier's result on the photo's record.

The record of the photo's live version (as imagelift.services.categories finds it) gets ``correction``:
``{category, category_name, by, at, note, classifier_category}``; ``category``, ``decided_by`` and the scores stay
the classifier's, so what the model said is never lost and corrections can be compared with it (a confusion
matrix). Correcting again replaces the correction and keeps the replaced ones, oldest first, in ``earlier``. A
correction that agrees with the classifier is stored too: it confirms the photo was looked at.

The weekly report and ``imagelift categories`` take the corrected category (imagelift.influence.records counts the
records it corrected); a re-classification keeps the correction. The write is conditional on the record being
unchanged since it was read, retried a few times when another write lands in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imagelift.records.categories import CATEGORIES, Category
from imagelift.records.category_record import CategoryRecord
from imagelift.records.keys import object_pk
from imagelift.services.categories import live_photos
from imagelift.services.classify_service import utc_now

ATTEMPTS = 3
"""Reads and conditional writes tried before giving up when other writes keep landing in between."""


class CorrectionError(Exception):
    """The correction cannot be stored: unknown category, no such photo, no live classified record."""


def parse_category(text: str) -> Category:
    """A category by name (``worn``) or number (``2``)."""
    value = text.strip().lower()
    for category in CATEGORIES:
        if value in (category.name, str(category.id)):
            return category
    names = ", ".join(f"{c.name} ({c.id})" for c in CATEGORIES)
    raise CorrectionError(f"unknown category {text!r}: one of {names}")


def split_location(location: str, bucket: str | None) -> tuple[str, str]:
    """``s3://bucket/key`` or a key in ``bucket`` -> (bucket, key)."""
    if location.startswith("s3://"):
        named, _, key = location[len("s3://") :].partition("/")
        if not named or not key:
            raise CorrectionError(f"{location!r} is not s3://<bucket>/<key>")
        return named, key
    if not bucket:
        raise CorrectionError(f"no bucket for {location!r}: give s3://<bucket>/<key>, --bucket or --stack")
    return bucket, location


def correction_of(record: CategoryRecord, category: Category, *, by: str, at: str, note: str | None) -> dict[str, Any]:
    correction: dict[str, Any] = {
        "category": category.id,
        "category_name": category.name,
        "by": by,
        "at": at,
        "classifier_category": record.category,
    }
    if note:
        correction["note"] = note
    if record.correction:
        replaced = {k: v for k, v in record.correction.items() if k != "earlier"}
        correction["earlier"] = [*record.correction.get("earlier", ()), replaced]
    return correction


class CorrectionService:
    """``records``: imagelift.adapters.categories_table.CategoriesTable."""

    def __init__(self, records: Any, *, clock: Callable[[], str] = utc_now) -> None:
        self.records = records
        self.clock = clock

    def target(self, bucket: str, key: str, version: str | None = None) -> CategoryRecord:
        """The record a correction of ``key`` goes on: its live version, or the version named (sk or version id)."""
        history = self.records.history(object_pk(bucket, key))
        if not history:
            raise CorrectionError(f"no record of s3://{bucket}/{key}")
        if version is not None:
            named = [r for r in history if version in (r.sk, r.version_id, r.etag)]
            if not named:
                raise CorrectionError(f"no record of version {version!r} of s3://{bucket}/{key}")
            record = named[0]
            if record.status != "classified":
                raise CorrectionError(f"version {version!r} of s3://{bucket}/{key} is {record.status}")
            return record
        live, _ = live_photos(history)
        if not live:
            statuses = sorted({r.status for r in history})
            raise CorrectionError(f"s3://{bucket}/{key} has no live classified version ({', '.join(statuses)})")
        return live[0]

    def correct(
        self,
        bucket: str,
        key: str,
        category: Category,
        *,
        by: str,
        note: str | None = None,
        version: str | None = None,
    ) -> CategoryRecord:
        """Store the correction; returns the record as it now is."""
        if not by:
            raise CorrectionError("who corrects it? pass --by or set IMAGELIFT_REVIEWER")
        for _ in range(ATTEMPTS):
            record = self.target(bucket, key, version)
            now = self.clock()
            correction = correction_of(record, category, by=by, at=now, note=note)
            if self.records.set_correction(record, correction, now):
                stored = self.records.get(record.pk, record.sk)
                assert stored is not None
                return stored
        raise CorrectionError(f"s3://{bucket}/{key} kept changing while being corrected; try again")
