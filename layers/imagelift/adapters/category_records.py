"""Category records for the report: a Scan of the ImageCategories table projecting only the fields it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from imagelift.influence.records import RECORD_FIELDS

_deserializer = TypeDeserializer()


def scan_category_records(table_name: str, client: Any = None, page_size: int | None = None) -> Iterator[dict]:
    """Every item of the table, reduced to product_id, listing_id, status, category, event_time, sequencer.

    ``status`` is a DynamoDB reserved word, so every field goes through an expression attribute name.
    """
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    names = {f"#f{i}": name for i, name in enumerate(RECORD_FIELDS)}
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    for page in client.get_paginator("scan").paginate(**kwargs):
        for item in page.get("Items", []):
            yield {key: _deserializer.deserialize(value) for key, value in item.items()}
