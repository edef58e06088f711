"""Classify the photos a bucket already holds (uploaded before deployment, or whose events were lost).

Lists the current object versions under a prefix and records each one that has no record yet, with the same
classification and item layout as the S3 events (``source = backfill``, ``sequencer`` empty so that any real event
for the same version supersedes it). Versions that have a record are skipped with one GetItem, so a rerun only does
what is missing; a transient fault is counted and left for the next run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from imagelift.adapters.s3 import ObjectInfo
from imagelift.services.classify_service import ClassifyService, RecordResult


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
            "categories": {str(k): v for k, v in sorted(self.categories.items())},
            "errors": [{"key": k, "error": e} for k, e in self.errors],
            "seconds": round(self.seconds, 2),
        }


Progress = Callable[[int, int, str, RecordResult | None], None]
"""progress(done, total, key, result or None when the object hit an error)."""


def backfill(
    service: ClassifyService,
    bucket: str,
    prefix: str = "images/",
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> BackfillSummary:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    started = time.perf_counter()
    summary = BackfillSummary(bucket=bucket, prefix=prefix)
    objects = [obj for obj in service.photos.current_objects(bucket, prefix) if not obj.key.endswith("/")]
    summary.listed = len(objects)

    def one(obj: ObjectInfo) -> tuple[ObjectInfo, RecordResult | None, str | None]:
        try:
            result = service.record_existing_object(
                bucket, obj.key, version_id=obj.version_id, etag=obj.etag, last_modified=obj.last_modified
            )
        except Exception as exc:  # transient (throttling, timeouts, 5xx): counted, the next run retries it
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
