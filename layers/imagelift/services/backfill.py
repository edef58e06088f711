"""Classify the photos a bucket already holds (uploaded before deployment, or whose events were lost).

Lists the current object versions under a prefix and records each one that has no record yet, with the same
classification and record as the S3 events (``source = backfill``, the empty sequencer so that any real event
for the same version supersedes it). Versions that have a record are skipped with a GetItem or two, so a rerun only
does what is missing; a transient fault is counted and left for the next run.

A version's record is found under its version id (``v#...``) or, when its event carried no version id (moto's
notifications do not), under its ETag (``etag#...``): both mean the version is recorded.

:meth:`BackfillService.for_each_object` (list, fan out, count, report progress) is shared with
imagelift.services.reclassify.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from imagelift.adapters.s3 import ObjectInfo
from imagelift.records.category_record import SOURCE_BACKFILL, CategoryRecord
from imagelift.records.keys import BACKFILL_SEQUENCER, junk_reason, object_pk, parse_image_key, version_sk
from imagelift.records.live_from import LiveFrom
from imagelift.services.classify_service import PhotoService, result_of
from imagelift.services.results import RecordResult


@dataclass
class BackfillSummary:
    bucket: str
    prefix: str
    listed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    categories: Counter[int] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(key, error) of objects that hit a transient fault: rerun to record them."""
    seconds: float = 0.0
    live_from_set: int = 0
    """Records (new or existing) given the seller's ``live_from``."""

    @property
    def complete(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "listed": self.listed,
            "recorded": self.outcomes["classified"] + self.outcomes["failed"],
            "classified": self.outcomes["classified"],
            "failed": self.outcomes["failed"],
            "already_recorded": self.outcomes["duplicate"],
            "live_from_set": self.live_from_set,
            "categories": {str(k): v for k, v in sorted(self.categories.items())},
            "errors": [{"key": k, "error": e} for k, e in self.errors],
            "seconds": round(self.seconds, 2),
        }


S = TypeVar("S", bound=BackfillSummary)

Progress = Callable[[int, int, str, RecordResult | None], None]
"""progress(done, total, key, result or None when the object hit an error)."""


class BackfillService(PhotoService):
    """Record every current object under a prefix that has no record yet, several at a time."""

    def run(
        self,
        bucket: str,
        prefix: str,
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
        live_from: LiveFrom | None = None,
    ) -> BackfillSummary:
        """Record every current object under ``prefix`` that has no record; transient faults are counted.

        ``live_from``: when the seller says the listings' current photos went live; records of photos uploaded
        later carry it (existing records of those versions too), so the report counts the weeks since then.
        """
        summary = BackfillSummary(bucket=bucket, prefix=prefix)
        stated: list[str] = []  # keys given a live_from (list.append is safe across the worker threads)

        def handle(obj: ObjectInfo) -> RecordResult:
            result, live_from_stored = self._record(obj, live_from)
            if live_from_stored:
                stated.append(obj.key)
            return result

        self.for_each_object(summary, handle, concurrency=concurrency, progress=progress)
        summary.live_from_set = len(stated)
        return summary

    def for_each_object(
        self,
        summary: S,
        handle: Callable[[ObjectInfo], RecordResult],
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
    ) -> S:
        """``handle`` every current object under ``summary.prefix``, ``concurrency`` at a time, into ``summary``.

        An exception from ``handle`` is a transient fault (throttling, timeouts, 5xx): it is counted in
        ``summary.errors`` and the object is left for the next run.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        started = time.perf_counter()
        bucket, prefix = summary.bucket, summary.prefix
        objects = [obj for obj in self.photos.current_objects(bucket, prefix) if not obj.key.endswith("/")]
        summary.listed = len(objects)

        def one(obj: ObjectInfo) -> tuple[ObjectInfo, RecordResult | None, str | None]:
            try:
                result = handle(obj)
            except Exception as exc:  # transient: counted, the next run retries it
                return obj, None, f"{type(exc).__name__}: {exc}"
            return obj, result, None

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for done, (obj, result, error) in enumerate(pool.map(one, objects), start=1):
                if result is None:
                    summary.errors.append((obj.key, error or "unknown error"))
                else:
                    summary.outcomes[result.outcome] += 1
                    if result.category is not None:
                        summary.categories[result.category] += 1
                if progress is not None:
                    progress(done, len(objects), obj.key, result)
        summary.seconds = time.perf_counter() - started
        return summary

    def existing_record(self, obj: ObjectInfo) -> CategoryRecord | None:
        """The record of this object version: under its version id, else under its ETag (an event without one)."""
        pk = object_pk(obj.bucket, obj.key)
        sk = version_sk(version_id=obj.version_id, etag=obj.etag, sequencer=BACKFILL_SEQUENCER, removed=False)
        record = self.records.get(pk, sk)
        if record is None and obj.version_id and obj.etag:
            record = self.records.get(pk, version_sk(version_id=None, etag=obj.etag, sequencer="", removed=False))
        return record

    def record_existing_object(self, obj: ObjectInfo, live_from: LiveFrom | None = None) -> RecordResult:
        """Classify an object no event told us about; written only if its version has no record.

        With ``live_from``, an existing record of the version gets the seller's live-from time too. What is not a
        photo (OS metadata files such as ``.DS_Store``; folder markers are not even listed) is skipped as the event
        path skips it. A key outside the images prefix is still recorded, unmatched: the backfill goes where it is
        pointed.
        """
        return self._record(obj, live_from)[0]

    def _record(self, obj: ObjectInfo, live_from: LiveFrom | None) -> tuple[RecordResult, bool]:
        """The result, and whether a ``live_from`` was stored."""
        junk = junk_reason(obj.key, self.images_prefix)
        if junk is not None and junk[0] != "outside_prefix":
            return RecordResult(obj.key, "skipped", error={"code": junk[0], "message": junk[1]}), False
        pk = object_pk(obj.bucket, obj.key)
        sk = version_sk(version_id=obj.version_id, etag=obj.etag, sequencer=BACKFILL_SEQUENCER, removed=False)
        existing = self.existing_record(obj)
        if existing is not None:
            result = RecordResult(obj.key, "duplicate", existing.status)
            stated = (
                live_from.for_record(existing.product_id, existing.listing_id, existing.event_time)
                if live_from
                else None
            )
            changed = (
                bool(stated) and stated != existing.live_from and self.records.set_live_from(pk, existing.sk, stated)
            )
            return result, changed
        event_time = (obj.last_modified or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
        event_time = event_time.replace("+00:00", "Z")
        parsed = parse_image_key(obj.key, self.images_prefix)
        stated = live_from.for_record(parsed.product_id, parsed.listing_id, event_time) if live_from else None
        outcome = self.classify_object(obj.bucket, obj.key, version_id=obj.version_id, etag=obj.etag)
        record = CategoryRecord.build(
            bucket=obj.bucket,
            key=obj.key,
            images_prefix=self.images_prefix,
            version_id=obj.version_id,
            etag=obj.etag,
            sequencer=BACKFILL_SEQUENCER,
            event_name="Backfill",
            event_time=event_time,
            source=SOURCE_BACKFILL,
            recorded_at=self.clock(),
            live_from=stated,
            **outcome,
        )
        if not self.records.put_if_absent(record):
            existing = self.records.get(pk, sk)
            return RecordResult(obj.key, "duplicate", existing.status if existing else None), False
        return result_of(record), stated is not None
