"""Re-classify recorded photos after a model or threshold change: each record is rewritten as a new version of itself.

Which photos: every current object under a prefix of the uploads bucket (listed as the backfill lists them) whose
record was decided by other models or thresholds than the classifier now loaded (``models`` / ``thresholds``
differ), or every recorded photo with ``all_records``. Photos without a record are counted ``unrecorded`` and left
to ``imagelift backfill``; deleted ones are never touched.

What is written: the same item (same key, version, sequencer and event time, so the report's as-of join places it
where it was) with the new outcome, ``revision`` one higher, and an entry appended to ``reclassifications``:
``{at, reason, run_id, previous}`` where ``previous`` is the outcome it replaces. The write is conditional on the
item being unchanged since it was read (:meth:`CategoriesTable.replace_if_unchanged`): an event or a delete that
lands meanwhile wins, and is counted ``changed``.

Idempotent and resumable: a rewritten record carries the current models and thresholds, so a rerun skips it
(``current``); with ``all_records`` a rerun with the same ``run_id`` skips what that run already did. Transient
faults are counted in ``errors`` and left for the rerun, as in the backfill.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from imagelift.adapters.s3 import ObjectInfo
from imagelift.records.category_record import STATUS_CLASSIFIED, STATUS_DELETED, CategoryRecord
from imagelift.services.backfill import BackfillService, BackfillSummary, Progress
from imagelift.services.classify_service import result_of
from imagelift.services.results import RecordResult

REASON_ALL = "all"
"""The reason of a forced re-classification (``all_records``)."""
SKIPPED_OUTCOMES = ("current", "unrecorded", "deleted", "already_done", "changed")
"""Outcomes that wrote nothing: up to date, no record yet, deleted, done earlier in this run, changed meanwhile."""

PREVIOUS_FIELDS = (
    "status",
    "category",
    "category_name",
    "decided_by",
    "models",
    "thresholds",
    "classified_at",
    "error",
)
"""What a ``reclassifications`` entry keeps of the outcome it replaces."""


class VersionedClassifier(Protocol):
    """The classifier (imagelift.vision.cascade.Cascade) with the ids of its models and its thresholds."""

    models: Mapping[str, str]
    thresholds: Mapping[str, Any]

    def classify_bytes(self, data: bytes, name: str = "") -> Any: ...


def _differences(name: str, recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    recorded = recorded or {}
    changed = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if old != new and not (isinstance(old, int | float) and isinstance(new, int | float) and float(old) == new):
            changed.append(f"{name}.{key} {old!r} -> {new!r}")
    return changed


def drift(record: CategoryRecord, models: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str | None:
    """Why ``record`` is out of date with the classifier (its models or thresholds differ), or None when it is not.

    Only classified records carry models and thresholds; a failed one is re-tried with ``all_records`` alone.
    """
    if record.status != STATUS_CLASSIFIED:
        return None
    changes = _differences("models", record.models, models) + _differences("thresholds", record.thresholds, thresholds)
    return "; ".join(changes) or None


@dataclass
class ReclassifySummary(BackfillSummary):
    run_id: str = ""
    all_records: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    """Reason -> photos re-classified for it."""
    moved: dict[str, int] = field(default_factory=dict)
    """``"<old category>-><new category>"`` -> photos whose category changed."""

    def to_dict(self) -> dict[str, Any]:
        written = self.outcomes["classified"] + self.outcomes["failed"]
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "run_id": self.run_id,
            "all": self.all_records,
            "listed": self.listed,
            "reclassified": written,
            "classified": self.outcomes["classified"],
            "failed": self.outcomes["failed"],
            **{outcome: self.outcomes[outcome] for outcome in SKIPPED_OUTCOMES},
            "categories": {str(k): v for k, v in sorted(self.categories.items())},
            "category_changes": dict(sorted(self.moved.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "errors": [{"key": k, "error": e} for k, e in self.errors],
            "seconds": round(self.seconds, 2),
        }


class ReclassifyService(BackfillService):
    """The backfill's listing, fan-out and counting, with a rewrite of out-of-date records instead of a first one."""

    classifier: VersionedClassifier

    def run(  # type: ignore[override]
        self,
        bucket: str,
        prefix: str,
        *,
        all_records: bool = False,
        run_id: str | None = None,
        concurrency: int = 4,
        progress: Progress | None = None,
    ) -> ReclassifySummary:
        """Re-classify the out-of-date records under ``prefix`` (every record with ``all_records``).

        ``run_id`` names the run in each rewritten record; pass an earlier run's id to resume it.
        """
        summary = ReclassifySummary(
            bucket=bucket, prefix=prefix, run_id=run_id or uuid.uuid4().hex[:12], all_records=all_records
        )
        lock = threading.Lock()

        def handle(obj: ObjectInfo) -> RecordResult:
            result, reason, moved = self.reclassify_object(obj, all_records=all_records, run_id=summary.run_id)
            if reason is not None:
                with lock:
                    summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
                    if moved is not None:
                        summary.moved[moved] = summary.moved.get(moved, 0) + 1
            return result

        return self.for_each_object(summary, handle, concurrency=concurrency, progress=progress)

    def reclassify_object(
        self, obj: ObjectInfo, *, all_records: bool, run_id: str
    ) -> tuple[RecordResult, str | None, str | None]:
        """(result, the reason it was re-classified or None, ``"a->b"`` when its category changed)."""
        existing = self.existing_record(obj)
        if existing is None:
            return RecordResult(obj.key, "unrecorded"), None, None
        if existing.status == STATUS_DELETED:
            return RecordResult(obj.key, "deleted", existing.status), None, None
        reason = drift(existing, self.classifier.models, self.classifier.thresholds)
        if all_records:
            done = [entry for entry in existing.reclassifications or () if entry.get("run_id") == run_id]
            if done:
                return RecordResult(obj.key, "already_done", existing.status, existing.category), None, None
            reason = REASON_ALL if reason is None else f"{REASON_ALL}; {reason}"
        elif reason is None:
            return RecordResult(obj.key, "current", existing.status, existing.category), None, None

        outcome = self.classify_object(
            existing.bucket, existing.key, version_id=existing.version_id, etag=existing.etag
        )
        now = self.clock()
        previous = {name: value for name, value in existing.to_item().items() if name in PREVIOUS_FIELDS}
        entry = {"at": now, "reason": reason, "run_id": run_id, "previous": previous}
        kept = {k: v for k, v in existing.extra.items() if k not in outcome}
        record = CategoryRecord.build(
            **kept,
            bucket=existing.bucket,
            key=existing.key,
            images_prefix=self.images_prefix,
            version_id=existing.version_id,
            etag=existing.etag,
            sequencer=existing.sequencer,
            event_name=existing.event_name,
            event_time=existing.event_time,
            source=existing.source,
            # what people said of the photo is not the classifier's to replace
            correction=existing.correction,
            live_from=existing.live_from,
            recorded_at=now,
            revision=(existing.revision or 1) + 1,
            reclassifications=[*(existing.reclassifications or ()), entry],
            **outcome,
        )
        if not self.records.replace_if_unchanged(record, existing):
            return RecordResult(obj.key, "changed", existing.status), None, None
        moved = None
        if record.category != existing.category:
            moved = f"{existing.category or existing.status}->{record.category or record.status}"
        return result_of(record), reason, moved
