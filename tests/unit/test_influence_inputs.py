"""Sales exports and category records: every bad row counted by reason, bad files named, the as-of join."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from imagelift.influence.records import join_categories, normalise_records, read_jsonl
from imagelift.influence.sales import InputFileError, Rejections, SalesSource, read_sales

HEADER = "week,product_id,listing_id,units,price,promo\n"


def _read(text: str, name: str = "sales.csv", controls=("promo",)):
    return read_sales([(name, text.encode())], controls=controls)


def test_each_bad_row_is_rejected_and_counted_by_reason():
    text = HEADER + (
        "2025-01-06,P1,L1,3,10.0,0\n"  # good
        "2025-01-06,P1,L2,,10.0,0\n"  # missing units
        "2025-01-06,P1,L3,abc,10.0,0\n"  # non-numeric
        "2025-01-06,P1,L4,2,inf,0\n"  # non-finite price
        "2025-01-06,P1,L5,2,10.0,yes\n"  # non-numeric control
        "someday,P1,L6,2,10.0,0\n"  # bad week
        "2025-01-06,P 1,L7,2,10.0,0\n"  # bad id
        "2025-01-06,P1,L8,-1,10.0,0\n"  # negative units
        "2025-01-06,P1,L9,1.5,10.0,0\n"  # fractional units
        "2025-01-06,P1,L10,1,0,0\n"  # price zero
        "2025-01-06,P1,L11,1,-4,0\n"  # negative price
        "2025-01-07,P1,L12,1,5,0\n"  # Tuesday: same Monday week as the next row
        "2025-01-06,P1,L12,2,5,0\n"
        "2025-01-13,P1,L1,4,10.0,1\n"  # good
    )
    table = _read(text)
    assert table.rows_read == 14
    assert len(table.frame) == 2
    assert table.rejections.as_dict() == {
        "missing_field": 1,
        "non_numeric": 3,
        "bad_week": 1,
        "bad_id": 1,
        "negative_units": 1,
        "non_integer_units": 1,
        "price_not_positive": 2,
        "duplicate_listing_week": 2,
    }
    assert table.rejections.total + len(table.frame) == table.rows_read  # nothing lost
    assert table.rejections.examples["bad_week"] == ["sales.csv:7"]
    assert table.frame["week"].dt.day_of_week.eq(0).all()


def test_weeks_are_normalised_to_monday_and_files_combined_with_gzip():
    plain = HEADER + "2025-01-08,P1,L1,3,10.0,0\n"
    zipped = gzip.compress((HEADER + "2025-01-12T10:00:00Z,P1,L2,1,9.5,1\n").encode())
    table = read_sales([("a.csv", plain.encode()), ("b.csv.gz", zipped)], controls=["promo"])
    assert table.frame["week"].astype(str).tolist() == ["2025-01-06", "2025-01-06"]
    assert table.files == ["a.csv", "b.csv.gz"]
    # the same listing-week in two files: the later file wins, the other copy is superseded, not rejected
    twice = read_sales([("a.csv", plain.encode()), ("c.csv", plain.replace(",3,", ",4,").encode())], controls=["promo"])
    assert twice.rejections.as_dict() == {}
    assert twice.superseded == 1 and twice.frame["units"].tolist() == [4.0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (HEADER.encode(), "has a header but no rows"),
        (b"week,product_id,units\n2025-01-06,P1,1\n", "lacks column(s) listing_id ('listing_id'), price or sales"),
        (b"\x1f\x8b\x08\x00garbage", "looks gzipped but cannot be decompressed"),
        (gzip.compress(b""), "is empty"),
    ],
)
def test_an_unreadable_file_is_listed_and_the_others_used(data, message):
    good = HEADER + "2025-01-06,P1,L1,3,10.0,0\n"
    table = read_sales([("exports/bad.csv", data), ("exports/good.csv", good.encode())], controls=["promo"])
    assert table.failed_files["exports/bad.csv"].startswith(message)
    assert table.files == ["exports/bad.csv", "exports/good.csv"]
    assert table.rows_read == 1 and len(table.frame) == 1
    # a file the user named is a one-line error naming it
    with pytest.raises(InputFileError) as caught:
        read_sales([SalesSource("exports/bad.csv", data, strict=True)], controls=["promo"])
    assert str(caught.value).startswith(f"exports/bad.csv: {message}")


def test_a_latin_1_file_is_read_as_windows_1252_and_said_so():
    table = read_sales([("latin.csv", (HEADER + "2025-01-06,P\xe9,L1,1,2,0\n").encode("latin-1"))], controls=["promo"])
    assert table.rejections.as_dict() == {"bad_id": 1}  # "Pé" is not an id, and the file is not lost
    assert any("read as Windows-1252" in note for note in table.notes)


def _records(*rows):
    keys = ("product_id", "listing_id", "status", "category", "event_time", "sequencer")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_records_need_only_the_six_fields_and_bad_ones_are_counted():
    items = _records(
        ("P1", "L1", "classified", 3, "2024-12-01T00:00:00Z", "A1"),
        ("P1", "L1", "failed", None, "2025-01-01T00:00:00Z", "A2"),
        ("P1", "L1", "deleted", None, "2025-01-02T00:00:00Z", "A3"),  # ends the L1 photo: used, not excluded
        ("P1", "L1", "deleted", None, "2025-01-03T00:00:00Z", "A8"),  # nothing live left to end: excluded
        (None, None, "classified", 1, "2025-01-01T00:00:00Z", "A4"),  # key outside images/<p>/<l>/
        ("P1", "L2", "classified", 7, "2025-01-01T00:00:00Z", "A5"),
        ("P1", "L2", "classified", 1, "not a time", "A6"),
        ("P1", "L3", "pending", 1, "2025-01-01T00:00:00Z", "A7"),
    )
    records = normalise_records(items)
    assert records.records_read == 8
    assert len(records.frame) == 1
    assert records.used == 2
    assert records.excluded_dict() == {
        "failed": 1,
        "deleted": 1,
        "unmatched_key": 1,
        "bad_status": 1,
        "bad_category": 1,
        "bad_event_time": 1,
    }


def test_dynamodb_decimals_and_json_lines_are_accepted():
    from decimal import Decimal

    records = normalise_records(
        [
            {
                "product_id": "P1",
                "listing_id": "L1",
                "status": "classified",
                "category": Decimal("2"),
                "event_time": "2025-01-01T00:00:00.000Z",
                "sequencer": "00A",
            }
        ]
    )
    assert records.frame["category"].tolist() == [2]
    lines = read_jsonl("cats.jsonl", b'{"product_id": "P1"}\n{broken\n')
    assert next(lines) == {"product_id": "P1"}
    with pytest.raises(InputFileError, match=r"^cats.jsonl: line 2 is not JSON"):
        next(lines)
    with pytest.raises(InputFileError, match=r"^cats.jsonl: is empty"):
        read_jsonl("cats.jsonl", b"\n")


def test_released_sales_rows_keep_their_counts():
    sales = _read(HEADER + "2025-01-06,P1,L1,1,10,0\n2025-01-13,P1,L1,2,10,0\n")
    columns, used = list(sales.frame.columns), sales.rows_used
    sales.release_rows()
    assert sales.frame.empty and list(sales.frame.columns) == columns
    assert sales.rows_used == used == 2


def test_as_of_join_takes_the_photo_live_at_mid_week():
    sales = _read(
        HEADER
        + "2024-12-30,P1,L1,1,10,0\n"  # before any record: no category that week
        + "2025-01-06,P1,L1,1,10,0\n"
        + "2025-01-13,P1,L1,1,10,0\n"
        + "2025-01-20,P1,L1,1,10,0\n"
        + "2025-01-27,P1,L1,1,10,0\n"
        + "2025-01-06,P1,L9,1,10,0\n"  # never classified
    )
    records = normalise_records(
        _records(
            ("P1", "L1", "classified", 3, "2025-01-05T12:00:00Z", "10"),  # live from week of 6 Jan
            ("P1", "L1", "classified", 1, "2025-01-14T09:00:00Z", "11"),  # Tuesday: live at mid-week of 13 Jan
            ("P1", "L1", "failed", None, "2025-01-15T00:00:00Z", "12"),  # ignored
            ("P1", "L1", "classified", 2, "2025-01-24T00:00:00Z", "13"),  # Friday: after mid-week of 20 Jan
            # two records at the same instant: the higher sequencer wins, compared right-padded ("FF0" > "100")
            ("P1", "L1", "classified", 3, "2025-01-26T00:00:00Z", "FF"),
            ("P1", "L1", "classified", 2, "2025-01-26T00:00:00Z", "100"),
        )
    )
    rejections = sales.rejections
    joined = join_categories(sales.frame, records, rejections)
    assert joined["week"].astype(str).tolist() == ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"]
    assert joined["category"].tolist() == [3, 1, 1, 3]
    assert rejections.as_dict() == {"unknown_listing": 1, "no_category_that_week": 1}


def test_join_never_loses_a_row():
    sales = _read(
        HEADER
        + "".join(
            f"2025-01-{6 + 7 * w:02d},P{p},L{p}{k},1,10,0\n" for w in range(3) for p in range(3) for k in range(2)
        )
    )
    records = normalise_records(
        _records(
            *[
                ("P0", "L00", "classified", 1, "2025-01-01T00:00:00Z", "1"),
                ("P1", "L10", "classified", 2, "2025-01-15T00:00:00Z", "2"),
            ]
        )
    )
    rejections = Rejections()
    joined = join_categories(sales.frame, records, rejections)
    assert len(joined) + rejections.total == len(sales.frame)
    assert isinstance(joined, pd.DataFrame)


def test_records_without_a_sequencer_are_accepted():
    records = normalise_records(
        [
            {
                "product_id": "P1",
                "listing_id": "L1",
                "status": "classified",
                "category": 1,
                "event_time": "2025-01-01T00:00:00Z",
            },
            {
                "product_id": "P1",
                "listing_id": "L2",
                "status": "classified",
                "category": 3,
                "event_time": "2025-01-02T00:00:00+00:00",
            },
        ]
    )
    assert records.frame["category"].tolist() == [1, 3]
    assert records.excluded_dict() == {}
