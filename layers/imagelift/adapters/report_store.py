"""Where reports go: S3 ``<reports prefix><date>/`` and ``<reports prefix>latest/``, and a summary item in InfluenceReports."""

from __future__ import annotations

from typing import Any

from imagelift.adapters.dynamodb_codec import marshal

CONTENT_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class ReportStore:
    def __init__(self, bucket: str, prefix: str, table_name: str, *, s3: Any = None, dynamodb: Any = None) -> None:
        if s3 is None or dynamodb is None:
            import boto3

            s3 = s3 or boto3.client("s3")
            dynamodb = dynamodb or boto3.client("dynamodb")
        self.s3 = s3
        self.dynamodb = dynamodb
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        self.table_name = table_name

    def write_files(self, report_date: str, files: dict[str, bytes]) -> dict[str, str]:
        """Each file to <prefix><date>/ and then <prefix>latest/; returns the dated ``s3://`` URI of each."""
        locations = {}
        for folder in (report_date, "latest"):
            for name, data in files.items():
                key = f"{self.prefix}{folder}/{name}"
                suffix = name[name.rfind(".") :]
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                )
                if folder == report_date:
                    locations[name] = f"s3://{self.bucket}/{key}"
        return locations

    def put_summary(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=self.table_name, Item=marshal(item))
