"""PhotoStore when S3 answers 403 for a read: gone if a listing under the key no longer has the version, else the
access error propagates (a retry or an operator must deal with it). The classifier's role may list only under the
images prefix, where S3 may answer 403 instead of 404 for a deleted photo."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from imagelift.adapters.s3 import ObjectGone, PhotoStore

BUCKET = "forbidden-test"


class ForbiddenReads:
    """An S3 client whose HeadObject / GetObject answer 403, as S3 does without a matching ListBucket grant."""

    def __init__(self, inner: Any, *, listing_denied: bool = False) -> None:
        self.inner, self.listing_denied = inner, listing_denied

    def _denied(self, operation: str) -> ClientError:
        return ClientError(
            {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            operation,
        )

    def head_object(self, **kwargs: Any) -> Any:
        raise self._denied("HeadObject")

    def get_object(self, **kwargs: Any) -> Any:
        raise self._denied("GetObject")

    def get_paginator(self, name: str) -> Any:
        if self.listing_denied:
            raise self._denied("ListObjectVersions")
        return self.inner.get_paginator(name)


@pytest.fixture()
def s3(dummy_aws_env) -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_a_version_no_longer_listed_is_gone(s3):
    first = s3.put_object(Bucket=BUCKET, Key="images/P/L/a.jpg", Body=b"one")
    s3.delete_object(Bucket=BUCKET, Key="images/P/L/a.jpg", VersionId=first["VersionId"])
    s3.put_object(Bucket=BUCKET, Key="images/P/L/a.jpg.bak", Body=b"same prefix, other key")
    store = PhotoStore(ForbiddenReads(s3))
    with pytest.raises(ObjectGone):
        store.head(BUCKET, "images/P/L/a.jpg", version_id=first["VersionId"])
    with pytest.raises(ObjectGone):  # no version id: the latest must still be listed
        store.read(BUCKET, "images/P/L/a.jpg", max_bytes=100, etag=first["ETag"])


def test_a_version_still_listed_is_an_access_error(s3):
    put = s3.put_object(Bucket=BUCKET, Key="images/P/L/b.jpg", Body=b"two")
    s3.delete_object(Bucket=BUCKET, Key="images/P/L/b.jpg")  # a delete marker: the version itself is still there
    store = PhotoStore(ForbiddenReads(s3))
    with pytest.raises(ClientError, match="AccessDenied"):
        store.head(BUCKET, "images/P/L/b.jpg", version_id=put["VersionId"])


def test_a_refused_listing_leaves_the_access_error(s3):
    store = PhotoStore(ForbiddenReads(s3, listing_denied=True))
    with pytest.raises(ClientError, match="AccessDenied"):
        store.head(BUCKET, "images/P/L/never.jpg", version_id="v1")
