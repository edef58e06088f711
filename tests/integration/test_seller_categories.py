"""``imagelift categories`` on the deployed template (moto), photos classified by the real cascade through the
classifier's event path: per product and per listing by the table's indexes (no Scan), the current photo as the
report takes it (re-upload, delete marker, failed upload), and the CSV export of every listing."""

from __future__ import annotations

import csv
import json

import pytest
from ingest_stack import DeployedStack, s3_event

from imagelift.adapters.categories_table import BY_LISTING_INDEX, BY_PRODUCT_INDEX, CategoriesTable
from imagelift.cli import main
from imagelift.services.classify_service import ClassifyService


class NoScan:
    """The DynamoDB client, refusing Scan: the per-product and per-listing reads must be indexed queries."""

    def __init__(self, inner) -> None:
        self.inner, self.queries = inner, []

    def scan(self, **kwargs):
        raise AssertionError("a seller read scanned the table")

    def get_paginator(self, name):
        assert name != "scan", "a seller read scanned the table"
        paginator = self.inner.get_paginator(name)
        original = paginator.paginate

        def paginate(**kwargs):
            self.queries.append(kwargs.get("IndexName"))
            return original(**kwargs)

        paginator.paginate = paginate
        return paginator

    def __getattr__(self, name):
        return getattr(self.inner, name)


def by_category(labelled_photos, category: int, count: int):
    return [path for path, label in labelled_photos if label == category][:count]


@pytest.fixture(scope="module")
def catalogue(stack: DeployedStack, cascade, labelled_photos):
    """Product SC-1: listing A (a product shot, then a model shot uploaded later to the gallery), listing B (a worn
    look, deleted), listing C (an unreadable upload); product SC-2 has a listing also called A."""
    service = ClassifyService.from_env(classifier=cascade)
    product, model = by_category(labelled_photos, 3, 1)[0], by_category(labelled_photos, 1, 1)[0]
    worn = by_category(labelled_photos, 2, 1)[0]
    events = [
        stack.put_photo("images/SC-1/A/front.jpg", product.read_bytes()),
        stack.put_photo("images/SC-1/A/on-model.jpg", model.read_bytes()),
        stack.put_photo("images/SC-1/B/1.jpg", worn.read_bytes()),
        stack.delete_photo("images/SC-1/B/1.jpg"),
        stack.put_photo("images/SC-1/C/1.jpg", b"not a photo at all"),
        stack.put_photo("images/SC-2/A/1.jpg", product.read_bytes()),
        stack.put_photo("images/loose.jpg", product.read_bytes()),  # unmatched: in no index
    ]
    for event in events:
        service.handle_event(s3_event(event))
    return {"product": cascade.classify_bytes(product.read_bytes()).category,
            "model": cascade.classify_bytes(model.read_bytes()).category}  # fmt: skip


def test_the_template_indexes_the_table_by_product_and_listing(stack: DeployedStack):
    table = stack.dynamodb.describe_table(TableName=stack.table_name)["Table"]
    indexes = {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes[BY_PRODUCT_INDEX] == [
        {"AttributeName": "product_id", "KeyType": "HASH"},
        {"AttributeName": "listing_id", "KeyType": "RANGE"},
    ]
    assert indexes[BY_LISTING_INDEX][0] == {"AttributeName": "listing_id", "KeyType": "HASH"}


def test_a_product_is_one_indexed_query(stack: DeployedStack, catalogue):
    from imagelift.services.categories import CategoriesService

    client = NoScan(stack.dynamodb)
    rows = CategoriesService(CategoriesTable(stack.table_name, client=client)).of_product("SC-1")
    assert client.queries == [BY_PRODUCT_INDEX]
    by_listing = {row.listing_id: row for row in rows}
    assert sorted(by_listing) == ["A", "B", "C"]
    a = by_listing["A"]
    # neither name carries a gallery position (01-..., main.jpg): the newer upload counts, as in the weekly report
    assert (a.key, a.category, a.status, a.live_photos) == (
        "images/SC-1/A/on-model.jpg",
        catalogue["model"],
        "classified",
        2,
    )
    assert a.version.startswith("v#") and a.face_score is not None and a.classified_at
    assert (by_listing["B"].status, by_listing["B"].category, by_listing["B"].live_photos) == ("deleted", None, 0)
    assert (by_listing["C"].status, by_listing["C"].failed) == ("failed", 1)


def test_a_listing_is_one_indexed_query_under_every_product(stack: DeployedStack, catalogue):
    from imagelift.services.categories import CategoriesService

    client = NoScan(stack.dynamodb)
    service = CategoriesService(CategoriesTable(stack.table_name, client=client))
    rows = service.of_listing("A")
    assert client.queries == [BY_LISTING_INDEX]
    assert [(row.product_id, row.key) for row in rows] == [
        ("SC-1", "images/SC-1/A/on-model.jpg"),
        ("SC-2", "images/SC-2/A/1.jpg"),
    ]
    (only,) = service.of_listing("A", product_id="SC-2")
    assert (only.category, client.queries[-1]) == (catalogue["product"], BY_PRODUCT_INDEX)


def test_categories_command_prints_and_exports(stack: DeployedStack, catalogue, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CATEGORIES_TABLE")
    target = ["--stack", stack.info.stack_name]
    assert main(["categories", "--product", "SC-1", "--json", *target]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["listing_id"] for line in lines] == ["A", "B", "C"]
    assert main(["categories", "--listing", "B", *target]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["product", "listing", "category"] and "deleted" in out
    assert main(["categories", "--product", "nope", *target]) == 1
    assert "no records of product nope" in capsys.readouterr().err

    export = tmp_path / "categories.csv"
    assert main(["categories", "--export", str(export), *target]) == 0
    rows = list(csv.DictReader(export.open(encoding="utf-8")))
    listings = {(row["product_id"], row["listing_id"]) for row in rows}
    assert {("SC-1", "A"), ("SC-1", "B"), ("SC-1", "C"), ("SC-2", "A")} <= listings
    assert all(row["product_id"] != "" for row in rows)  # the unmatched key is no listing
    a = next(row for row in rows if (row["product_id"], row["listing_id"]) == ("SC-1", "A"))
    assert (a["key"], a["category"], a["corrected"], a["status"]) == (
        "images/SC-1/A/on-model.jpg",
        str(catalogue["model"]),
        "False",
        "classified",
    )
    assert main(["categories", *target]) == 2
    assert main(["categories", "--export", str(export), "--product", "SC-1", *target]) == 2
