"""The ImageCategories DynamoDB table: one item per photo version, written only if it is newer.

Key design (template.yaml, ImageCategoriesTable):

- ``pk`` = ``s3://<bucket>/<key>``: every record of one object sits in one partition, so its whole history is one
  Query and "what is this object now" is the item with the greatest ``sequencer``.
- ``sk`` = the object version the record is about: the S3 ``version_id`` (the uploads bucket is versioned),
  ``etag#<etag>`` in a bucket without versioning, ``delete#<sequencer>`` for a delete there. A new upload to the
  same key is a new version and so a new item: the old record stays, and the weekly report can join each week of
  sales to the category that was live then (as-of join on ``event_time``). A delete marker is a version too: its
  item has ``status = deleted``.

Ordering: ``sequencer`` holds S3's event sequencer, upper-case and right-padded with zeros to a fixed width (how
AWS says to compare sequencers of different lengths), so DynamoDB's string order is event order. Every write is
conditional on it (``attribute_not_exists(pk) OR sequencer < :new``): a duplicate delivery (same sequencer) or an
older event never replaces what a newer event wrote, even when two Lambdas race. Backfill records carry the empty
sequencer, which is older than any event, and are written only where nothing exists.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError


def to_dynamodb(value: Any) -> Any:
    """JSON-able value -> DynamoDB-able value: floats become Decimal (boto3 refuses float)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamodb(value: Any) -> Any:
    """DynamoDB value -> plain Python: Decimal becomes int or float."""
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamodb(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in to_dynamodb(item).items()}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class CategoriesTable:
    """Reads and conditional writes of ImageCategories items.

    ``client`` is a boto3 DynamoDB client (thread-safe, unlike the Table resource; tests pass moto's or wrap it to
    inject faults). Items come back with numbers as Decimal; :func:`from_dynamodb` turns them into int/float.
    """

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.table_name = table_name
        self.client = client

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=_marshal({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return _unmarshal(response["Item"]) if "Item" in response else None

    def _pages(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator(operation)
        for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True, **kwargs):
            items.extend(_unmarshal(item) for item in page.get("Items", []))
        return items

    def history(self, pk: str) -> list[dict[str, Any]]:
        """Every record of one object, oldest event first."""
        items = self._pages("query", KeyConditionExpression="pk = :pk", ExpressionAttributeValues=_marshal({":pk": pk}))
        return sorted(items, key=lambda item: (item.get("sequencer", ""), item.get("event_time", "")))

    def scan(self) -> list[dict[str, Any]]:
        """Every item (tests, the local stack and small exports; the report has its own reader)."""
        return self._pages("scan")

    def put_if_newer(self, item: dict[str, Any]) -> bool:
        """Write ``item`` unless the same version already holds a record from the same or a newer event.

        Returns False when the condition kept the existing item (a duplicate or an out-of-order event).
        """
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=_marshal(item),
            ConditionExpression="attribute_not_exists(pk) OR sequencer < :sequencer",
            ExpressionAttributeValues=_marshal({":sequencer": item["sequencer"]}),
        )

    def put_if_absent(self, item: dict[str, Any]) -> bool:
        """Write ``item`` only where no record of this version exists (backfill). False when one does."""
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=_marshal(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def mark_deleted_if_newer(self, pk: str, sk: str, fields: dict[str, Any]) -> bool:
        """Set ``status = deleted`` and ``fields`` on one version's record (creating it if absent), if newer.

        The classification attributes of an existing record are kept, so what the photo was stays visible.
        """
        values = {**fields, "status": "deleted"}
        names = {f"#a{i}": name for i, name in enumerate(values)}
        assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        return self._conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=_marshal({"pk": pk, "sk": sk}),
            UpdateExpression=f"SET {assignments}",
            ConditionExpression="attribute_not_exists(pk) OR #seq < :seq",
            ExpressionAttributeNames={**names, "#seq": "sequencer"},
            ExpressionAttributeValues=_marshal(
                {**{f":v{i}": value for i, value in enumerate(values.values())}, ":seq": values["sequencer"]}
            ),
        )

    @staticmethod
    def _conditional(call: Any, **kwargs: Any) -> bool:
        try:
            call(**kwargs)
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True
