"""Sales exports in S3: the CSV (or gzipped CSV) files under the data bucket's ``sales/`` prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SALES_SUFFIXES = (".csv", ".csv.gz", ".gz")


class SalesStore:
    """Lists and reads sales exports. ``client`` is a boto3 S3 client (tests pass moto's)."""

    def __init__(self, bucket: str, prefix: str = "sales/", client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def list_exports(self) -> list[str]:
        """Keys of every export under the prefix, sorted (other files, e.g. a README, are ignored)."""
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].lower().endswith(SALES_SUFFIXES):
                    keys.append(obj["Key"])
        return sorted(keys)

    def read_exports(self, keys: list[str]) -> Iterator[tuple[str, bytes]]:
        """(``s3://bucket/key``, bytes) of each export; gzip is undone by the reader, which checks the bytes."""
        for key in keys:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                yield f"s3://{self.bucket}/{key}", body.read()
            finally:
                body.close()
