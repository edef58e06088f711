"""Reading the ImageCategories table whole: the report's records, the demo's and the tests' listings.

A Scan, projected to ``fields`` (the report's :data:`REPORT_FIELDS` by default; ``None`` for every attribute), each
item as plain Python (numbers int or float).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from imagelift.adapters.dynamodb_codec import unmarshal
from imagelift.records.category_record import REPORT_FIELDS


def scan_category_records(
    table_name: str,
    client: Any = None,
    page_size: int | None = None,
    *,
    fields: Sequence[str] | None = REPORT_FIELDS,
) -> Iterator[dict[str, Any]]:
    """Every item of the table, reduced to ``fields`` when given.

    ``status`` is a DynamoDB reserved word, so every field goes through an expression attribute name.
    """
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": table_name}
    if fields is not None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        kwargs.update(ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
    if page_size:
        kwargs["PaginationConfig"] = {"PageSize": page_size}
    for page in client.get_paginator("scan").paginate(**kwargs):
        for item in page.get("Items", []):
            yield unmarshal(item)
