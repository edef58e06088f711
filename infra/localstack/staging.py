"""Make a sample S3 event true on the local stack before it is invoked (``imagelift local invoke --stage``).

The events in tests/events name objects that are not in the local bucket, so the classifier would record each as
failed ``object_gone``. Staging does in the local uploads bucket what each record says happened, in order, and
rewrites the record with what S3 answered:

- ``ObjectCreated:*``: a sample photo (scikit-image's, round robin) is uploaded under the record's key; the
  record gets the real version id, ETag and size.
- ``ObjectRemoved:DeleteMarkerCreated``: the key is deleted (a delete marker); the record gets the marker's version.
- ``ObjectRemoved:Delete``: a sample is uploaded and that version deleted for good; the record gets its version id.

Every record also gets the local bucket's name and ARN, and a fresh event time and sequencer (now, increasing), so
that it is newer than anything recorded for the key before. With ``imagelift local up`` running, the stack's own
notification classifies each staged upload as well (a record keyed by ETag, as moto's notifications carry no
version id), beside the one the invocation writes.
"""

from __future__ import annotations

import copy
import itertools
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class StagedObject:
    event_name: str
    key: str
    version_id: str | None
    photo: str | None
    """The sample photo uploaded for it, if any."""


def stage_event(event: dict[str, Any], s3: Any, bucket: str) -> tuple[dict[str, Any], list[StagedObject]]:
    """The event rewritten to what was done in ``bucket`` for each record (see the module docstring)."""
    from infra.localstack.samples import bundled_photos

    photos = itertools.cycle(bundled_photos())
    staged_event = copy.deepcopy(event)
    staged: list[StagedObject] = []
    start = datetime.now(UTC)
    micros = time.time_ns() // 1000
    for index, record in enumerate(staged_event.get("Records", [])):
        s3_part = record["s3"]
        obj = s3_part["object"]
        key = urllib.parse.unquote_plus(obj["key"])
        name = record["eventName"]
        s3_part["bucket"]["name"] = bucket
        s3_part["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        photo_name = None
        if name.startswith("ObjectCreated:") or name == "ObjectRemoved:Delete":
            photo = next(photos)
            photo_name = photo.name
            put = s3.put_object(Bucket=bucket, Key=key, Body=photo.data, ContentType="image/jpeg")
            version_id = put.get("VersionId")
            obj.update(size=len(photo.data), eTag=put["ETag"].strip('"'))
            if name == "ObjectRemoved:Delete":
                s3.delete_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
                for field in ("size", "eTag"):
                    obj.pop(field, None)
        elif name == "ObjectRemoved:DeleteMarkerCreated":
            version_id = s3.delete_object(Bucket=bucket, Key=key).get("VersionId")
        else:
            raise ValueError(f"record {index}: cannot stage event {name!r}")
        if version_id:
            obj["versionId"] = version_id
        else:
            obj.pop("versionId", None)
        obj["sequencer"] = f"{micros + index:016X}"
        moment = start + timedelta(milliseconds=index)
        record["eventTime"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        staged.append(StagedObject(name, key, version_id, photo_name))
    return staged_event, staged
