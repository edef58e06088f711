"""Sales exports in S3: the export files (CSV, gzip, TSV, xlsx) under the data bucket's sales prefix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from imagelift.influence.exports.decoding import EXPORT_SUFFIXES
from imagelift.influence.sales import SalesSource


class SalesStore:
    """Lists and reads sales exports. ``client`` is a boto3 S3 client (tests pass moto's)."""

    def __init__(self, bucket: str, prefix: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._modified: dict[str, datetime] = {}

    def list_exports(self) -> list[str]:
        """Keys of every export under the prefix, sorted (other files, e.g. a README, are ignored)."""
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].lower().endswith(EXPORT_SUFFIXES):
                    keys.append(obj["Key"])
                    self._modified[obj["Key"]] = obj.get("LastModified")
        return sorted(keys)

    def _read(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def read(self, key: str) -> bytes:
        """One object of the data bucket (e.g. the classifier's confusion matrix beside the exports)."""
        return self._read(key)

    def sources(self, keys: list[str]) -> Iterator[SalesSource]:
        """Each export as a :class:`SalesSource` with its LastModified (the newest copy of a week wins); the bytes
        are fetched when read, and a failed fetch is listed in the report rather than ending it."""
        for key in keys:
            yield SalesSource(
                f"s3://{self.bucket}/{key}",
                opener=lambda key=key: self._read(key),
                last_modified=self._modified.get(key),
            )

    def read_exports(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        """(``s3://bucket/key``, bytes) of each export; gzip is undone by the reader, which checks the bytes."""
        for key in keys:
            yield f"s3://{self.bucket}/{key}", self._read(key)
