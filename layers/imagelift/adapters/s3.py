"""Uploaded photos in S3: look at an object, read it with a byte limit, list what a bucket holds.

A specific object version is always read (``VersionId`` from the event, or ``If-Match`` on the ETag in a bucket
without versioning), so a late event never classifies the bytes of a newer upload. An object or version that is no
longer there raises :class:`ObjectGone`; every other error (throttling, timeouts, 5xx, access denied) propagates so
that the caller's retry policy applies.

S3 answers 403 rather than 404 for a missing key unless the caller may list the bucket, and the classifier may list
only under the images prefix (template.yaml). So a 403 is checked with a listing under the key itself: a version
that is not listed any more is gone; one still listed, or a listing refused too, is a real access error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from imagelift.errors import PermanentError

# 404s of a deleted key or version, and 412 when the ETag no longer matches (the key was overwritten).
_GONE_CODES = {"404", "NoSuchKey", "NoSuchVersion", "NotFound", "412", "PreconditionFailed"}


class ObjectGone(PermanentError):
    """The object version an event refers to no longer exists (deleted or replaced before it was read)."""

    code = "object_gone"


class ObjectTooLarge(PermanentError):
    """The object holds more bytes than the reader accepts: the ingest's one source of ``too_large``."""

    code = "too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, more than the {limit} accepted")
        self.size = size
        self.limit = limit

    @classmethod
    def check(cls, size: int, limit: int) -> None:
        """Raise when ``size`` is over ``limit``."""
        if size > limit:
            raise cls(size, limit)


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str | None = None
    """Without quotes."""
    version_id: str | None = None
    """None for a bucket without versioning (S3 says "null" there)."""
    last_modified: datetime | None = None
    content_type: str | None = None


def _version(version_id: str | None) -> str | None:
    return None if version_id in (None, "", "null") else version_id


def _etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def _is_forbidden(exc: ClientError) -> bool:
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return exc.response.get("Error", {}).get("Code") in {"403", "AccessDenied", "Forbidden"} or status == "403"


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return error.get("Code") in _GONE_CODES or status in {"404", "412"}


class PhotoStore:
    """S3 access for the classifier and the backfill. ``client`` is a boto3 S3 client (tests pass moto's)."""

    def __init__(self, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def _selector(self, version_id: str | None, etag: str | None) -> dict[str, str]:
        if _version(version_id):
            return {"VersionId": version_id}  # type: ignore[dict-item]
        if etag:
            return {"IfMatch": f'"{_etag(etag)}"'}
        return {}

    def _request(
        self, operation: Callable[..., dict[str, Any]], bucket: str, key: str, version_id: str | None, etag: str | None
    ) -> dict[str, Any]:
        """``head_object`` or ``get_object`` of the version asked for; :class:`ObjectGone` when it no longer exists."""
        try:
            return operation(Bucket=bucket, Key=key, **self._selector(version_id, etag))
        except ClientError as exc:
            if _is_gone(exc) or (_is_forbidden(exc) and self._listed(bucket, key, version_id, etag) is False):
                raise ObjectGone(f"s3://{bucket}/{key} (version {version_id or etag or 'latest'}) is gone") from exc
            raise

    def _listed(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> bool | None:
        """Whether the version is still in the bucket, by listing under the key; None when listing is refused."""
        wanted_version, wanted_etag = _version(version_id), _etag(etag)
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
                for version in page.get("Versions", []):
                    if version["Key"] != key:
                        continue
                    if wanted_version:
                        if version.get("VersionId") == wanted_version:
                            return True
                    elif version.get("IsLatest") and (not wanted_etag or _etag(version.get("ETag")) == wanted_etag):
                        return True
        except ClientError:
            return None
        return False

    def head(self, bucket: str, key: str, *, version_id: str | None = None, etag: str | None = None) -> ObjectInfo:
        """Size and identity of one object version, without reading it; raises :class:`ObjectGone`."""
        response = self._request(self.client.head_object, bucket, key, version_id, etag)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(response["ContentLength"]),
            etag=_etag(response.get("ETag")),
            version_id=_version(response.get("VersionId")),
            last_modified=response.get("LastModified"),
            content_type=response.get("ContentType"),
        )

    def read(
        self, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None, etag: str | None = None
    ) -> bytes:
        """The bytes of one object version, at most ``max_bytes`` (else :class:`ObjectTooLarge`)."""
        response = self._request(self.client.get_object, bucket, key, version_id, etag)
        size = int(response.get("ContentLength", 0))
        body = response["Body"]
        try:
            ObjectTooLarge.check(size, max_bytes)
            data = body.read(max_bytes + 1)
        finally:
            body.close()
        ObjectTooLarge.check(len(data), max_bytes)
        return data

    def current_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Every current (latest, not deleted) object under ``prefix``, with its version id when versioned."""
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if not version.get("IsLatest"):
                    continue
                yield ObjectInfo(
                    bucket=bucket,
                    key=version["Key"],
                    size=int(version.get("Size", 0)),
                    etag=_etag(version.get("ETag")),
                    version_id=_version(version.get("VersionId")),
                    last_modified=version.get("LastModified"),
                )
