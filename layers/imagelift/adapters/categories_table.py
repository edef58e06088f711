"""The ImageCategories DynamoDB table: one item per photo version, written only if it is newer.

The key scheme (``pk`` per object, ``sk`` per version, the padded ``sequencer``) is imagelift.records.keys; the item
is imagelift.records.category_record.CategoryRecord. Every write is conditional on the sequencer
(``attribute_not_exists(pk) OR sequencer < :new``): a duplicate delivery (same sequencer) or an older event never
replaces what a newer event wrote, even when two Lambdas race. Backfill records carry the empty sequencer, which is
older than any event, and are written only where nothing exists. The report's reader is
imagelift.adapters.category_records.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from imagelift.adapters.dynamodb_codec import marshal, unmarshal
from imagelift.records.category_record import STATUS_DELETED, CategoryRecord

_KEPT_ON_DELETE = frozenset({"event_time"})

BY_PRODUCT_INDEX = "ByProduct"
"""template.yaml's index of ImageCategoriesTable on ``product_id`` (range ``listing_id``)."""
BY_LISTING_INDEX = "ByListing"
"""template.yaml's index of ImageCategoriesTable on ``listing_id`` (range ``pk``)."""


class TableNotFound(LookupError):
    """The ImageCategories table named does not exist (in this region)."""


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class CategoriesTable:
    """Reads and conditional writes of ImageCategories records.

    ``client`` is a boto3 DynamoDB client (thread-safe, unlike the Table resource; tests pass moto's or wrap it to
    inject faults).
    """

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        self.table_name = table_name
        self.client = client

    def check_exists(self) -> None:
        """Raise :class:`TableNotFound` unless the table is there: one call before a run, not one failure per item."""
        try:
            self.client.describe_table(TableName=self.table_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                region = self.client.meta.region_name
                raise TableNotFound(f"DynamoDB table {self.table_name!r} does not exist in {region}") from exc
            raise

    def get(self, pk: str, sk: str) -> CategoryRecord | None:
        response = self.client.get_item(
            TableName=self.table_name, Key=marshal({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        return CategoryRecord.from_item(unmarshal(response["Item"])) if "Item" in response else None

    def history(self, pk: str) -> list[CategoryRecord]:
        """Every record of one object, oldest event first."""
        records: list[CategoryRecord] = []
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=marshal({":pk": pk}),
        )
        for page in pages:
            records.extend(CategoryRecord.from_item(unmarshal(item)) for item in page.get("Items", []))
        return sorted(records, key=lambda record: (record.sequencer, record.event_time))

    def of_product(self, product_id: str, listing_id: str | None = None) -> list[CategoryRecord]:
        """Every record of one product (of one of its listings when ``listing_id`` is given): one indexed Query."""
        condition, values = "product_id = :product", {":product": product_id}
        if listing_id is not None:
            condition += " AND listing_id = :listing"
            values[":listing"] = listing_id
        return self._query_index(BY_PRODUCT_INDEX, condition, values)

    def of_listing(self, listing_id: str) -> list[CategoryRecord]:
        """Every record of every listing with this id (under any product): one indexed Query."""
        return self._query_index(BY_LISTING_INDEX, "listing_id = :listing", {":listing": listing_id})

    def marked_for_review(self, product_id: str | None = None) -> list[CategoryRecord]:
        """Records marked ``review`` and the deletions that may have ended them (to tell which are still live).

        With ``product_id``, one indexed Query; without, a Scan of the whole table filtered to those records (the
        review flag is a boolean, which DynamoDB cannot index; the filter keeps the transfer small).
        """
        return self._filtered(
            "(review = :true OR #status = :deleted)",
            {":true": True, ":deleted": STATUS_DELETED},
            {"#status": "status"},
            product_id,
        )

    def corrected(self, product_id: str | None = None) -> list[CategoryRecord]:
        """Records a person corrected (``correction`` set): a Query with ``product_id``, else a filtered Scan."""
        return self._filtered("attribute_exists(correction)", {}, {}, product_id)

    def _filtered(
        self, condition: str, values: dict[str, Any], names: dict[str, str], product_id: str | None
    ) -> list[CategoryRecord]:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "FilterExpression": condition}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if product_id is None:
            operation = "scan"
        else:
            operation = "query"
            values = {**values, ":product": product_id}
            kwargs.update(IndexName=BY_PRODUCT_INDEX, KeyConditionExpression="product_id = :product")
        if values:
            kwargs["ExpressionAttributeValues"] = marshal(values)
        pages = self.client.get_paginator(operation).paginate(**kwargs)
        return [CategoryRecord.from_item(unmarshal(item)) for page in pages for item in page.get("Items", [])]

    def _query_index(self, index: str, condition: str, values: dict[str, Any]) -> list[CategoryRecord]:
        # Index reads are eventually consistent (a just-written record may show a moment later).
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=marshal(values),
        )
        return [CategoryRecord.from_item(unmarshal(item)) for page in pages for item in page.get("Items", [])]

    def put_if_newer(self, record: CategoryRecord) -> bool:
        """Write ``record`` unless its version already holds a record from the same or a newer event.

        Returns False when the condition kept the existing item (a duplicate or an out-of-order event).
        """
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=marshal(record.to_item()),
            ConditionExpression="attribute_not_exists(pk) OR sequencer < :sequencer",
            ExpressionAttributeValues=marshal({":sequencer": record.sequencer}),
        )

    def put_if_absent(self, record: CategoryRecord) -> bool:
        """Write ``record`` only where no record of its version exists (backfill). False when one does."""
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=marshal(record.to_item()),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def replace_if_unchanged(self, record: CategoryRecord, previous: CategoryRecord) -> bool:
        """Write ``record`` over ``previous`` (same item) only if nothing wrote the item since ``previous`` was read.

        Every write sets ``recorded_at``, so an event, a delete or another run in between makes this return False.
        """
        if (record.pk, record.sk) != (previous.pk, previous.sk):
            raise ValueError("replace_if_unchanged replaces one item with a new version of itself")
        condition, values = _unchanged_since(previous)
        return self._conditional(
            self.client.put_item,
            TableName=self.table_name,
            Item=marshal(record.to_item()),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=marshal(values),
        )

    def mark_deleted_if_newer(self, record: CategoryRecord) -> bool:
        """Write a ``deleted`` record's fields onto its version's item (creating it if absent), if newer.

        An update, not a put: the classification attributes and the upload ``event_time`` of an existing record
        are kept, so what the photo was, and since when, stays visible; ``deleted_at`` says when it went.
        """
        if record.status != STATUS_DELETED:
            raise ValueError(f"mark_deleted_if_newer needs a deleted record, not {record.status!r}")
        values = {k: v for k, v in record.to_item().items() if k not in ("pk", "sk")}
        names = {f"#a{i}": name for i, name in enumerate(values)}
        # A version's upload time survives its permanent delete (the report ends the photo at ``deleted_at``).
        assignments = ", ".join(
            f"#a{i} = if_not_exists(#a{i}, :v{i})" if name in _KEPT_ON_DELETE else f"#a{i} = :v{i}"
            for i, name in enumerate(values)
        )
        return self._conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=marshal({"pk": record.pk, "sk": record.sk}),
            UpdateExpression=f"SET {assignments}",
            ConditionExpression="attribute_not_exists(pk) OR #seq < :seq",
            ExpressionAttributeNames={**names, "#seq": "sequencer"},
            ExpressionAttributeValues=marshal(
                {**{f":v{i}": value for i, value in enumerate(values.values())}, ":seq": record.sequencer}
            ),
        )

    def set_correction(self, record: CategoryRecord, correction: dict[str, Any], recorded_at: str) -> bool:
        """Store a person's ``correction`` on ``record``'s item, the classifier's outcome left as it is.

        Conditional on the item being unchanged since ``record`` was read (as :meth:`replace_if_unchanged`), so a
        re-classification or delete in between is not overwritten, nor overwrites this; False when it lost.
        """
        condition, values = _unchanged_since(record)
        values.update({":correction": correction, ":now": recorded_at})
        return self._conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=marshal({"pk": record.pk, "sk": record.sk}),
            UpdateExpression="SET correction = :correction, recorded_at = :now",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=marshal(values),
        )

    def set_live_from(self, pk: str, sk: str, live_from: str) -> bool:
        """Store the seller's ``live_from`` on an existing record (the classification is left as it is)."""
        return self._conditional(
            self.client.update_item,
            TableName=self.table_name,
            Key=marshal({"pk": pk, "sk": sk}),
            UpdateExpression="SET live_from = :live_from",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=marshal({":live_from": live_from}),
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


def _unchanged_since(record: CategoryRecord) -> tuple[str, dict[str, Any]]:
    """The condition (and its values) that the item is still as ``record`` was read: same sequencer, not deleted,
    and the same ``recorded_at`` (every write sets it, so any write in between breaks the condition)."""
    values: dict[str, Any] = {":sequencer": record.sequencer, ":deleted": STATUS_DELETED}
    condition = "sequencer = :sequencer AND #status <> :deleted AND "
    if record.recorded_at is None:
        return condition + "attribute_not_exists(recorded_at)", values
    values[":recorded_at"] = record.recorded_at
    return condition + "recorded_at = :recorded_at", values
