"""Classify uploaded photos from S3 events into ImageCategories records: exactly one result per photo version.

What happens to each record of an S3 event (every record, each key URL-decoded):

- ``ObjectCreated``: if the version already has a record from this or a newer event, nothing is done (duplicate
  or stale). Otherwise the object's size is checked (HEAD) against the classifier's byte limit, the exact version
  is read and classified, and the item is written conditionally on the event sequencer.
- ``ObjectRemoved``: the version's record (or a new tombstone for a delete marker) gets ``status = deleted``,
  again only if this event is newer than what the record holds.
- A photo that cannot be classified (:class:`ImageDecodeError`: empty, corrupt, truncated, unsupported, too large,
  or gone before it could be read) is recorded ``failed`` with ``error {code, message}``: retrying cannot help.
- Anything else (throttling, timeouts, 5xx from S3 or DynamoDB) is transient: the other records are still done,
  then :class:`TransientRecordError` is raised so Lambda retries the event; its duplicates are then no-ops, and
  what keeps failing lands in the on-failure queue.

Keys outside ``images/<product_id>/<listing_id>/<file>`` are classified and recorded too, with ``matched = False``
and no product or listing id (the report leaves them out).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from imagelift.adapters.categories_table import CategoriesTable
from imagelift.adapters.s3 import ObjectGone, ObjectTooLarge, PhotoStore

log = logging.getLogger(__name__)

ID_PATTERN = r"[A-Za-z0-9_.-]{1,128}"
SEQUENCER_WIDTH = 32
"""Sequencers are stored right-padded with zeros to this many hex digits (S3's are 16 to 20 today)."""


class InvalidEventError(ValueError):
    """The Lambda event is not an S3 notification this function understands."""


class TransientRecordError(RuntimeError):
    """Some records failed for a reason a retry can fix; Lambda retries the whole event (the rest are no-ops)."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        details = "; ".join(f"{key}: {type(exc).__name__}: {exc}" for key, exc in failures)
        super().__init__(f"{len(failures)} record(s) to retry: {details}")
        self.failures = failures


class Classifier(Protocol):
    """What the service needs of imagelift.vision.cascade.Cascade."""

    def classify_bytes(self, data: bytes, name: str = "") -> Any: ...


# ------------------------------------------------------------------ S3 events and keys


def normalize_sequencer(raw: str) -> str:
    """S3 sequencer -> a string whose order is event order: upper-case hex, right-padded with zeros.

    AWS: sequencers of one key compare as hex strings after right-padding the shorter with zeros.
    """
    value = raw.strip().upper()
    if not value or not re.fullmatch(r"[0-9A-F]+", value):
        raise InvalidEventError(f"S3 sequencer {raw!r} is not a hexadecimal string")
    return value.ljust(SEQUENCER_WIDTH, "0")


def sequencer_from_time(event_time: str) -> str:
    """Stand-in sequencer for events without one (moto's notifications): microseconds since the epoch, in hex."""
    moment = parse_time(event_time)
    return normalize_sequencer(f"{int(moment.timestamp() * 1_000_000):016X}")


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEventError(f"eventTime {text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ImageKey:
    product_id: str | None
    listing_id: str | None
    file_name: str

    @property
    def matched(self) -> bool:
        return self.product_id is not None


def parse_image_key(key: str, images_prefix: str = "images/") -> ImageKey:
    """``images/<product_id>/<listing_id>/<file>`` -> ids; any other key gives an unmatched ImageKey."""
    match = re.fullmatch(rf"{re.escape(images_prefix)}({ID_PATTERN})/({ID_PATTERN})/([^/]+)", key)
    if match:
        return ImageKey(match.group(1), match.group(2), match.group(3))
    return ImageKey(None, None, key.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class S3EventRecord:
    event_name: str
    """Without the ``s3:`` prefix, e.g. ``ObjectCreated:Put``, ``ObjectRemoved:DeleteMarkerCreated``."""
    event_time: str
    bucket: str
    key: str
    """URL-decoded."""
    sequencer: str
    """Normalised (:func:`normalize_sequencer`)."""
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer_from_event: bool = True

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated")

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved")


def parse_s3_event(event: dict[str, Any]) -> list[S3EventRecord]:
    """Every record of an S3 notification, keys URL-decoded (``+`` is a space). S3's test event has none."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"event is a {type(event).__name__}, not an S3 notification object")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("event has no Records list: not an S3 notification")
    parsed = []
    for index, record in enumerate(records):
        try:
            if record.get("eventSource") != "aws:s3":
                raise InvalidEventError(f"eventSource is {record.get('eventSource')!r}, not aws:s3")
            s3 = record["s3"]
            obj = s3["object"]
            event_time = record["eventTime"]
            raw_sequencer = obj.get("sequencer")
            version_id = obj.get("versionId") or None
            parsed.append(
                S3EventRecord(
                    event_name=record["eventName"].removeprefix("s3:"),
                    event_time=event_time,
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    sequencer=normalize_sequencer(raw_sequencer) if raw_sequencer else sequencer_from_time(event_time),
                    version_id=None if version_id == "null" else version_id,
                    etag=(obj.get("eTag") or "").strip('"') or None,
                    size=int(obj["size"]) if obj.get("size") is not None else None,
                    sequencer_from_event=bool(raw_sequencer),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidEventError(f"record {index} of the S3 event lacks {exc}") from exc
        except InvalidEventError as exc:
            raise InvalidEventError(f"record {index}: {exc}") from exc
    return parsed


def object_pk(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def version_sk(*, version_id: str | None, etag: str | None, sequencer: str, removed: bool) -> str:
    """Which item a record belongs to: the object version (see imagelift.adapters.categories_table)."""
    if version_id:
        return f"v#{version_id}"
    if etag and not removed:
        return f"etag#{etag}"
    return f"delete#{sequencer}"


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RecordResult:
    key: str
    outcome: str
    """classified | failed | deleted | duplicate (same event already recorded) | stale (a newer event was)."""
    status: str | None = None
    category: int | None = None
    error: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class BatchSummary:
    results: list[RecordResult] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        if self.retry:
            counts["retry"] = len(self.retry)
        return dict(counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": len(self.results) + len(self.retry),
            "counts": self.counts,
            "results": [r.to_dict() for r in self.results],
            "retry": self.retry,
        }


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ the service


class ClassifyService:
    def __init__(
        self,
        classifier: Classifier,
        photos: PhotoStore,
        records: CategoriesTable,
        *,
        max_bytes: int,
        images_prefix: str = "images/",
        clock: Callable[[], str] = _utc_now,
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
        from imagelift.config import StorageConfig, VisionConfig

        vision = VisionConfig.from_env(environ)
        storage = StorageConfig.from_env(environ)
        if classifier is None:
            from imagelift.vision.cascade import Cascade

            classifier = Cascade.load(vision)
        return cls(
            classifier,
            PhotoStore(),
            CategoriesTable(storage.categories_table),
            max_bytes=vision.max_bytes,
            images_prefix=storage.images_prefix,
        )

    # -- events ---------------------------------------------------------------------------------------------
    def handle_event(self, event: dict[str, Any]) -> BatchSummary:
        """Process every record; raise :class:`TransientRecordError` at the end if any needs a retry."""
        summary = BatchSummary()
        failures: list[tuple[str, BaseException]] = []
        for record in parse_s3_event(event):
            try:
                result = self.process(record)
            except Exception as exc:  # transient by elimination: known permanent faults became failed records
                log.warning(
                    "record s3://%s/%s needs a retry: %s: %s", record.bucket, record.key, type(exc).__name__, exc
                )
                failures.append((f"s3://{record.bucket}/{record.key}", exc))
                summary.retry.append(record.key)
                continue
            log.info("record s3://%s/%s: %s", record.bucket, record.key, result.outcome)
            summary.results.append(result)
        if failures:
            raise TransientRecordError(failures) from failures[0][1]
        return summary

    def process(self, record: S3EventRecord) -> RecordResult:
        pk = object_pk(record.bucket, record.key)
        sk = version_sk(
            version_id=record.version_id, etag=record.etag, sequencer=record.sequencer, removed=record.is_removed
        )
        image_key = parse_image_key(record.key, self.images_prefix)
        base = {
            "bucket": record.bucket,
            "key": record.key,
            "version_id": record.version_id,
            "sequencer": record.sequencer,
            "event_name": record.event_name,
            "event_time": record.event_time,
            "source": "s3_event" if record.sequencer_from_event else "s3_event_without_sequencer",
            "recorded_at": self.clock(),
            **self._key_fields(image_key),
        }
        if record.is_removed:
            written = self.records.mark_deleted_if_newer(pk, sk, base)
            return RecordResult(record.key, "deleted", "deleted") if written else self._not_written(record, pk, sk)
        if not record.is_created:
            raise InvalidEventError(f"event {record.event_name} is neither ObjectCreated nor ObjectRemoved")

        existing = self.records.get(pk, sk)
        if existing is not None and existing.get("sequencer", "") >= record.sequencer:
            outcome = "duplicate" if existing["sequencer"] == record.sequencer else "stale"
            return RecordResult(record.key, outcome, existing.get("status"))

        item = {
            "pk": pk,
            "sk": sk,
            **base,
            "etag": record.etag,
            **self.classify_object(record.bucket, record.key, version_id=record.version_id, etag=record.etag),
        }
        if not self.records.put_if_newer(_without_none(item)):
            return self._not_written(record, pk, sk)
        return RecordResult(record.key, item["status"], item["status"], item.get("category"), item.get("error"))

    def _not_written(self, record: S3EventRecord, pk: str, sk: str) -> RecordResult:
        existing = self.records.get(pk, sk) or {}
        outcome = "duplicate" if existing.get("sequencer") == record.sequencer else "stale"
        return RecordResult(record.key, outcome, existing.get("status"))

    @staticmethod
    def _key_fields(image_key: ImageKey) -> dict[str, Any]:
        fields: dict[str, Any] = {"matched": image_key.matched, "file_name": image_key.file_name}
        if image_key.matched:
            fields.update(product_id=image_key.product_id, listing_id=image_key.listing_id)
        return fields

    # -- one object -----------------------------------------------------------------------------------------
    def classify_object(
        self, bucket: str, key: str, *, version_id: str | None = None, etag: str | None = None
    ) -> dict[str, Any]:
        """Classification fields of one object version: ``status`` classified or failed (with ``error``).

        Raises only for transient faults (S3 errors other than not-found, and whatever the classifier raises
        besides ImageDecodeError).
        """
        from imagelift.vision.image_io import ImageDecodeError

        size: int | None = None
        try:
            size = self.photos.head(bucket, key, version_id=version_id, etag=etag).size
            if size > self.max_bytes:  # refused before a byte is downloaded
                raise ImageDecodeError("too_large", f"{size} bytes, more than the {self.max_bytes} accepted")
            data = self.photos.read(bucket, key, max_bytes=self.max_bytes, version_id=version_id, etag=etag)
            result = self.classifier.classify_bytes(data, name=key)
        except ImageDecodeError as exc:
            return self._failed(exc.code, exc.message, size=size)
        except ObjectTooLarge as exc:
            return self._failed("too_large", str(exc), size=exc.size)
        except ObjectGone as exc:
            return self._failed("object_gone", str(exc), size=size)
        return {"status": "classified", "size_bytes": size, "classified_at": self.clock(), **result.to_record()}

    def _failed(self, code: str, message: str, *, size: int | None) -> dict[str, Any]:
        return {
            "status": "failed",
            "error": {"code": code, "message": message},
            "size_bytes": size,
            "classified_at": self.clock(),
        }

    # -- backfill -------------------------------------------------------------------------------------------
    def record_existing_object(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None, last_modified: datetime | None
    ) -> RecordResult:
        """Classify an object no event told us about (backfill); written only if its version has no record."""
        pk = object_pk(bucket, key)
        sk = version_sk(version_id=version_id, etag=etag, sequencer="", removed=False)
        existing = self.records.get(pk, sk)
        if existing is not None:
            return RecordResult(key, "duplicate", existing.get("status"))
        event_time = (last_modified or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
        item = {
            "pk": pk,
            "sk": sk,
            "bucket": bucket,
            "key": key,
            "version_id": version_id,
            "etag": etag,
            "sequencer": "",
            "event_name": "Backfill",
            "event_time": event_time.replace("+00:00", "Z"),
            "source": "backfill",
            "recorded_at": self.clock(),
            **self._key_fields(parse_image_key(key, self.images_prefix)),
            **self.classify_object(bucket, key, version_id=version_id, etag=etag),
        }
        if not self.records.put_if_absent(_without_none(item)):
            existing = self.records.get(pk, sk) or {}
            return RecordResult(key, "duplicate", existing.get("status"))
        return RecordResult(key, item["status"], item["status"], item.get("category"), item.get("error"))


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}
