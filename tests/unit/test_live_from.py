"""Photos live before their upload: a record's ``live_from`` moves its start back, and the report counts those weeks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.sales import read_sales
from imagelift.records.live_from import LiveFrom, LiveFromError, parse_moment, read_live_from_csv

SALES = "week,product_id,listing_id,units,price\n" + "".join(
    f"2025-{m:02d}-{d:02d},P1,{listing},2,10\n"
    for m, d in [(1, 6), (1, 13), (1, 20), (2, 3)]
    for listing in ("L1", "L2")
)


def _record(listing: str, event_time: str, live_from: str | None = None, category: int = 1) -> dict:
    item = {
        "product_id": "P1",
        "listing_id": listing,
        "status": "classified",
        "category": category,
        "event_time": event_time,
        "key": f"images/P1/{listing}/a.jpg",
    }
    if live_from:
        item["live_from"] = live_from
    return item


def test_live_from_moves_the_photo_start_back_and_the_earlier_weeks_are_joined():
    sales = read_sales([("s.csv", SALES.encode())], report_date=datetime(2025, 6, 2).date())
    records = normalise_records(
        [
            _record("L1", "2025-02-01T10:00:00Z", live_from="2024-12-01T00:00:00.000Z"),  # uploaded late, live long
            _record("L2", "2025-02-01T10:00:00Z"),  # no statement: from its upload only
        ]
    )
    joined = join_categories(sales.frame, records, sales.rejections)
    assert sorted(joined.loc[joined["listing_id"] == "L1", "week"].astype(str)) == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
        "2025-02-03",
    ]
    assert joined.loc[joined["listing_id"] == "L2", "week"].astype(str).tolist() == ["2025-02-03"]
    assert sales.rejections.as_dict() == {"no_category_that_week": 3}


def test_a_later_live_from_never_delays_a_photo_and_a_bad_one_is_ignored():
    records = normalise_records(
        [
            _record("L1", "2025-01-01T00:00:00Z", live_from="2025-03-01T00:00:00Z"),
            _record("L2", "2025-01-01T00:00:00Z", live_from="last spring"),
        ]
    )
    assert records.frame["event_time"].tolist() == [datetime(2025, 1, 1)] * 2


def test_backfill_live_from_options():
    by_listing = read_live_from_csv(
        "live.csv", b"\xef\xbb\xbflisting_id,live_from\nSKU-1,2024-03-01\nSKU-2,2024-05-02T08:00:00Z\n\n"
    )
    assert by_listing == {
        (None, "SKU-1"): datetime(2024, 3, 1, tzinfo=UTC),
        (None, "SKU-2"): datetime(2024, 5, 2, 8, tzinfo=UTC),
    }
    live = LiveFrom(since=parse_moment("2024-06-01"), by_listing=by_listing)
    uploaded = "2025-01-10T12:00:00.000Z"
    assert live.for_record("P", "SKU-1", uploaded) == "2024-03-01T00:00:00.000Z"
    assert live.for_record("P", "SKU-9", uploaded) == "2024-06-01T00:00:00.000Z"  # the general date
    assert live.for_record("P", "SKU-9", "2024-01-01T00:00:00Z") is None  # uploaded before: nothing to move
    assert live.for_record(None, None, uploaded) is None  # an unmatched key has no listing
    with pytest.raises(LiveFromError, match=r"live.csv: line 3: 'soon' is not a date"):
        read_live_from_csv("live.csv", b"listing_id,live_from\nSKU-1,2024-03-01\nSKU-2,soon\n")
    with pytest.raises(LiveFromError, match=r"needs the columns listing_id,live_from"):
        read_live_from_csv("live.csv", b"sku,date\nSKU-1,2024-03-01\n")
