"""S3 notifications -> :class:`S3EventRecord`s: every record of an event, keys URL-decoded (``+`` is a space)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from imagelift.errors import PermanentError
from imagelift.records.keys import InvalidSequencerError, normalize_sequencer, sequencer_from_time


class InvalidEventError(PermanentError, ValueError):
    """The Lambda event is not an S3 notification this function understands."""

    code = "invalid_event"


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
            parsed.append(_parse_record(record))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidEventError(f"record {index} of the S3 event lacks {exc}") from exc
        except (InvalidEventError, InvalidSequencerError) as exc:
            raise InvalidEventError(f"record {index}: {exc}") from exc
    return parsed


def _parse_record(record: dict[str, Any]) -> S3EventRecord:
    if record.get("eventSource") != "aws:s3":
        raise InvalidEventError(f"eventSource is {record.get('eventSource')!r}, not aws:s3")
    s3 = record["s3"]
    obj = s3["object"]
    event_time = record["eventTime"]
    raw_sequencer = obj.get("sequencer")
    version_id = obj.get("versionId") or None
    return S3EventRecord(
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
