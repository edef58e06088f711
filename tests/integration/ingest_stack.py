"""Helpers of the ingest integration tests: the deployed stack, real-shaped S3 events, importing the handler.

The fixtures that use them are in conftest.py.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "tests" / "events"
APP_PATH = ROOT / "functions" / "classify_image" / "app.py"
REGION = "us-east-1"
FUNCTION = "ClassifyImageFunction"

# What a Lambda container has besides the template's variables; tracing is off outside Lambda.
_RUNTIME_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}

_sequencer = itertools.count(0x0067A1B2C3D4E5F600)


def next_sequencer() -> str:
    """S3-shaped sequencer (18 hex digits), increasing through the test session like S3's for one key."""
    return f"{next(_sequencer):018X}"


def event_time_of(sequencer: str) -> str:
    """An event time that advances with the sequencer (one millisecond per step) from 2026-11-23 09:15 UTC."""
    step = int(sequencer, 16) - 0x0067A1B2C3D4E5F600
    moment = datetime(2026, 11, 23, 9, 15, tzinfo=UTC) + timedelta(milliseconds=max(step, 0))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class DeployedStack:
    info: Any  # infra.localstack.cloudformation.StackInfo
    env: dict[str, str]
    """ClassifyImageFunction's environment as the deployed template resolved it."""
    s3: Any
    dynamodb: Any

    @property
    def uploads_bucket(self) -> str:
        return self.info.physical("UploadsBucket")

    @property
    def table_name(self) -> str:
        return self.info.physical("ImageCategoriesTable")

    def put_photo(self, key: str, data: bytes) -> dict[str, Any]:
        """Upload ``data`` under ``key``; returns the S3 event record S3 would send for it."""
        response = self.s3.put_object(Bucket=self.uploads_bucket, Key=key, Body=data)
        return s3_record(
            "ObjectCreated:Put",
            self.uploads_bucket,
            key,
            version_id=response.get("VersionId"),
            etag=response["ETag"].strip('"'),
            size=len(data),
        )

    def upload_listings(self, prefix: str, photos: list[tuple[Path, int]]) -> list[str]:
        """Each photo under its own product and listing (``<prefix>P-<i>/L-<i>/<name>``), with no event sent."""
        keys = []
        for index, (path, _) in enumerate(photos):
            key = f"{prefix}P-{index}/L-{index}/{path.name}"
            self.s3.put_object(Bucket=self.uploads_bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
        return keys

    def delete_photo(self, key: str) -> dict[str, Any]:
        """Delete ``key`` (a delete marker in the versioned bucket); returns S3's event record for it."""
        response = self.s3.delete_object(Bucket=self.uploads_bucket, Key=key)
        return s3_record(
            "ObjectRemoved:DeleteMarkerCreated", self.uploads_bucket, key, version_id=response.get("VersionId")
        )

    def items(self, key: str) -> list[dict[str, Any]]:
        """Every ImageCategories item of one object, oldest event first, numbers as int/float."""
        from imagelift.adapters.categories_table import CategoriesTable

        table = CategoriesTable(self.table_name, client=self.dynamodb)
        return [record.to_item() for record in table.history(f"s3://{self.uploads_bucket}/{key}")]

    def raw_items(self, key: str) -> list[dict[str, Any]]:
        """The same items as DynamoDB returns them (low-level attribute values)."""
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"s3://{self.uploads_bucket}/{key}"}},
            ConsistentRead=True,
        )
        return response["Items"]


def s3_record(
    event_name: str,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    etag: str | None = None,
    size: int | None = None,
    sequencer: str | None = None,
    event_time: str | None = None,
) -> dict[str, Any]:
    """One S3 notification record shaped like tests/events/put_special_key.json (the key URL-encoded as S3 does)."""
    template = json.loads((EVENTS_DIR / "put_special_key.json").read_text(encoding="utf-8"))["Records"][0]
    record = copy.deepcopy(template)
    sequencer = sequencer or next_sequencer()
    record["eventName"] = event_name
    record["eventTime"] = event_time or event_time_of(sequencer)
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer}
    if size is not None:
        obj["size"] = size
    if etag:
        obj["eTag"] = etag
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    record["s3"]["object"] = obj
    return record


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@dataclass
class LambdaContext:
    function_name: str = "ImageLift-Test-ClassifyImageFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ImageLift-Test-ClassifyImageFunction"
    aws_request_id: str = "6f2c1d0e-4b8a-4c5e-9f1a-2d3b4c5d6e7f"
    log_group_name: str = "/aws/lambda/ImageLift-Test-ClassifyImageFunction"
    log_stream_name: str = "2026/11/23/[$LATEST]abcdef"


_APP_MODULES: dict[str, ModuleType] = {}


def import_app(path: Path = APP_PATH, module_name: str = "classify_image_app") -> ModuleType:
    """Import a handler module from its file, as the Lambda runtime imports ``app`` at container init."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
