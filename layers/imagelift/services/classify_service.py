"""Classify uploaded photos from S3 events into ImageCategories records: exactly one result per photo version.

What happens to each record of an event (read by imagelift.services.s3_events: direct S3 notifications,
EventBridge events, and either of them in SQS messages):

- Not a photo (imagelift.records.keys.junk_reason: folder markers, OS metadata files, keys outside the images
  prefix) or an event that changes no photo (ObjectRestore, tagging, ...): ``skipped``, with a log line and a
  metric per reason, nothing written.
- ``ObjectCreated``: if the version already has a record from this or a newer event, nothing is done (duplicate
  or stale). Otherwise the object's size is checked (HEAD) against the classifier's byte limit, the exact version
  is read and classified, and the record is written conditionally on the event sequencer.
- ``ObjectRemoved`` / ``LifecycleExpiration``: the version's record (or a new tombstone for a delete marker) gets
  ``status = deleted`` and ``deleted_at``, again only if this event is newer than what the record holds. A
  permanent delete of a version keeps the record's upload ``event_time``, so its history stays in the report.
- A failure that can never succeed (imagelift.adapters.faults.is_transient is False: an unreadable photo, a
  malformed record, a key S3 or DynamoDB refuses, running out of memory) is recorded ``failed`` with its
  ``error {code, message}`` wherever a bucket and key are known, and counted ``invalid`` where they are not; it
  never fails the event.
- A transient fault (throttling, timeouts, 5xx): the other records are still done, then
  :class:`TransientRecordError` is raised so Lambda retries the event (or SQS redelivers that message); its
  duplicates are then no-ops, and what keeps failing lands in the failure queue.

Keys under ``<images prefix>`` that do not follow ``<product_id>/<listing_id>/<file>`` are classified and recorded
too, with ``matched = False`` and no product or listing id (the report leaves them out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, Self

from imagelift.adapters.categories_table import CategoriesTable
from imagelift.adapters.faults import is_transient
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
from imagelift.records.keys import (
    BACKFILL_SEQUENCER,
    InvalidSequencerError,
    junk_reason,
    object_pk,
    sequencer_from_time,
    version_sk,
)
from imagelift.services.results import BatchSummary, RecordResult, TransientRecordError
from imagelift.services.s3_events import (
    InvalidEventError,
    MalformedRecord,
    S3EventRecord,
    is_sqs_batch,
    read_notification,
    sqs_body,
)

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


class PhotoService:
    """What every ingest service holds: the classifier, the photo store, the records table, and how one object
    version becomes a record's outcome fields."""

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
    def from_env(
        cls, classifier: Classifier | None = None, environ: dict[str, str] | None = None, **storage: Any
    ) -> Self:
        """Production wiring as the classify function has it: models from VisionConfig (loaded here, once), table
        and prefix from StorageConfig; ``storage`` overrides StorageConfig fields."""
        return cls(**production_wiring(classifier, environ, **storage))

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


class ClassifyService(PhotoService):
    """One invocation's S3 events -> one record per photo version (see the module's docstring)."""

    # -- events ---------------------------------------------------------------------------------------------
    def handle_delivery(self, event: Any, context: Any = None) -> tuple[dict[str, Any], BatchSummary]:
        """Whatever the function was invoked with -> (what the handler returns, what was done).

        An SQS batch is processed message by message with powertools' batch processing: a message with a
        transient fault is reported in ``batchItemFailures`` (SQS redelivers only that one, then its redrive
        policy moves it to the failure queue). Anything else goes to :meth:`handle_event`, which raises
        :class:`TransientRecordError` for Lambda's own retries.
        """
        if not is_sqs_batch(event):
            summary = self.handle_event(event)
            return summary.to_dict(), summary
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        total = BatchSummary()

        def one_message(record: Any) -> None:
            try:
                notification = sqs_body(record.body)
            except InvalidEventError as exc:  # a message that can never be read: counted, not redelivered
                total.merge(self.invalid_event(exc))
                return
            try:
                total.merge(self.handle_event(notification))
            except TransientRecordError as exc:
                total.merge(exc.summary)
                raise

        response = process_partial_response(
            event=event, record_handler=one_message, processor=BatchProcessor(event_type=EventType.SQS), context=context
        )
        return dict(response), total

    def handle_event(self, event: Any) -> BatchSummary:
        """Process every record; raise :class:`TransientRecordError` at the end if any needs a retry."""
        try:
            notification = read_notification(event)
        except InvalidEventError as exc:
            return self.invalid_event(exc)
        summary = BatchSummary()
        failures: list[tuple[str, BaseException]] = []
        work: list[S3EventRecord | MalformedRecord] = [*notification.malformed, *notification.records]
        for record in work:
            where = f"s3://{record.bucket}/{record.key}"
            try:
                if isinstance(record, MalformedRecord):
                    result = self.record_malformed(record)
                else:
                    result = self.process_safely(record)
            except Exception as exc:
                if not is_transient(exc):  # the failure could not even be recorded: counted, never retried
                    result = RecordResult(record.key or "", "invalid", error=_error_record(exc))
                    _log_result(where, record, result)
                    summary.results.append(result)
                    continue
                log.warning(
                    "record %s needs a retry: %s: %s",
                    where,
                    type(exc).__name__,
                    exc,
                    extra={"bucket": record.bucket, "key": record.key, "outcome": "retry"},
                )
                failures.append((where, exc))
                summary.retry.append(record.key or "")
                continue
            _log_result(where, record, result)
            summary.results.append(result)
        if failures:
            raise TransientRecordError(failures, summary) from failures[0][1]
        return summary

    def invalid_event(self, exc: InvalidEventError) -> BatchSummary:
        log.error("event refused: %s", exc, extra={"outcome": "invalid", "reason": exc.code})
        return BatchSummary(results=[RecordResult("", "invalid", error=exc.to_record())])

    def process_safely(self, record: S3EventRecord) -> RecordResult:
        """:meth:`process`, with a permanent failure recorded ``failed`` instead of raised."""
        try:
            return self.process(record)
        except Exception as exc:
            if is_transient(exc):
                raise
            error = _error_record(exc)
            log.error("record s3://%s/%s failed for good: %s", record.bucket, record.key, error["message"])
        malformed = MalformedRecord(
            index=0,
            error=InvalidEventError(error["message"]),
            bucket=record.bucket,
            key=record.key,
            event_name=record.event_name,
            event_time=record.event_time,
            version_id=record.version_id,
        )
        return self.record_failure(malformed, error, sequencer=record.sequencer, etag=record.etag)

    def record_malformed(self, record: MalformedRecord) -> RecordResult:
        """A record that cannot be read: a ``failed`` item where its bucket and key are known, else ``invalid``."""
        return self.record_failure(record, record.error.to_record())

    def record_failure(
        self, record: MalformedRecord, error: dict[str, str], *, sequencer: str | None = None, etag: str | None = None
    ) -> RecordResult:
        if not (record.bucket and record.key):
            return RecordResult(record.key or "", "invalid", error=error)
        if junk_reason(record.key, self.images_prefix) is not None:
            return RecordResult(record.key, "skipped", error=error)
        event_time = record.event_time or self.clock()
        if sequencer is None:
            try:
                sequencer = sequencer_from_time(event_time)
            except InvalidSequencerError:
                sequencer, event_time = BACKFILL_SEQUENCER, self.clock()
        failed = CategoryRecord.build(
            bucket=record.bucket,
            key=record.key,
            images_prefix=self.images_prefix,
            version_id=record.version_id,
            etag=etag,
            sequencer=sequencer,
            event_name=record.event_name,
            event_time=event_time,
            source=SOURCE_EVENT,
            recorded_at=self.clock(),
            status=STATUS_FAILED,
            error=error,
            classified_at=self.clock(),
        )
        try:
            written = self.records.put_if_newer(failed)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.error("the failed record of s3://%s/%s cannot be stored either: %s", record.bucket, record.key, exc)
            return RecordResult(record.key, "invalid", error=error)
        if not written:
            return not_written(self.records.get(failed.pk, failed.sk), record.key, sequencer)
        return result_of(failed)

    def process(self, record: S3EventRecord) -> RecordResult:
        junk = junk_reason(record.key, self.images_prefix)
        if junk is not None:
            return RecordResult(record.key, "skipped", error={"code": junk[0], "message": junk[1]})
        if not (record.is_created or record.is_removed):
            message = f"{record.event_name} changes no photo (only uploads and deletes do)"
            return RecordResult(record.key, "skipped", error={"code": "unhandled_event", "message": message})
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
            tombstone = CategoryRecord.build(status=STATUS_DELETED, deleted_at=record.event_time, **common)
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

    Raises for S3 errors other than not-found and whatever the classifier raises besides a
    :class:`PermanentError` or a ``MemoryError`` (which is ``too_large``: the same photo would run out again).
    """
    size: int | None = None
    try:
        size = photos.head(bucket, key, version_id=version_id, etag=etag).size
        ObjectTooLarge.check(size, max_bytes)  # refused before a byte is downloaded
        data = photos.read(bucket, key, max_bytes=max_bytes, version_id=version_id, etag=etag)
        result = classifier.classify_bytes(data, name=key)
    except MemoryError:
        return {
            "status": STATUS_FAILED,
            "error": {"code": "too_large", "message": "classifying the photo ran out of memory"},
            "size_bytes": size,
            "classified_at": clock(),
        }
    except PermanentError as exc:
        return {
            "status": STATUS_FAILED,
            "error": exc.to_record(),
            "size_bytes": exc.size if isinstance(exc, ObjectTooLarge) else size,
            "classified_at": clock(),
        }
    return {"status": STATUS_CLASSIFIED, "size_bytes": size, "classified_at": clock(), **result.to_record()}


def _error_record(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, PermanentError):
        return exc.to_record()
    if isinstance(exc, MemoryError):
        return {"code": "too_large", "message": "ran out of memory"}
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return {"code": "refused", "message": f"{type(exc).__name__}: {code or exc}"}


def _log_result(where: str, record: S3EventRecord | MalformedRecord, result: RecordResult) -> None:
    fields = {"bucket": record.bucket, "key": record.key, "event_name": record.event_name, "outcome": result.outcome}
    if result.error:
        fields["reason"] = result.error["code"]
    if result.outcome == "skipped":
        log.info("record %s skipped: %s", where, result.error["message"] if result.error else "", extra=fields)
    elif result.outcome == "invalid" or isinstance(record, MalformedRecord):
        log.error("record %s: %s (%s)", where, result.outcome, result.error, extra=fields)
    else:
        log.info("record %s: %s", where, result.outcome, extra=fields)
