"""A listing's main photo: the file-name convention, the position each record stores, the report's two rules
(main photo, model anywhere in the gallery) and the seller's view of main and gallery, all without AWS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imagelift.config import ReportConfig
from imagelift.influence.listing_photo import ANY_MODEL_PHOTO, MAIN_PHOTO, describe
from imagelift.influence.records import join_categories, normalise_records
from imagelift.influence.sales import read_sales
from imagelift.records.category_record import CategoryRecord
from imagelift.records.keys import UNPOSITIONED_RANK, gallery_rank, parse_image_key, photo_position
from imagelift.services.categories import current_categories

WEEKS = ("2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27")  # midpoints: Thursdays at noon


@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("main.jpg", 0),
        ("MAIN.JPG", 0),
        ("sneaker-main.webp", 0),
        ("sneaker_main.heic", 0),
        ("B07XJ8C8F5.MAIN.jpg", 0),  # Amazon's image naming for bulk uploads
        ("B07XJ8C8F5.PT01.jpg", 1),
        ("SKU-1.PT08.png", 8),
        ("01-front.jpg", 1),
        ("1_side.jpg", 1),
        ("05 back.png", 5),
        ("3.jpg", 3),
        ("12.avif", 12),
        ("IMG_1234.JPG", None),  # a camera counter, no position
        ("100_0123.JPG", None),  # three digits: a camera folder number
        ("20240105_shoe.jpg", None),  # a date
        ("photo-2.jpg", None),
        ("domain.jpg", None),
        ("mainstreet.jpg", None),
        ("summer sale été +1.jpg", None),
    ],
)
def test_the_file_name_gives_the_gallery_position(name, position):
    assert photo_position(name) == position
    assert parse_image_key(f"images/P/L/{name}", "images/").position == position


def test_unnumbered_photos_rank_after_every_numbered_one():
    assert gallery_rank(0) < gallery_rank(1) < gallery_rank(99) < gallery_rank(None) == UNPOSITIONED_RANK


def _record(key: str, category: int | None, when: str, sequencer: str, status: str = "classified", **values):
    return CategoryRecord.build(
        bucket="uploads",
        key=f"images/P1/L1/{key}",
        images_prefix="images/",
        version_id=f"v{sequencer}",
        sequencer=sequencer.ljust(32, "0"),
        event_time=when,
        status=status,
        category=category,
        **values,
    )


def test_each_record_stores_its_position_and_an_older_record_reads_it_from_its_key():
    assert _record("01-front.jpg", 3, "2025-01-01T00:00:00Z", "10").to_item()["photo_position"] == 1
    assert "photo_position" not in _record("IMG_1.jpg", 3, "2025-01-01T00:00:00Z", "10").to_item()
    older = _record("main.jpg", 3, "2025-01-01T00:00:00Z", "10").to_item()
    del older["photo_position"]
    assert CategoryRecord.from_item(older).position == 0


def _weeks(records, rule=MAIN_PHOTO, drop_positions=False):
    items = [record.to_item() for record in records]
    if drop_positions:  # items written before positions were stored
        items = [{k: v for k, v in item.items() if k != "photo_position"} for item in items]
    text = "week,product_id,listing_id,units,price\n" + "".join(f"{week},P1,L1,1,10\n" for week in WEEKS)
    sales = read_sales([("sales.csv", text.encode())])
    joined = join_categories(sales.frame, normalise_records(items, rule), sales.rejections)
    return [int(c) for c in joined.sort_values("week")["category"]]


GALLERY = [
    _record("01-front.jpg", 3, "2025-01-02T00:00:00Z", "10"),
    _record("02-side.jpg", 3, "2025-01-02T00:01:00Z", "11"),
    _record("05-on-foot.jpg", 2, "2025-01-02T00:02:00Z", "12"),
]


@pytest.mark.parametrize("drop_positions", [False, True])
def test_reuploading_gallery_photo_5_does_not_flip_the_listing(drop_positions):
    # the seller replaces photo 5 with a model shot in week 2: the main photo (01) still decides
    reupload = _record("05-on-foot.jpg", 1, "2025-01-14T00:00:00Z", "20")
    assert _weeks([*GALLERY, reupload], drop_positions=drop_positions) == [3, 3, 3, 3]


def test_replacing_the_main_photo_changes_the_listing():
    new_main = _record("01-front.jpg", 2, "2025-01-14T00:00:00Z", "20")
    assert _weeks([*GALLERY, new_main]) == [3, 2, 2, 2]


def test_main_named_photo_beats_numbered_ones_and_deleting_it_falls_back_to_the_lowest_number():
    main = _record("main.jpg", 1, "2025-01-03T00:00:00Z", "13")
    gone = _record("main.jpg", None, "2025-01-21T00:00:00Z", "30", status="deleted")
    assert _weeks([*GALLERY, main, gone]) == [1, 1, 3, 3]


def test_without_positions_the_newest_upload_counts_as_before():
    unnumbered = [
        _record("front.jpg", 3, "2025-01-02T00:00:00Z", "10"),
        _record("worn.jpg", 2, "2025-01-14T00:00:00Z", "11"),
    ]
    assert _weeks(unnumbered) == [3, 2, 2, 2]
    # a numbered photo ranks before an unnumbered one, whenever it was uploaded
    assert _weeks([*unnumbered, _record("1.jpg", 3, "2025-01-21T00:00:00Z", "12")]) == [3, 2, 3, 3]


def test_any_model_rule_counts_a_model_photo_anywhere_in_the_gallery():
    reupload = _record("05-on-foot.jpg", 1, "2025-01-14T00:00:00Z", "20")
    assert _weeks([*GALLERY, reupload], ANY_MODEL_PHOTO) == [3, 1, 1, 1]
    # without a model photo the main photo decides (a worn photo deeper in the gallery does not count)
    assert _weeks(GALLERY, ANY_MODEL_PHOTO) == [3, 3, 3, 3]


def test_the_rule_is_configuration_and_named_in_the_method():
    assert ReportConfig().listing_category == MAIN_PHOTO
    assert ReportConfig.from_env({"REPORT_LISTING_CATEGORY": "any_model"}).listing_category == ANY_MODEL_PHOTO
    with pytest.raises(ValueError, match="REPORT_LISTING_CATEGORY"):
        ReportConfig.from_env({"REPORT_LISTING_CATEGORY": "newest"})
    assert "main photo" in describe(MAIN_PHOTO) and "any live photo" in describe(ANY_MODEL_PHOTO)


def test_the_seller_view_shows_the_main_photo_and_its_gallery():
    reupload = _record("05-on-foot.jpg", 1, "2025-01-14T00:00:00Z", "20")
    (listing,) = current_categories([*GALLERY, reupload])
    assert (listing.key, listing.category, listing.photo_position, listing.live_photos) == (
        "images/P1/L1/01-front.jpg",
        3,
        1,
        3,
    )
    assert [(p.role, p.key.rsplit("/", 1)[-1], p.category) for p in listing.photos] == [
        ("main", "01-front.jpg", 3),
        ("gallery", "02-side.jpg", 3),
        ("gallery", "05-on-foot.jpg", 1),
    ]
    assert listing.csv_row()["gallery_categories"] == "3,3,1"


@pytest.mark.parametrize(("rule", "expected"), [(None, {"model": 0, "product": 4}), ("any_model", {"model": 3})])
def test_the_report_command_takes_the_rule(tmp_path, capsys, rule, expected):
    import json

    from imagelift.cli import main

    reupload = _record("05-on-foot.jpg", 1, "2025-01-14T00:00:00Z", "20")
    categories = tmp_path / "categories.jsonl"
    categories.write_text("".join(json.dumps(r.to_item()) + "\n" for r in [*GALLERY, reupload]), encoding="utf-8")
    sales = tmp_path / "sales.csv"
    sales.write_text("week,product_id,listing_id,units,price\n" + "".join(f"{w},P1,L1,2,10\n" for w in WEEKS))
    args = ["report", "--sales", str(sales), "--categories", str(categories), "--out", str(tmp_path / "out")]
    args += ["--report-date", "2025-03-03"] + (["--listing-category", rule] if rule else [])
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "influence.json").read_text())
    assert report["spec"]["listing_category"] == (rule or MAIN_PHOTO)
    weeks = report["counts"]["listing_weeks_by_category"]
    assert {name: weeks[name] for name in expected} == expected


def test_a_photo_the_face_gate_kept_from_mtcnn_has_no_face_score_rather_than_zero():
    from imagelift.services.categories import face_score

    gate = {"net": "yolov3-tiny", "person": 0.0132, "threshold": 0.125}
    closed = _record("a.jpg", 3, "2026-01-01T00:00:00Z", "01", face_gate={**gate, "open": False})
    assert face_score(replace(closed, best_face_score=0.0)) is None
    looked = _record("b.jpg", 3, "2026-01-01T00:00:00Z", "02", face_gate={**gate, "person": 0.4, "open": True})
    assert face_score(replace(looked, best_face_score=0.61)) == 0.61
    face = {"box": [1, 2, 3, 4], "confidence": 0.99, "keypoints": {}}
    assert face_score(replace(looked, category=1, faces=[face])) == 0.99
