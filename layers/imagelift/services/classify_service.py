"""Classify uploaded photos from S3 events into ImageCategories records: exactly one result per photo version.

What happens to each record of an S3 event (parsed by imagelift.services.s3_events):

- ``ObjectCreated``: if the version already has a record from this or a newer event, nothing is done (duplicate
  or stale). Otherwise the object's size is checked (HEAD) against the classifier's byte limit, the exact version
  is read and classified, and the record is written conditionally on the event sequencer.
- ``ObjectRemoved``: the version's record (or a new tombstone for a delete marker) gets ``status = deleted``,
  again only if this event is newer than what the record holds.
- A :class:`~imagelift.errors.PermanentError` while reading or classifying the photo (empty, corrupt, truncated,
  unsupported, too large, gone before it could be read) is recorded ``failed`` with its ``error {code, message}``:
  retrying cannot help. A record this function cannot handle at all (neither created nor removed) is reported
  ``invalid`` and not written.
- Anything else (throttling, timeouts, 5xx from S3 or DynamoDB) is transient: the other records are still done,
  then :class:`TransientRecordError` is raised so Lambda retries the event; its duplicates are then no-ops, and
  what keeps failing lands in the on-failure queue.

Keys outside ``<images prefix><product_id>/<listing_id>/<file>`` are classified and recorded too, with
``matched = False`` and no product or listing id (the report leaves them out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from imagelift.adapters.categories_table import CategoriesTable
from imagelift.adapters.s3 import ObjectTooLarge, PhotoStore
from imagelift.errors import PermanentError
from imagelift.records.category_record import (
    SOURCE_EVENT,
    SOURCE_EVENT_WITHOUT_SEQUENCER,
    STATUS_CLASSIFIED,
    STATUS_DELETED,
    STATUS_FAILED,
    CategoryRecord,
)
from imagelift.records.keys import object_pk, version_sk
from imagelift.services.results import BatchSummary, RecordResult, TransientRecordError
from imagelift.services.s3_events import InvalidEventError, S3EventRecord, parse_s3_event

log = logging.getLogger(__name__)


class Classifier(Protocol):
    """What the service needs of imagelift.vision.cascade.Cascade."""

    def classify_bytes(self, data: bytes, name: str = "") -> Any: ...


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_of(record: CategoryRecord) -> RecordResult:
    """The result of a record that was written."""
    return RecordResult(record.key, record.status, record.status, record.category, record.error)


def not_written(existing: CategoryRecord | None, key: str, sequencer: str) -> RecordResult:
    """The result when the version's record was kept: the same event (duplicate) or a newer one (stale)."""
    outcome = "duplicate" if existing is not None and existing.sequencer == sequencer else "stale"
    return RecordResult(key, outcome, existing.status if existing else None)


def production_wiring(
    classifier: Classifier | None = None, environ: dict[str, str] | None = None, **storage: Any
) -> dict[str, Any]:
    """Constructor arguments of the ingest services as a deployed function has them; ``storage`` overrides
    StorageConfig fields. The cascade is loaded here (once) unless a classifier is given."""
    from imagelift.config import StorageConfig, VisionConfig

    vision = VisionConfig.from_env(environ)
    config = StorageConfig.from_env(environ, **storage)
    if classifier is None:
        from imagelift.vision.cascade import Cascade

        classifier = Cascade.load(vision)
    return {
        "classifier": classifier,
        "photos": PhotoStore(),
        "records": CategoriesTable(config.categories_table),
        "max_bytes": vision.max_bytes,
        "images_prefix": config.images_prefix,
    }


class ClassifyService:
    def __init__(
        self,
        classifier: Classifier,
        photos: PhotoStore,
        records: CategoriesTable,
        *,
        max_bytes: int,
        images_prefix: str,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.classifier = classifier
        self.photos = photos
        self.records = records
        self.max_bytes = max_bytes
        self.images_prefix = images_prefix
        self.clock = clock

    @classmethod
    def from_env(cls, classifier: Classifier | None = None, environ: dict[str, str] | None = None) -> ClassifyService:
        """Production wiring: models from VisionConfig (loaded here, once), table and prefix from StorageConfig."""
        return cls(**production_wiring(classifier, environ))

    # -- events ---------------------------------------------------------------------------------------------
    def handle_event(self, event: dict[str, Any]) -> BatchSummary:
        """Process every record; raise :class:`TransientRecordError` at the end if any needs a retry."""
        summary = BatchSummary()
        failures: list[tuple[str, BaseException]] = []
        for record in parse_s3_event(event):
            where = f"s3://{record.bucket}/{record.key}"
            try:
                result = self.process(record)
            except PermanentError as exc:  # a retry would fail the same way
                log.error("record %s cannot be handled: %s: %s", where, type(exc).__name__, exc)
                result = RecordResult(record.key, "invalid", error=exc.to_record())
            except Exception as exc:  # transient by elimination: the photo's permanent faults became failed records
                log.warning("record %s needs a retry: %s: %s", where, type(exc).__name__, exc)
                failures.append((where, exc))
                summary.retry.append(record.key)
                continue
            log.info("record %s: %s", where, result.outcome)
            summary.results.append(result)
        if failures:
            raise TransientRecordError(failures) from failures[0][1]
        return summary

    def process(self, record: S3EventRecord) -> RecordResult:
        if not (record.is_created or record.is_removed):
            raise InvalidEventError(f"event {record.event_name} is neither ObjectCreated nor ObjectRemoved")
        common = {
            "bucket": record.bucket,
            "key": record.key,
            "images_prefix": self.images_prefix,
            "version_id": record.version_id,
            "etag": record.etag,
            "sequencer": record.sequencer,
            "event_name": record.event_name,
            "event_time": record.event_time,
            "source": SOURCE_EVENT if record.sequencer_from_event else SOURCE_EVENT_WITHOUT_SEQUENCER,
            "recorded_at": self.clock(),
        }
        if record.is_removed:
            tombstone = CategoryRecord.build(status=STATUS_DELETED, **common)
            if self.records.mark_deleted_if_newer(tombstone):
                return RecordResult(record.key, STATUS_DELETED, STATUS_DELETED)
            return not_written(self.records.get(tombstone.pk, tombstone.sk), record.key, record.sequencer)

        pk = object_pk(record.bucket, record.key)
        sk = version_sk(version_id=record.version_id, etag=record.etag, sequencer=record.sequencer, removed=False)
        existing = self.records.get(pk, sk)
        if existing is not None and existing.sequencer >= record.sequencer:
            return not_written(existing, record.key, record.sequencer)

        outcome = self.classify_object(record.bucket, record.key, version_id=record.version_id, etag=record.etag)
        written = CategoryRecord.build(**common, **outcome)
        if not self.records.put_if_newer(written):
            return not_written(self.records.get(written.pk, written.sk), record.key, record.sequencer)
        return result_of(written)

    def classify_object(
        self, bucket: str, key: str, *, version_id: str | None = None, etag: str | None = None
    ) -> dict[str, Any]:
        """Outcome fields of one object version (see :func:`classify_object`)."""
        return classify_object(
            self.photos,
            self.classifier,
            bucket,
            key,
            max_bytes=self.max_bytes,
            clock=self.clock,
            version_id=version_id,
            etag=etag,
        )


def classify_object(
    photos: PhotoStore,
    classifier: Classifier,
    bucket: str,
    key: str,
    *,
    max_bytes: int,
    clock: Callable[[], str],
    version_id: str | None = None,
    etag: str | None = None,
) -> dict[str, Any]:
    """Outcome fields of one object version for :meth:`CategoryRecord.build`: ``status`` classified, or failed
    with ``error``; ``size_bytes``, ``classified_at`` and the classifier's fields.

    Raises only for transient faults (S3 errors other than not-found, and whatever the classifier raises besides
    a :class:`PermanentError`).
    """
    size: int | None = None
    try:
        size = photos.head(bucket, key, version_id=version_id, etag=etag).size
        ObjectTooLarge.check(size, max_bytes)  # refused before a byte is downloaded
        data = photos.read(bucket, key, max_bytes=max_bytes, version_id=version_id, etag=etag)
        result = classifier.classify_bytes(data, name=key)
    except PermanentError as exc:
        return {
            "status": STATUS_FAILED,
            "error": exc.to_record(),
            "size_bytes": exc.size if isinstance(exc, ObjectTooLarge) else size,
            "classified_at": clock(),
        }
    return {"status": STATUS_CLASSIFIED, "size_bytes": size, "classified_at": clock(), **result.to_record()}
