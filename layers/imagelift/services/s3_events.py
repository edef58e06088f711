"""What AWS delivers about the uploads bucket -> :class:`S3EventRecord`s, keys URL-decoded (``+`` is a space).

Three deliveries carry the same facts, and all three are understood:

- a direct S3 notification (``{"Records": [{"eventSource": "aws:s3", ...}]}``; S3's ``s3:TestEvent`` has none);
- an EventBridge event from S3 (``"source": "aws.s3"``, ``"detail-type": "Object Created"`` / ``"Object Deleted"``
  / others), read with powertools' ``S3EventBridgeNotificationEvent``;
- either of those as the body of an SQS message (``{"Records": [{"eventSource": "aws:sqs", "body": ...}]}``, also
  through SNS), which :func:`is_sqs_batch` recognises so the caller can answer with a partial batch response.

A record that cannot be read never spoils the others: :func:`read_notification` returns it as a
:class:`MalformedRecord` (with whatever bucket, key and time could be read, so it can still be recorded ``failed``).
Only an event that is none of these shapes at all raises :class:`InvalidEventError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

from imagelift.errors import PermanentError
from imagelift.records.keys import InvalidSequencerError, normalize_sequencer, sequencer_from_time


class InvalidEventError(PermanentError, ValueError):
    """The Lambda event, or one record of it, is not an S3 notification this function understands."""

    code = "invalid_event"


class UndecodableKeyError(InvalidEventError):
    """The key's URL encoding does not decode to UTF-8 text: no S3 object can be named by it."""

    code = "undecodable_key"


CREATED_PREFIXES = ("ObjectCreated:",)
REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")
"""A lifecycle expiration deletes the object (or adds a delete marker) like a seller's delete does."""


@dataclass(frozen=True)
class S3EventRecord:
    event_name: str
    """Without the ``s3:`` prefix, e.g. ``ObjectCreated:Put``, ``ObjectRemoved:DeleteMarkerCreated``."""
    event_time: str
    bucket: str
    key: str
    """URL-decoded."""
    sequencer: str
    """Normalised (imagelift.records.keys.normalize_sequencer)."""
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer_from_event: bool = True

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith(CREATED_PREFIXES)

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith(REMOVED_PREFIXES)

    @property
    def removes_version(self) -> bool:
        """A permanent delete of one version (its record then ends the photo but keeps its history)."""
        return self.is_removed and not self.event_name.endswith("DeleteMarkerCreated") and self.version_id is not None


@dataclass(frozen=True)
class MalformedRecord:
    """A record that cannot be handled as it is, with what could be read of it."""

    index: int
    error: InvalidEventError
    bucket: str | None = None
    key: str | None = None
    event_name: str | None = None
    event_time: str | None = None
    version_id: str | None = None


@dataclass
class Notification:
    records: list[S3EventRecord] = field(default_factory=list)
    malformed: list[MalformedRecord] = field(default_factory=list)


def is_sqs_batch(event: Any) -> bool:
    """Messages from an SQS queue (each body an S3 notification or an EventBridge event)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs"


def sqs_body(body: str) -> dict[str, Any]:
    """The notification an SQS message carries (unwrapping SNS if the queue is subscribed to a topic)."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            message = json.loads(message["Message"])
    except (TypeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"the SQS message body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise InvalidEventError(f"the SQS message body is a {type(message).__name__}, not a notification")
    return message


def read_notification(event: Any) -> Notification:
    """Every record of a direct S3 notification or an S3 EventBridge event; unreadable records set aside."""
    if not isinstance(event, dict):
        raise InvalidEventError(f"event is a {type(event).__name__}, not an S3 notification object")
    if event.get("Event") == "s3:TestEvent":
        return Notification()
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return _from_eventbridge(event)
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("event has no Records list and is no S3 EventBridge event: not an S3 notification")
    notification = Notification()
    for index, record in enumerate(records):
        try:
            notification.records.append(_parse_record(record))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            error = exc if isinstance(exc, InvalidEventError) else InvalidEventError(_what_is_wrong(exc))
            notification.malformed.append(_salvage(index, record, error))
    return notification


def parse_s3_event(event: Any) -> list[S3EventRecord]:
    """Every record, or :class:`InvalidEventError` naming the first that cannot be read (for tools and tests)."""
    notification = read_notification(event)
    if notification.malformed:
        first = notification.malformed[0]
        raise InvalidEventError(f"record {first.index} of the S3 event: {first.error}") from first.error
    return notification.records


def _what_is_wrong(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the record lacks {exc}"
    return f"the record is malformed ({type(exc).__name__}: {exc})"


def decode_key(raw: str) -> str:
    """S3 URL-encodes keys in notifications (``+`` for a space); the bytes must be UTF-8."""
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodableKeyError(f"the key {raw!r} does not URL-decode to UTF-8 ({exc.reason})") from exc


def _sequencer(raw: Any, event_time: str) -> tuple[str, bool]:
    try:
        if raw:
            return normalize_sequencer(str(raw)), True
        return sequencer_from_time(event_time), False
    except InvalidSequencerError as exc:
        raise InvalidEventError(str(exc)) from exc


def _parse_record(record: Any) -> S3EventRecord:
    if not isinstance(record, dict):
        raise InvalidEventError(f"the record is a {type(record).__name__}, not an object")
    if record.get("eventSource") != "aws:s3":
        raise InvalidEventError(f"eventSource is {record.get('eventSource')!r}, not aws:s3")
    s3 = record["s3"]
    obj = s3["object"]
    event_time = record["eventTime"]
    if not isinstance(event_time, str):
        raise InvalidEventError(f"eventTime {event_time!r} is not a time")
    sequencer, from_event = _sequencer(obj.get("sequencer"), event_time)
    version_id = obj.get("versionId") or None
    return S3EventRecord(
        event_name=str(record["eventName"]).removeprefix("s3:"),
        event_time=event_time,
        bucket=s3["bucket"]["name"],
        key=decode_key(obj["key"]),
        sequencer=sequencer,
        version_id=None if version_id == "null" else version_id,
        etag=(obj.get("eTag") or "").strip('"') or None,
        size=int(obj["size"]) if obj.get("size") is not None else None,
        sequencer_from_event=from_event,
    )


def _salvage(index: int, record: Any, error: InvalidEventError) -> MalformedRecord:
    """What can still be read of a malformed record: enough, when its key is readable, to record it failed."""

    def dig(*path: str) -> Any:
        value = record
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        return value

    bucket, raw_key = dig("s3", "bucket", "name"), dig("s3", "object", "key")
    key = None
    if isinstance(raw_key, str) and raw_key:
        try:
            key = decode_key(raw_key)
        except UndecodableKeyError:
            key = raw_key  # recorded under the key as delivered: the only name there is
    event_time, event_name = dig("eventTime"), dig("eventName")
    version_id = dig("s3", "object", "versionId") or dig("s3", "object", "version-id")
    return MalformedRecord(
        index=index,
        error=error,
        bucket=bucket if isinstance(bucket, str) and bucket else None,
        key=key,
        event_name=str(event_name).removeprefix("s3:") if event_name else None,
        event_time=event_time if isinstance(event_time, str) else None,
        version_id=version_id if isinstance(version_id, str) and version_id != "null" else None,
    )


# EventBridge names what happened in words; the S3 notification names it as event types.
_DELETION_TYPES = {"Permanently Deleted": "Delete", "Delete Marker Created": "DeleteMarkerCreated"}


def _from_eventbridge(event: dict[str, Any]) -> Notification:
    wrapped = S3EventBridgeNotificationEvent(event)
    try:
        detail = wrapped.detail
        obj = detail.object
        event_time = wrapped.time
        kind = wrapped.detail_type
        reason = detail.reason or ""
        if kind == "Object Created":
            name = "ObjectCreated:" + {"PutObject": "Put", "POST Object": "Post", "CopyObject": "Copy"}.get(
                reason, reason or "Put"
            )
        elif kind == "Object Deleted":
            prefix = "LifecycleExpiration:" if reason == "Lifecycle Expiration" else "ObjectRemoved:"
            name = prefix + _DELETION_TYPES.get(detail.deletion_type or "", "Delete")
        else:  # Object Restore Completed, Object Tags Added, ...: not a change of the photo
            name = f"EventBridge:{kind}"
        sequencer, from_event = _sequencer(obj.get("sequencer"), event_time)
        version_id = obj.get("version-id") or None
        record = S3EventRecord(
            event_name=name,
            event_time=event_time,
            bucket=detail.bucket.name,
            key=decode_key(obj["key"]),
            sequencer=sequencer,
            version_id=None if version_id == "null" else version_id,
            etag=(obj.get("etag") or "").strip('"') or None,
            size=int(obj["size"]) if obj.get("size") is not None else None,
            sequencer_from_event=from_event,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        error = exc if isinstance(exc, InvalidEventError) else InvalidEventError(_what_is_wrong(exc))
        detail_dict = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        shaped = {
            "eventTime": event.get("time"),
            "eventName": event.get("detail-type"),
            "s3": {"bucket": detail_dict.get("bucket"), "object": detail_dict.get("object")},
        }
        return Notification(malformed=[_salvage(0, shaped, error)])
    return Notification(records=[record])
