"""The as-of join with deletions: a listing's category is that of its newest photo still live at mid-week."""

from __future__ import annotations

import pandas as pd

from imagelift.influence.records import JOIN_REJECTION_REASONS, join_categories, normalise_records
from imagelift.influence.sales import read_sales

HEADER = "week,product_id,listing_id,units,price,promo\n"
WEEKS = ("2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03")  # midpoints: Thursdays at noon


def _sales(*listings: str):
    text = HEADER + "".join(f"{week},P1,{listing},1,10,0\n" for listing in listings for week in WEEKS)
    return read_sales([("sales.csv", text.encode())], controls=["promo"])


def _record(listing, status, category, when, sequencer, key=None):
    item = {
        "product_id": "P1",
        "listing_id": listing,
        "status": status,
        "category": category,
        "event_time": when,
        "sequencer": sequencer,
    }
    if key is not None:
        item["key"] = f"images/P1/{listing}/{key}"
    return item


def _join(sales, items):
    records = normalise_records(items)
    rejections = sales.rejections
    joined = join_categories(sales.frame, records, rejections)
    assert len(joined) + rejections.total == len(sales.frame)  # nothing lost
    by_week = {
        (listing, str(week.date())): category
        for listing, week, category in joined[["listing_id", "week", "category"]].itertuples(index=False)
    }
    return by_week, rejections, records


def test_deleted_photo_ends_the_category_and_later_weeks_are_rejected():
    sales = _sales("L1")
    by_week, rejections, records = _join(
        sales,
        [
            _record("L1", "classified", 1, "2025-01-05T10:00:00Z", "10", key="a.jpg"),
            _record("L1", "deleted", None, "2025-01-22T09:00:00Z", "11", key="a.jpg"),  # Wednesday of week 20 Jan
        ],
    )
    assert by_week == {("L1", "2025-01-06"): 1, ("L1", "2025-01-13"): 1}
    assert rejections.as_dict() == {"no_live_photo": 3}
    assert records.excluded_dict() == {}
    assert records.used == 2
    assert "deleted" in JOIN_REJECTION_REASONS["no_live_photo"]


def test_reupload_after_deletion_is_live_again_with_its_new_category():
    sales = _sales("L1")
    by_week, rejections, _ = _join(
        sales,
        [
            _record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="a.jpg"),
            _record("L1", "deleted", None, "2025-01-15T00:00:00Z", "11", key="a.jpg"),
            _record("L1", "classified", 2, "2025-01-28T00:00:00Z", "12", key="a.jpg"),  # Tuesday of week 27 Jan
        ],
    )
    assert by_week == {("L1", "2025-01-06"): 3, ("L1", "2025-01-27"): 2, ("L1", "2025-02-03"): 2}
    assert rejections.as_dict() == {"no_live_photo": 2}


def test_deleting_the_newer_of_two_files_falls_back_to_the_older_live_one():
    sales = _sales("L1")
    by_week, rejections, _ = _join(
        sales,
        [
            _record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="front.jpg"),
            _record("L1", "classified", 1, "2025-01-14T00:00:00Z", "11", key="worn.jpg"),
            _record("L1", "deleted", None, "2025-01-21T00:00:00Z", "12", key="worn.jpg"),
            _record("L1", "deleted", None, "2025-02-01T00:00:00Z", "13", key="front.jpg"),
        ],
    )
    assert by_week == {
        ("L1", "2025-01-06"): 3,
        ("L1", "2025-01-13"): 1,
        ("L1", "2025-01-20"): 3,
        ("L1", "2025-01-27"): 3,
    }
    assert rejections.as_dict() == {"no_live_photo": 1}


def test_deleting_an_older_file_keeps_the_newer_one():
    sales = _sales("L1")
    by_week, rejections, _ = _join(
        sales,
        [
            _record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="front.jpg"),
            _record("L1", "classified", 2, "2025-01-14T00:00:00Z", "11", key="worn.jpg"),
            _record("L1", "deleted", None, "2025-01-21T00:00:00Z", "12", key="front.jpg"),
            # a deletion of a file never uploaded ends nothing and is counted as left out
            _record("L1", "deleted", None, "2025-01-22T00:00:00Z", "13", key="other.jpg"),
        ],
    )
    assert [by_week[("L1", week)] for week in WEEKS] == [3, 2, 2, 2, 2]
    assert rejections.as_dict() == {}


def test_records_without_key_are_one_photo_per_listing():
    sales = _sales("L1", "L2")
    by_week, rejections, records = _join(
        sales,
        [
            _record("L1", "classified", 2, "2025-01-05T10:00:00Z", "10"),
            _record("L1", "classified", 1, "2025-01-14T00:00:00Z", "11"),  # replaces the first: same photo
            _record("L1", "deleted", None, "2025-01-21T00:00:00Z", "12"),  # ends it: nothing older is left
            _record("L2", "classified", 3, "2025-01-05T10:00:00Z", "20"),
        ],
    )
    assert by_week == {
        ("L1", "2025-01-06"): 2,
        ("L1", "2025-01-13"): 1,
        **{("L2", week): 3 for week in WEEKS},
    }
    assert rejections.as_dict() == {"no_live_photo": 3}
    assert records.frame["key"].tolist() == ["", "", ""]


def test_duplicate_deleted_events_end_the_photo_once():
    sales = _sales("L1")
    deletion = _record("L1", "deleted", None, "2025-01-16T00:00:00Z", "11", key="a.jpg")
    by_week, rejections, records = _join(
        sales,
        [
            _record("L1", "classified", 1, "2025-01-05T10:00:00Z", "10", key="a.jpg"),
            deletion,
            dict(deletion),  # the same S3 event delivered twice
            _record("L1", "deleted", None, "2025-01-30T00:00:00Z", "12", key="a.jpg"),  # later repeat
        ],
    )
    assert by_week == {("L1", "2025-01-06"): 1}
    assert rejections.as_dict() == {"no_live_photo": 4}
    assert records.used == 2
    assert records.excluded_dict() == {"deleted": 2}


def test_deletion_and_reupload_at_one_instant_follow_the_sequencer():
    sales = _sales("L1", "L2")
    at = "2025-01-14T00:00:00Z"
    by_week, rejections, _ = _join(
        sales,
        [
            _record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="a.jpg"),
            _record("L1", "classified", 2, at, "20", key="a.jpg"),
            _record("L1", "deleted", None, at, "21", key="a.jpg"),  # later S3 event: the photo is gone
            _record("L2", "classified", 3, "2025-01-05T10:00:00Z", "10", key="a.jpg"),
            _record("L2", "deleted", None, at, "20", key="a.jpg"),
            _record("L2", "classified", 2, at, "21", key="a.jpg"),  # later S3 event: live again as worn
        ],
    )
    assert by_week == {
        ("L1", "2025-01-06"): 3,
        **{("L2", week): c for week, c in zip(WEEKS, [3, 2, 2, 2, 2], strict=True)},
    }
    assert rejections.as_dict() == {"no_live_photo": 4}


def test_a_listing_with_only_deletions_is_unknown():
    sales = _sales("L1")
    by_week, rejections, records = _join(
        sales, [_record("L1", "deleted", None, "2025-01-05T10:00:00Z", "10", key="a.jpg")]
    )
    assert by_week == {}
    assert rejections.as_dict() == {"unknown_listing": 5}
    assert records.excluded_dict() == {"deleted": 1}
    assert isinstance(records.segments, pd.DataFrame) and records.segments.empty


def test_a_version_deleted_for_good_keeps_its_weeks_until_the_delete():
    # The version's record keeps its upload time (event_time) and says when it went (deleted_at).
    sales = _sales("L1")
    purged = _record("L1", "deleted", 2, "2025-01-05T10:00:00Z", "11", key="a.jpg")
    purged["deleted_at"] = "2025-01-22T09:00:00Z"
    by_week, rejections, records = _join(sales, [purged])
    assert by_week == {("L1", "2025-01-06"): 2, ("L1", "2025-01-13"): 2}
    assert rejections.as_dict() == {"no_live_photo": 3}
    assert records.excluded_dict() == {} and records.used == 2


def test_a_deleted_record_without_a_category_only_ends_a_photo():
    sales = _sales("L1")
    marker = _record("L1", "deleted", None, "2025-01-22T09:00:00Z", "12", key="a.jpg")
    marker["deleted_at"] = "2025-01-22T09:00:00Z"
    by_week, _rejections, _records = _join(
        sales, [_record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="a.jpg"), marker]
    )
    assert by_week == {("L1", "2025-01-06"): 3, ("L1", "2025-01-13"): 3}


def test_purging_an_older_version_does_not_end_the_newer_upload():
    sales = _sales("L1")
    old = _record("L1", "deleted", 1, "2025-01-05T10:00:00Z", "12", key="a.jpg")
    old["deleted_at"] = "2025-01-29T09:00:00Z"  # purged after the re-upload below
    new = _record("L1", "classified", 3, "2025-01-15T10:00:00Z", "11", key="a.jpg")
    by_week, rejections, _records = _join(sales, [old, new])
    assert by_week == {
        ("L1", "2025-01-06"): 1,
        ("L1", "2025-01-13"): 3,  # re-uploaded on the Wednesday
        ("L1", "2025-01-20"): 3,
        ("L1", "2025-01-27"): 3,
        ("L1", "2025-02-03"): 3,
    }
    assert rejections.as_dict() == {}


def test_a_corrected_category_replaces_the_classifiers_and_is_counted():
    sales = _sales("L1", "L2")
    corrected = _record("L1", "classified", 3, "2025-01-05T10:00:00Z", "10", key="a.jpg")
    corrected["correction"] = {"category": 2, "category_name": "worn", "by": "ana", "classifier_category": 3}
    unreadable = _record("L2", "classified", 1, "2025-01-05T10:00:00Z", "11", key="b.jpg")
    unreadable["correction"] = {"category": 7}  # not a category: the classifier's stands, not counted
    failed = _record("L2", "failed", None, "2025-01-06T10:00:00Z", "12", key="c.jpg")
    failed["correction"] = {"category": 2}  # a failed record stays out, corrected or not
    by_week, _, records = _join(sales, [corrected, unreadable, failed])
    assert {by_week[("L1", week)] for week in WEEKS} == {2}
    assert {by_week[("L2", week)] for week in WEEKS} == {1}
    assert records.corrected == 1 and records.excluded_dict() == {"failed": 1}
