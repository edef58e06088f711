"""The ImageCategories record and the key scheme: built one way, stored and read back unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from imagelift.adapters.dynamodb_codec import marshal, unmarshal
from imagelift.adapters.s3 import ObjectGone, ObjectTooLarge
from imagelift.errors import PermanentError, TransientError
from imagelift.records.category_record import REPORT_FIELDS, STATUSES, CategoryRecord
from imagelift.records.keys import (
    ID_PATTERN,
    SEQUENCER_WIDTH,
    InvalidSequencerError,
    image_key,
    normalize_sequencer,
    parse_image_key,
    sequencer_from_time,
)
from imagelift.services.results import TransientRecordError
from imagelift.services.s3_events import InvalidEventError
from imagelift.vision.image_io import ImageDecodeError

SEQ = normalize_sequencer("0055AED6DCD90281E5")


def classified(**values) -> CategoryRecord:
    return CategoryRecord.build(
        bucket="uploads",
        key="images/P-1/L-1/front view.jpg",
        images_prefix="images/",
        version_id="v1",
        etag="e1",
        sequencer=SEQ,
        event_time="2026-11-23T09:15:02.418Z",
        status="classified",
        **values,
    )


def test_build_derives_keys_ids_and_category_name():
    record = classified(category=2)
    assert record.pk == "s3://uploads/images/P-1/L-1/front view.jpg" and record.sk == "v#v1"
    assert (record.product_id, record.listing_id, record.file_name, record.matched) == (
        "P-1",
        "L-1",
        "front view.jpg",
        True,
    )
    assert record.category_name == "worn"


def test_a_key_outside_the_prefix_is_recorded_unmatched_without_ids():
    record = CategoryRecord.build(
        bucket="b", key="uploads/x.jpg", images_prefix="images/", sequencer=SEQ, event_time="t", status="failed"
    )
    item = record.to_item()
    assert item["matched"] is False and item["file_name"] == "x.jpg"
    assert "product_id" not in item and "listing_id" not in item


def test_a_deletion_without_versioning_is_keyed_by_its_sequencer():
    record = CategoryRecord.build(
        bucket="b", key="images/P/L/x.jpg", images_prefix="images/", sequencer=SEQ, event_time="t", status="deleted"
    )
    assert record.sk == f"delete#{SEQ}"


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        CategoryRecord.build(bucket="b", key="k", images_prefix="images/", sequencer=SEQ, event_time="t", status="done")


def test_round_trip_through_the_dynamodb_codec_keeps_every_field_and_unknown_ones():
    record = classified(
        category=1,
        decided_by="mtcnn",
        faces=[{"box": [1, 2, 30, 40], "confidence": 0.9987, "keypoints": {"nose": [10.5, 20.25]}}],
        persons=[],
        width=640,
        height=480,
        timings_ms={"decode": 1.25, "total": 3.5},
        models={"pnet": "07a69013"},
        thresholds={"face_min_confidence": 0.9, "padded_pass": True},
        size_bytes=48213,
        classified_at="2026-11-23T09:15:03.000Z",
        near_miss={"person": 0.24},  # a field the classifier added that this module does not name
    )
    assert record.extra == {"near_miss": {"person": 0.24}}
    stored = marshal(record.to_item())
    assert stored["faces"]["L"][0]["M"]["confidence"] == {"N": "0.9987"}
    assert stored["near_miss"] == {"M": {"person": {"N": "0.24"}}}
    back = CategoryRecord.from_item(unmarshal(stored))
    assert back == record
    assert isinstance(back.width, int) and isinstance(back.faces[0]["confidence"], float)


def test_near_misses_and_review_are_named_fields_that_round_trip():
    record = classified(
        category=3,
        decided_by="none",
        persons=[],
        person_scores={"yolov3-tiny": {"full": 0.0, "padded": 0.2731}, "yolov4-tiny": {"full": 0.012, "padded": 0.31}},
        best_face_score=0.8123,
        face_gate={"net": "yolov3-tiny", "person": 0.0132, "threshold": 0.125, "open": False},
        review=True,
    )
    assert record.extra == {}
    assert record.review is True and record.person_scores["yolov4-tiny"]["padded"] == 0.31
    assert record.face_gate["open"] is False
    stored = marshal(record.to_item())
    assert stored["review"] == {"BOOL": True}
    assert stored["person_scores"]["M"]["yolov3-tiny"]["M"]["padded"] == {"N": "0.2731"}
    back = CategoryRecord.from_item(unmarshal(stored))
    assert back == record and back.extra == {}
    worn = classified(category=2, decided_by="yolo", person_net="yolov4-tiny", person_pass="padded", review=False)
    item = worn.to_item()
    assert item["person_net"] == "yolov4-tiny" and item["person_pass"] == "padded" and item["review"] is False
    assert CategoryRecord.from_item(unmarshal(marshal(item))) == worn


def test_none_is_never_stored():
    item = classified(category=3, error=None, ghost=None).to_item()
    assert None not in item.values()
    assert "error" not in item and "ghost" not in item and "decided_by" not in item


def test_from_item_names_what_a_record_lacks():
    with pytest.raises(ValueError, match="sk"):
        CategoryRecord.from_item(
            {"pk": "s3://b/k", "bucket": "b", "key": "k", "sequencer": "", "event_time": "t", "status": "classified"}
        )


def test_report_fields_are_what_the_report_reads():
    from imagelift.influence import records as report_records

    assert report_records.REPORT_FIELDS is REPORT_FIELDS
    view = classified(category=1).report_fields()
    # only deletes have deleted_at, only records a seller dated have live_from, only corrected ones a correction,
    # only photos whose file name carries a gallery position a photo_position
    expected = {"deleted_at", "live_from", "correction", "photo_position"}
    assert set(REPORT_FIELDS) - set(view) == expected and view["sequencer"] == SEQ
    assert STATUSES == ("classified", "failed", "deleted")


def test_numbers_cross_the_codec_as_decimal_and_come_back_plain():
    stored = marshal({"a": 0.1, "n": 3, "flag": True})
    assert stored["a"] == {"N": "0.1"} and stored["flag"] == {"BOOL": True}
    assert unmarshal(stored) == {"a": 0.1, "n": 3, "flag": True}
    assert unmarshal({"s": {"NS": ["1", "2.5"]}})["s"] in ([1, 2.5], [2.5, 1])
    assert not isinstance(unmarshal(stored)["a"], Decimal)


# ------------------------------------------------------------------ key scheme


@pytest.mark.parametrize("prefix", ["images/", "photos/2026/", ""])
def test_image_key_and_parse_image_key_are_inverse_under_any_prefix(prefix):
    key = image_key(prefix, "P-1", "L.2", "a b.jpg")
    parsed = parse_image_key(key, prefix)
    assert key.startswith(prefix) and (parsed.product_id, parsed.listing_id, parsed.file_name) == (
        "P-1",
        "L.2",
        "a b.jpg",
    )


def test_the_prefix_is_part_of_the_match():
    assert not parse_image_key("images/P/L/x.jpg", "photos/").matched
    assert not parse_image_key("imagesXP/L/x.jpg", "images/").matched  # the prefix is literal, not a pattern


def test_id_pattern_is_the_documented_one():
    assert ID_PATTERN.fullmatch("A-z_0.9") and ID_PATTERN.fullmatch("a" * 128)
    assert not ID_PATTERN.fullmatch("a" * 129) and not ID_PATTERN.fullmatch("a b") and not ID_PATTERN.fullmatch("")


def test_sequencers_have_a_fixed_width_and_bad_ones_are_permanent():
    assert len(normalize_sequencer("0A")) == SEQUENCER_WIDTH
    for bad in ("", "xyz", "0x1F"):
        with pytest.raises(InvalidSequencerError):
            normalize_sequencer(bad)
    with pytest.raises(InvalidSequencerError, match="eventTime"):
        sequencer_from_time("yesterday")
    assert sequencer_from_time("2026-11-23T09:15:02") == sequencer_from_time("2026-11-23T09:15:02Z")


# ------------------------------------------------------------------ error families


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidEventError("no Records"), "invalid_event"),
        (ImageDecodeError("corrupt", "broken"), "corrupt"),
        (ObjectGone("s3://b/k is gone"), "object_gone"),
        (ObjectTooLarge(2052, 1024), "too_large"),
        (InvalidSequencerError("bad"), "permanent"),
    ],
)
def test_ingest_faults_that_a_retry_cannot_fix_are_permanent_with_a_code(error, code):
    assert isinstance(error, PermanentError) and not isinstance(error, TransientError)
    assert error.to_record()["code"] == code and error.to_record()["message"]


def test_image_decode_error_keeps_its_message_without_the_code():
    assert ImageDecodeError("corrupt", "broken").to_record() == {"code": "corrupt", "message": "broken"}


def test_a_batch_to_retry_is_transient():
    error = TransientRecordError([("s3://b/k", RuntimeError("SlowDown"))])
    assert isinstance(error, TransientError) and "SlowDown" in str(error)


def test_too_large_is_checked_in_one_place():
    ObjectTooLarge.check(1024, 1024)
    with pytest.raises(ObjectTooLarge) as caught:
        ObjectTooLarge.check(1025, 1024)
    assert (caught.value.size, caught.value.limit) == (1025, 1024)
